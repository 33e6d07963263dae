"""Summaries over run directories: final exploitability per method, mean +- standard error.

Runs that differ only in their seed form one *method*. The table reports, per method,
the final exploitability (NashConv / 2) as mean +- standard error over seeds, and the mean
wall time, training episodes and fusion overhead. Seeds that recorded different numbers of
iterations are compared at the last iteration all of them recorded, as the plots draw them,
and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

from typing import Any

import numpy as np

from fusion_psro.experiments.approximate import approx_section
from fusion_psro.experiments.plots import plot_runs
from fusion_psro.experiments.rundir import RunDirectoryError, make_directory
from fusion_psro.experiments.traps import trap_section
from fusion_psro.files import check_output_path
from fusion_psro.experiments.runs import (
    RunSummary,
    common_iteration,
    group_by_method,
    load_runs,
    mean_and_standard_error,
    method_label,
    note_unequal_lengths,
    varying_settings,
)

#: Settings that name a method in tables (the rest are shown only when they vary).
METHOD_KEYS = ("game", "variant", "init", "oracle", "meta_solver")


def summary_table(runs: list[RunSummary]) -> str:
    """Markdown table: one row per method, final exploitability mean +- standard error.

    Seeds of unequal length are compared at the last iteration all of them recorded
    (:func:`~fusion_psro.experiments.runs.common_iteration`); :func:`unequal_length_notes`
    says where that happened.
    """
    groups = group_by_method(runs)
    varying = varying_settings(runs)
    lines = [
        "| method | seeds | iterations | final exploitability (mean ± s.e.) | episodes | wall time (s) | fusion overhead |",
        "|---|---|---|---|---|---|---|",
    ]
    for members in groups.values():
        at = common_iteration(members)
        rows = [run.rows[at - 1] for run in members]
        mean, se = mean_and_standard_error([row["exploitability"] for row in rows])
        wall = float(np.mean([row["wall_s"] for row in rows]))
        fusion = float(np.mean([sum(row.get("fusion_s", 0.0) for row in r.rows[:at]) for r in members]))
        episodes = float(np.mean([row["episodes"] for row in rows]))
        se_text = "n/a" if math.isnan(se) else f"{se:.4f}"
        lines.append(
            f"| {method_label(members[0].settings, varying)} | {len(members)} | {at} | "
            f"{mean:.4f} ± {se_text} | {episodes:,.0f} | {wall:.1f} | {100 * fusion / max(wall, 1e-12):.4f}% |"
        )
    return "\n".join(lines)


#: Settings in which a method and its Fusion-X counterpart may differ.
INIT_KEYS = ("init", "fusion_start", "fusion_fallback", "init_options")


def fusion_differences_table(runs: list[RunSummary],
                             keep: Callable[[RunSummary, RunSummary], bool] | None = None) -> str | None:
    """Markdown table: each Fusion-X against every method that differs from it only in its init.

    The difference is the mean final exploitability of the method minus that of Fusion-X
    (positive: fusion is lower), with Welch's 95% interval (unequal variances, seeds
    independent). ``keep(method_run, fusion_run)``, given one run of each, says whether a
    pair belongs in the table (:func:`~fusion_psro.experiments.protocol_report.planned_pair_filter`
    keeps a study's protocol comparisons only); every pair without it. None when no pair is left.
    """
    from scipy import stats  # noqa: PLC0415 (only when a report is written)

    groups = list(group_by_method(runs).values())
    varying = varying_settings(runs)

    def finals(members: list[RunSummary]) -> np.ndarray:
        at = common_iteration(members)
        return np.array([run.rows[at - 1]["exploitability"] for run in members], dtype=np.float64)

    def rest(members: list[RunSummary]) -> dict[str, Any]:
        return {k: v for k, v in members[0].settings.items() if k not in INIT_KEYS and k != "seed"}

    lines = []
    for fused in (g for g in groups if g[0].settings.get("init") == "fusion"):
        for other in (g for g in groups if g is not fused and g[0].settings.get("init") != "fusion"):
            if rest(other) != rest(fused) or (keep is not None and not keep(other[0], fused[0])):
                continue
            a, b = finals(other), finals(fused)
            if min(a.size, b.size) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
                continue  # no interval from one seed, or from games without an exact exploitability
            interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
            lines.append(f"| {method_label(other[0].settings, varying)} − {method_label(fused[0].settings, varying)} | "
                         f"{a.size} / {b.size} | {a.mean() - b.mean():+.4f} | [{interval.low:+.4f}, {interval.high:+.4f}] |")
    if not lines:
        return None
    return "\n".join([
        "| method − Fusion-X | seeds | difference of final exploitability | Welch 95% interval |",
        "|---|---|---|---|",
        *lines,
    ])


def unequal_length_notes(runs: list[RunSummary]) -> list[str]:
    """One sentence per method whose seeds recorded different numbers of iterations."""
    varying = varying_settings(runs)
    notes = [note_unequal_lengths(method_label(members[0].settings, varying), members)
             for members in group_by_method(runs).values()]
    return [note for note in notes if note]


def fusion_section(runs: list[RunSummary], keep: Callable[[RunSummary, RunSummary], bool] | None = None
                   ) -> list[str]:
    """Lines of the comparison of each method with its Fusion-X counterpart (none when there is no pair);
    ``keep`` as for :func:`fusion_differences_table`."""
    table = fusion_differences_table(runs, keep)
    if table is None:
        return []
    return ["Secondary view: each method against its Fusion-X counterpart (same settings but the init; in a sweep "
            "with a protocol, only the pairs its comparisons name); endpoint the final exploitability, n seeds per "
            "method as shown, unpaired Welch 95% intervals, no correction over the rows. A positive difference "
            "means Fusion-X ends less exploitable. Exploratory, except as a secondary view of a comparison that a "
            "protocol above fixes:", "", table, ""]


def analysis_sections(runs: list[RunSummary], sweeps: list[Path], figure_prefix: Path | None = None,
                      apply: Path | None = None) -> list[str]:
    """The protocol analysis of each sweep directory (:mod:`~fusion_psro.experiments.protocol_report`),
    or, without any sweep, the note that every comparison is exploratory. With
    ``figure_prefix``, each sweep's performance profile is drawn at ``<prefix>-profile[-k]``;
    ``apply`` is a sweep config whose ``[protocol]`` is applied (exploratory) to sweeps that
    recorded none."""
    from fusion_psro.experiments.protocol_report import protocol_sections  # noqa: PLC0415

    if not sweeps and apply is not None:
        from fusion_psro.experiments.protocol import ProtocolError  # noqa: PLC0415

        raise ProtocolError(f"--protocol {apply} applies to sweep directories, and none was given (give the "
                            "sweep's directory, not its runs)")
    if not sweeps:
        return ["No protocol: these run directories were given one by one, not as a sweep directory with a recorded "
                "protocol, so every comparison in this report is exploratory.", ""]
    lines = []
    for k, sweep in enumerate(sweeps):
        prefix = None if figure_prefix is None else Path(f"{figure_prefix}-profile" + (f"-{k + 1}" if k else ""))
        lines += protocol_sections(runs, sweep, prefix, apply)[0]
    return lines


def write_report(run_dirs: Iterable[Path | str], out: Path | str, *, overwrite: bool = False,
                 title: str = "fusion-psro report", sweeps: Iterable[Path] = (),
                 protocol: Path | None = None) -> tuple[Path, list[Path]]:
    """Write a Markdown report over run directories: the summary table, the protocol analysis
    of sweep directories (a sweep directory stands for its runs), and the curves.

    ``sweeps`` are sweep directories whose protocols are analysed besides those among
    ``run_dirs``; ``protocol``, a sweep config, gives its ``[protocol]`` (exploratory) to
    sweeps that recorded none. The curves (exploitability against iterations and against training episodes, see
    :func:`fusion_psro.experiments.plots.plot_runs`) are written beside the report as
    ``<report name>-exploitability.png`` and ``.svg``. Existing files are replaced only
    with ``overwrite``. Returns the report's path and the figures' paths.
    """
    from fusion_psro.experiments.protocol_report import expand_sweeps, planned_pair_filter  # noqa: PLC0415

    out = check_output_path(out, suffix_bytes=len("-exploitability.png"))
    if out.exists() and not overwrite:
        raise RunDirectoryError(f"{out} exists; pass --overwrite to replace it")
    run_dirs, given = expand_sweeps(run_dirs)
    sweeps = list(dict.fromkeys([*given, *map(Path, sweeps)]))
    runs = load_runs(run_dirs)
    run_dirs = [run.path for run in runs]
    make_directory(out.parent)
    figures = plot_runs(run_dirs, out.parent / f"{out.stem}-exploitability", overwrite=overwrite, title=title)
    png = next(p for p in figures if p.suffix == ".png")
    total_wall = sum(r.final["wall_s"] for r in runs)
    total_fusion = sum(row.get("fusion_s", 0.0) for r in runs for row in r.rows)
    total_checkpoints = sum(row.get("checkpoint_s", 0.0) for r in runs for row in r.rows)
    notes = unequal_length_notes(runs)
    text = "\n".join([
        f"# {title}",
        "",
        f"{len(runs)} runs. Exploitability is NashConv / 2, computed exactly (nan where the game is too large "
        "to compile: see the approximate exploitability, when the runs measured it); final values are "
        "mean ± standard error over seeds (n: the seeds column; descriptive, no test or correction). Wall time and episodes are per run (mean over seeds); "
        "fusion overhead is the share of run time spent fusing parameters.",
        "",
        summary_table(runs),
        "",
        *analysis_sections(runs, sweeps, out.parent / out.stem, protocol),
        *fusion_section(runs, planned_pair_filter(sweeps, protocol)),
        *trap_section(runs),
        *[f"Note: {note}." for note in notes],
        *([""] if notes else []),
        *approx_section(runs),
        f"Total wall time {total_wall:,.0f} s over all runs; fusion took {total_fusion:.3f} s of it "
        f"({100 * total_fusion / max(total_wall, 1e-12):.4f}%)"
        + (f", writing checkpoints {total_checkpoints:.1f} s." if total_checkpoints else "."),
        "",
        f"![exploitability]({png.name})",
        "",
        "Runs: " + ", ".join(f"`{d}`" for d in run_dirs),
        "",
    ])
    try:
        out.write_text(text)
    except OSError as exc:
        raise RunDirectoryError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out, figures
