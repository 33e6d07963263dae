"""Summaries over run directories: final exploitability per method, mean +- standard error.

Runs that differ only in their seed form one *method*. The table reports, per method,
the final exploitability (NashConv / 2) as mean +- standard error over seeds, and the mean
wall time, training episodes and fusion overhead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fusion_psro.experiments.approximate import approx_section
from fusion_psro.experiments.plots import plot_runs
from fusion_psro.experiments.rundir import RunDirectoryError
from fusion_psro.experiments.runs import (
    RunSummary,
    group_by_method,
    load_runs,
    mean_and_standard_error,
    method_label,
    varying_settings,
)

#: Settings that name a method in tables (the rest are shown only when they vary).
METHOD_KEYS = ("game", "variant", "init", "oracle", "meta_solver")


def summary_table(runs: list[RunSummary]) -> str:
    """Markdown table: one row per method, final exploitability mean +- standard error."""
    groups = group_by_method(runs)
    varying = varying_settings(runs)
    lines = [
        "| method | seeds | iterations | final exploitability (mean ± s.e.) | episodes | wall time (s) | fusion overhead |",
        "|---|---|---|---|---|---|---|",
    ]
    for members in groups.values():
        settings = members[0].settings
        finals = [r.final["exploitability"] for r in members]
        mean, se = mean_and_standard_error(finals)
        wall = float(np.mean([r.final["wall_s"] for r in members]))
        fusion = float(np.mean([sum(row.get("fusion_s", 0.0) for row in r.rows) for r in members]))
        iterations = sorted({r.final["iteration"] for r in members})
        episodes = float(np.mean([r.final["episodes"] for r in members]))
        se_text = "n/a" if math.isnan(se) else f"{se:.4f}"
        lines.append(
            f"| {method_label(settings, varying)} | {len(members)} | {'/'.join(map(str, iterations))} | "
            f"{mean:.4f} ± {se_text} | {episodes:,.0f} | {wall:.1f} | {100 * fusion / max(wall, 1e-12):.4f}% |"
        )
    return "\n".join(lines)


def write_report(run_dirs: Iterable[Path | str], out: Path | str, *, overwrite: bool = False,
                 title: str = "fusion-psro report") -> tuple[Path, list[Path]]:
    """Write a Markdown report over run directories: the summary table and the curves.

    The curves (exploitability against iterations and against training episodes, see
    :func:`fusion_psro.experiments.plots.plot_runs`) are written beside the report as
    ``<report name>-exploitability.png`` and ``.svg``. Existing files are replaced only
    with ``overwrite``. Returns the report's path and the figures' paths.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise RunDirectoryError(f"{out} exists; pass --overwrite to replace it")
    run_dirs = [Path(d) for d in run_dirs]
    runs = load_runs(run_dirs)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = plot_runs(run_dirs, out.parent / f"{out.stem}-exploitability", overwrite=overwrite, title=title)
    png = next(p for p in figures if p.suffix == ".png")
    total_wall = sum(r.final["wall_s"] for r in runs)
    total_fusion = sum(row.get("fusion_s", 0.0) for r in runs for row in r.rows)
    text = "\n".join([
        f"# {title}",
        "",
        f"{len(runs)} runs. Exploitability is NashConv / 2, computed exactly (nan where the game is too large "
        "to compile: see the approximate exploitability, when the runs measured it); final values are "
        "mean ± standard error over seeds. Wall time and episodes are per run (mean over seeds); "
        "fusion overhead is the share of run time spent fusing parameters.",
        "",
        summary_table(runs),
        "",
        *approx_section(runs),
        f"Total wall time {total_wall:,.0f} s over all runs; fusion took {total_fusion:.3f} s of it "
        f"({100 * total_fusion / max(total_wall, 1e-12):.4f}%).",
        "",
        f"![exploitability]({png.name})",
        "",
        "Runs: " + ", ".join(f"`{d}`" for d in run_dirs),
        "",
    ])
    out.write_text(text)
    return out, figures
