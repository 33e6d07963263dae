"""The report of a sweep with a protocol: aggregates, paired comparisons, equivalence, Holm.

For a sweep directory whose ``protocol.json`` was recorded before its first run
(:mod:`fusion_psro.experiments.protocol`), :func:`protocol_sections` writes:

* the protocol, its sha256, when it was recorded, and whether it changed since (a changed
  or hand-edited protocol, or one recorded after runs existed, makes every comparison
  *exploratory*: not pre-registered);
* per arm, the primary endpoint's IQM and mean with rliable's stratified bootstrap 95%
  intervals;
* per protocol comparison, the differences paired by seed: mean, t and bootstrap 95%
  intervals, the paired t test's p-value and its Holm adjustment over the table's
  comparisons, rliable's probability of improvement, and the equivalence verdict (TOST at
  the protocol's margin), per comparison and as it stands after Holm's correction over the
  table's verdicts;
* the secondary endpoints: the final exploitability (the same comparisons, their own Holm
  correction) and, when the protocol gives a threshold, the iterations to reach it.

A sweep that recorded no protocol can be given one after the fact (``fusion-psro report
SWEEP_DIR --protocol CONFIG``): the same tables, all labelled exploratory.

:func:`expand_sweeps` turns sweep directories given to ``fusion-psro report`` into their
run directories.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.experiments.protocol import (
    ENDPOINTS,
    PROTOCOL_FILE,
    Protocol,
    ProtocolStatus,
    applied_status,
    protocol_status,
)
from fusion_psro.experiments.rundir import CONFIG_FILE
from fusion_psro.experiments.runs import RunSummary, common_iteration
from fusion_psro.experiments.statistics import (
    CONFIDENCE,
    REPS,
    aggregates,
    equivalence,
    holm,
    holm_verdicts,
    paired_difference,
    probability_of_improvement,
)
from fusion_psro.experiments.traps import TRAP_HEADER, trap_row


def is_sweep_directory(path: Path) -> bool:
    """A directory that is no run but holds a protocol record or run directories."""
    path = Path(path)
    if not path.is_dir() or (path / CONFIG_FILE).exists():
        return False
    return (path / PROTOCOL_FILE).is_file() or any((child / CONFIG_FILE).is_file() for child in path.iterdir())


def expand_sweeps(paths: Iterable[Path | str]) -> tuple[list[Path], list[Path]]:
    """The run directories of ``paths`` (a sweep directory stands for its cells, sorted) and
    the sweep directories among them."""
    run_dirs, sweeps = [], []
    for path in map(Path, paths):
        if is_sweep_directory(path):
            sweeps.append(path)
            run_dirs += sorted(child for child in path.iterdir() if (child / CONFIG_FILE).is_file())
        else:
            run_dirs.append(path)
    return run_dirs, sweeps


def endpoint(run: RunSummary, name: str, at: int) -> float:
    """``run``'s endpoint ``name`` over its first ``at`` iterations."""
    values = [row["exploitability"] for row in run.rows[:at]]
    if name == "final":
        return float(values[-1])
    return float(np.mean(values[at // 2:]))


def iterations_to(run: RunSummary, threshold: float, at: int) -> int | None:
    """The first iteration (of the first ``at``) with exploitability <= ``threshold``; None if none."""
    return next((row["iteration"] for row in run.rows[:at] if row["exploitability"] <= threshold), None)


def _endpoint_text(name: str, at: int) -> str:
    if name == "final":
        return f"exploitability (NashConv / 2) at iteration {at}"
    return f"mean exploitability (NashConv / 2) over iterations {at // 2 + 1}-{at} (the last half)"


def _interval(low: float, high: float, digits: int = 4) -> str:
    return "–" if math.isnan(low) else f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def _p(value: float) -> str:
    return "–" if math.isnan(value) else (f"{value:.2g}" if value < 0.001 else f"{value:.3f}")


def status_lines(status: ProtocolStatus, sweep_dir: Path) -> list[str]:
    """The protocol, its hash and whether it still holds."""
    if not status.recorded:
        return [f"## Protocol of {status.config}, applied to {sweep_dir} (exploratory)", "",
                f"sha256 `{status.sha256}` (of the protocol's canonical JSON). `{sweep_dir}` recorded no protocol "
                "before its runs: this one is applied after the fact, so every comparison below is exploratory.", "",
                *status.protocol.describe(), ""]
    lines = [f"## Protocol of {sweep_dir}", "",
             f"sha256 `{status.sha256}` (of the protocol's canonical JSON), recorded {status.recorded_at} in "
             f"`{sweep_dir / PROTOCOL_FILE}` from `{status.config}`.", ""]
    if not status.intact:
        lines += ["**The record was edited: its hash is not that of the protocol it holds. Every comparison below is "
                  "exploratory.**", ""]
    if status.runs_before:
        lines += [f"**The protocol was recorded after {len(status.runs_before)} run(s) had been written "
                  f"({', '.join(status.runs_before)}): it is not pre-registered for them, and every comparison below "
                  "is exploratory.**", ""]
    if status.changed_to:
        lines += [f"**The [protocol] of `{status.config}` has changed since the first run was written (now sha256 "
                  f"`{status.changed_to}`). The analysis below follows the recorded protocol; anything the changed one "
                  "adds is exploratory.**", ""]
    elif status.unchecked:
        lines += [f"The config could not be compared with the record: {status.unchecked}.", ""]
    else:
        lines += ["The config's [protocol] is unchanged since it was recorded.", ""]
    return lines + status.protocol.describe() + [""]


def _arms(runs: list[RunSummary], status: ProtocolStatus) -> tuple[dict[str, dict[int, RunSummary]], list[RunSummary]]:
    """Protocol runs by arm and seed, and the runs outside the protocol."""
    protocol = status.protocol
    arms: dict[str, dict[int, RunSummary]] = {name: {} for name in protocol.arms}
    outside = []
    for run in runs:
        arm = protocol.arm_of(run.settings)
        if arm is None or run.settings.get("seed") not in protocol.seeds:
            outside.append(run)
        else:
            arms[arm][run.settings["seed"]] = run
    return arms, outside


def _aggregate_table(values: dict[str, dict[int, float]], planned: int) -> list[str]:
    result = aggregates({arm: list(v.values()) for arm, v in values.items()})
    lines = ["| arm | n (of planned) | IQM [95% CI] | mean [95% CI] |", "|---|---|---|---|"]
    for arm, agg in result.items():
        lines.append(f"| {arm} | {agg.n} of {planned} | {agg.iqm:.4f} [{agg.iqm_low:.4f}, {agg.iqm_high:.4f}] | "
                     f"{agg.mean:.4f} [{agg.mean_low:.4f}, {agg.mean_high:.4f}] |")
    return lines


def comparison_rows(values: dict[str, dict[int, float]], protocol: Protocol) -> list[dict[str, Any]]:
    """Per protocol comparison (A, B): the paired statistics of exploitability(B) - exploitability(A)."""
    rows = []
    for a, b in protocol.comparisons:
        seeds = sorted(set(values.get(a, {})) & set(values.get(b, {})))
        d = np.array([values[b][s] - values[a][s] for s in seeds], dtype=np.float64)
        poi = (probability_of_improvement([values[a][s] for s in seeds], [values[b][s] for s in seeds])
               if len(seeds) > 1 else (math.nan,) * 3)
        rows.append({"a": a, "b": b, "paired": paired_difference(d), "poi": poi,
                     "tost": equivalence(d, protocol.margin, alpha=protocol.alpha)})
    for row, adjusted in zip(rows, holm([row["paired"].p for row in rows])):
        row["holm"] = adjusted
    for row, verdict in zip(rows, holm_verdicts([row["tost"] for row in rows], alpha=protocol.alpha)):
        row["holm_verdict"] = verdict
    return rows


def _comparison_table(values: dict[str, dict[int, float]], status: ProtocolStatus) -> list[str]:
    margin = status.protocol.margin
    lines = ["| A vs B | pairs | exploitability(B) − exploitability(A) | t 95% | bootstrap 95% | p (paired t) | "
             f"Holm p | P(A less exploitable) [95% CI] | TOST p | verdict at ±{margin:g} | verdict, Holm |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in comparison_rows(values, status.protocol):
        d, poi, tost = row["paired"], row["poi"], row["tost"]
        mean = "–" if math.isnan(d.mean) else f"{d.mean:+.4f}"
        poi_text = "–" if math.isnan(poi[0]) else f"{poi[0]:.2f} [{poi[1]:.2f}, {poi[2]:.2f}]"
        lines.append(f"| {row['a']} vs {row['b']} | {d.n} | {mean} | {_interval(d.t_low, d.t_high)} | "
                     f"{_interval(d.boot_low, d.boot_high)} | {_p(d.p)} | {_p(row['holm'])} | {poi_text} | "
                     f"{_p(tost.p)} | {tost.verdict} | {row['holm_verdict']} |")
    return lines


def _threshold_table(arms: dict[str, dict[int, RunSummary]], threshold: float, at: int) -> list[str]:
    lines = [f"| arm | n | reached exploitability <= {threshold:g} | iterations to reach it (median of those that did) |",
             "|---|---|---|---|"]
    for arm, runs in arms.items():
        reached = [it for it in (iterations_to(r, threshold, at) for r in runs.values()) if it is not None]
        median = f"{float(np.median(reached)):g}" if reached else "–"
        lines.append(f"| {arm} | {len(runs)} | {len(reached)} of {len(runs)} | {median} |")
    return lines


def _profile_lines(values: dict[str, dict[int, float]], what: str, prefix: Path | None) -> list[str]:
    """The performance profile figure of the primary endpoint, when a report file is written."""
    if prefix is None or not any(values.values()):
        return []
    from fusion_psro.experiments.plots import plot_performance_profile  # noqa: PLC0415 (loads matplotlib)

    paths = plot_performance_profile({arm: list(v.values()) for arm, v in values.items() if v}, prefix,
                                     title="performance profile", xlabel=f"tau: {what}")
    return [f"Performance profile: per arm, the fraction of runs whose primary endpoint is below tau, with "
            f"rliable's 95% bootstrap band.", "", f"![performance profile]({paths[0].name})", ""]


def _endpoint_sections(arms: dict[str, dict[int, RunSummary]], status: ProtocolStatus, at: int, label: str,
                       figure_prefix: Path | None = None) -> list[str]:
    protocol = status.protocol
    lines = []
    for name, kind in ((protocol.endpoint, "Primary"), ("final" if protocol.endpoint != "final" else None, "Secondary")):
        if name is None:
            continue
        values = {arm: {seed: endpoint(run, name, at) for seed, run in runs.items()} for arm, runs in arms.items()}
        what = _endpoint_text(name, at)
        k = len(protocol.comparisons)
        lines += [f"### {kind} endpoint{label}: {what}", "",
                  f"Per arm, n runs; IQM (25% trimmed mean) and mean with rliable's stratified bootstrap "
                  f"{100 * CONFIDENCE:.0f}% percentile intervals ({REPS} resamples); descriptive, no correction.", "",
                  *_aggregate_table(values, len(protocol.seeds)), "",
                  f"Comparisons of the protocol, paired by seed (n pairs; a positive difference means A is less "
                  f"exploitable): t and bootstrap {100 * CONFIDENCE:.0f}% intervals; p of the paired t test, "
                  f"Holm-adjusted over the {k} comparison{'s' if k != 1 else ''} of this table; probability of "
                  f"improvement (rliable, bootstrap interval); two one-sided t tests against ±{protocol.margin:g} at "
                  f"alpha = {protocol.alpha:g}.", "",
                  *_comparison_table(values, status), "",
                  *(_profile_lines(values, what, figure_prefix) if kind == "Primary" else [])]
    if protocol.threshold is not None:
        lines += [f"### Secondary endpoint{label}: iterations to reach exploitability <= {protocol.threshold:g}", "",
                  f"Within the first {at} iterations; no test.", "",
                  *_threshold_table(arms, protocol.threshold, at), ""]
    return lines


def sweep_status(sweep_dir: Path, apply: Path | None = None) -> ProtocolStatus | None:
    """The protocol a sweep recorded, else the ``[protocol]`` of ``apply`` (exploratory), else None."""
    status = protocol_status(sweep_dir)
    if status is None and apply is not None:
        status = applied_status(apply)
    return status


def protocol_sections(runs: list[RunSummary], sweep_dir: Path, figure_prefix: Path | None = None,
                      apply: Path | None = None) -> tuple[list[str], set[Path]]:
    """The Markdown of a sweep's protocol analysis and the runs it covers (empty without a
    record); with ``figure_prefix``, the primary endpoint's performance profile is drawn
    there (PNG and SVG) and shown. ``apply`` is a sweep config whose ``[protocol]`` is
    applied, as exploratory, when the sweep recorded none."""
    status = sweep_status(sweep_dir, apply)
    sweep_runs = [r for r in runs if Path(r.path).parent.resolve() == Path(sweep_dir).resolve()]
    if status is None:
        return [f"## {sweep_dir}: no protocol", "",
                f"`{sweep_dir}` has no `{PROTOCOL_FILE}`: nothing was fixed before its runs, so every comparison in "
                "this report is exploratory.", ""], set()
    arms, outside = _arms(sweep_runs, status)
    lines = status_lines(status, sweep_dir)
    covered = [run for runs_by_seed in arms.values() for run in runs_by_seed.values()]
    if outside:
        lines += [f"{len(outside)} run(s) of this sweep are in no arm or seed of the protocol "
                  f"({', '.join(Path(r.path).name for r in outside)}): exploratory wherever they appear.", ""]
    if not covered:
        return lines + ["No run of the protocol has been recorded yet.", ""], set()
    at = common_iteration(covered)
    if not all(math.isfinite(row["exploitability"]) for run in covered for row in run.rows[:at]):
        return lines + ["These runs have no exact exploitability (sampled play): the protocol's endpoints cannot be "
                        "computed.", ""], {Path(r.path) for r in covered}
    if any(run.final["iteration"] > at for run in covered):
        lines += [f"Note: the protocol's runs recorded different numbers of iterations; all are compared over their "
                  f"first {at}, the most every one recorded.", ""]
    label = "" if status.confirmatory else " (exploratory)"
    lines += _endpoint_sections(arms, status, at, label, figure_prefix)
    lines += _incomplete_lines(arms, status) + _trap_lines(arms)
    return lines, {Path(r.path) for r in covered}


def planned_pair_filter(sweeps: Iterable[Path], apply: Path | None = None
                        ) -> Callable[[RunSummary, RunSummary], bool]:
    """Which pairs of runs the report's secondary (Welch) view keeps: for runs of a sweep with
    a protocol (recorded, or applied with ``apply``), only pairs whose arms are one of its
    comparisons (in either order); runs of no such sweep keep every pair."""
    protocols: dict[Path, Protocol] = {}
    for sweep in sweeps:
        status = sweep_status(sweep, apply)
        if status is not None:
            protocols[Path(sweep).resolve()] = status.protocol

    def keep(a: RunSummary, b: RunSummary) -> bool:
        protocol_a = protocols.get(Path(a.path).parent.resolve())
        protocol_b = protocols.get(Path(b.path).parent.resolve())
        if protocol_a is None and protocol_b is None:
            return True
        if protocol_a is not protocol_b:
            return False  # runs of two studies, or of a study and a stray run: not a planned pair
        pair = {protocol_a.arm_of(a.settings), protocol_a.arm_of(b.settings)}
        return any(pair == set(comparison) for comparison in protocol_a.comparisons)

    return keep


def _incomplete_lines(arms: dict[str, dict[int, RunSummary]], status: ProtocolStatus) -> list[str]:
    """Say so when the study holds fewer runs than its protocol plans (a study run in parts)."""
    planned = len(status.protocol.seeds)
    short = {arm: len(runs) for arm, runs in arms.items() if len(runs) < planned}
    if not short:
        return []
    return [f"**Incomplete: {sum(short.values())} of {planned * len(short)} planned runs of "
            f"{len(short)} arm(s) are recorded** ({', '.join(f'{a} {n}' for a, n in short.items())} of {planned}). "
            "The tables above are the study so far; its verdicts are those of the n shown.", ""]


def _trap_lines(arms: dict[str, dict[int, RunSummary]]) -> list[str]:
    """Per arm: its frozen runs (from which iteration, per seed) and trapped responses."""
    rows = [trap_row(arm, list(runs.values())) for arm, runs in arms.items() if runs]  # trap_row orders by seed
    if not rows:
        return []
    return ["### Trapped responses and frozen runs, per arm", "",
            "A run is frozen from the first iteration after which every row repeats the one before (its endpoint "
            "averages a value that stopped moving); a response is trapped when it enters the meta-Nash with weight 0 "
            "and repeats an earlier one or is no better against the opponent mixture than the population.", "",
            TRAP_HEADER[0].format(what="arm"), TRAP_HEADER[1], *rows, ""]


__all__ = ["ENDPOINTS", "comparison_rows", "endpoint", "expand_sweeps", "is_sweep_directory", "iterations_to",
           "planned_pair_filter", "protocol_sections", "status_lines"]
