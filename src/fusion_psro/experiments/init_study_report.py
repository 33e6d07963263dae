"""The initialization study's report: gaps per init and budget, paired differences against fusion.

A *unit* is one state and player (run, iteration, player); its repeats are averaged. For
each game and budget the report gives:

* the gap (best-response value minus the response's value, >= 0) per init, mean ± standard
  error over units x repeats, at budget 0 (the start, before any training) and after each
  training budget;
* the paired difference of each init's gap against fusion's, over the units both have: its
  mean with a 95% interval clustered by source run (a two-stage bootstrap: runs, then units
  within each drawn run, since units of one run are not independent), the t interval that
  treats units as independent beside it, a bootstrap p-value Holm-adjusted over the rows of
  the table, and how many units fusion wins (smaller gap), loses or ties. A positive
  difference means fusion's response is better;
* the same for the units where fusion does not start where inherit does (the meta-Nash of
  the player's members is not pure on the latest one): there fusion is actually tested;
* where the states come from runs with different inits, the same by the source run's init:
  a PSRO run's members are independently initialized networks, a Fusion-PSRO run's share
  ancestry, and averaging their parameters is not the same operation;
* the training return (the paper's Appendix C metric) and the network diagnostics.

Figures: the gap against the budget per init, all units and the units where fusion differs
from inherit, as ``gap.png`` and ``gap.svg``.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.experiments.init_study import StudyError, load_study

#: Reference init of the paired differences.
REFERENCE = "fusion"


def measurement_rows(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per cell and budget."""
    rows = []
    for cell in cells:
        for m in cell["measurements"]:
            rows.append({
                "game": cell["game"], "run": cell["run_key"], "source_init": cell["source"]["init"],
                "iteration": cell["iteration"], "player": cell["player"], "init": cell["init"],
                "repeat": cell["repeat"], "fusion_equals_inherit": cell["fusion_equals_inherit"], **m,
            })
    return rows


def _mean_se(values: list[float]) -> tuple[float, float]:
    array = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if array.size == 0:
        return math.nan, math.nan
    se = float(array.std(ddof=1) / math.sqrt(array.size)) if array.size > 1 else math.nan
    return float(array.mean()), se


def _unit(row: dict[str, Any]) -> tuple:
    """The unit of a measurement row: (run, iteration, player)."""
    return row["run"], row["iteration"], row["player"]


def _unit_means(rows: list[dict[str, Any]], key: str) -> dict[tuple, dict[str, float]]:
    """unit -> init -> mean over repeats of ``key``."""
    collected: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get(key) is not None:
            collected[_unit(row)][row["init"]].append(row[key])
    return {unit: {init: float(np.mean(v)) for init, v in inits.items()} for unit, inits in collected.items()}


def paired_difference(rows: list[dict[str, Any]], init: str, key: str = "gap") -> dict[str, Any]:
    """``init``'s ``key`` minus fusion's over the units both have: mean, wins, and intervals.

    ``low``/``high`` and ``p`` come from the two-stage bootstrap over source runs, then the
    units within each run (:func:`~fusion_psro.experiments.statistics.clustered_interval`:
    units of one run share its states, so they are not independent); ``t_low``/``t_high``
    are the 95% t interval that treats the units as independent, for comparison.
    """
    from scipy import stats  # noqa: PLC0415

    from fusion_psro.experiments.statistics import clustered_interval  # noqa: PLC0415

    units = _unit_means(rows, key)
    paired = [(unit, v[init] - v[REFERENCE]) for unit, v in units.items() if init in v and REFERENCE in v]
    differences = np.array([d for _, d in paired])
    n = differences.size
    result = {"n": int(n), "runs": len({unit[0] for unit, _ in paired}), "mean": math.nan, "low": math.nan,
              "high": math.nan, "p": math.nan, "t_low": math.nan, "t_high": math.nan,
              "fusion_wins": int((differences > 1e-9).sum()), "fusion_loses": int((differences < -1e-9).sum())}
    result["ties"] = n - result["fusion_wins"] - result["fusion_loses"]
    if n:
        clustered = clustered_interval(differences, [unit[0] for unit, _ in paired])
        result.update(mean=clustered.mean, low=clustered.low, high=clustered.high, p=clustered.p)
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1) * differences.std(ddof=1) / math.sqrt(n))
        result["t_low"], result["t_high"] = result["mean"] - half, result["mean"] + half
    return result


def _unsigned_zero(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits``, with -0.0 (a gap of -1e-15, say) printed as 0."""
    return round(value, digits) + 0.0


def _fmt(mean: float, se: float, digits: int = 3) -> str:
    if math.isnan(mean):
        return "–"
    mean = _unsigned_zero(mean, digits)
    return f"{mean:.{digits}f}" + ("" if math.isnan(se) else f" ± {se:.{digits}f}")


def _table(rows: list[dict[str, Any]], inits: list[str], budgets: list[int], key: str) -> list[str]:
    lines = ["| init | " + " | ".join(f"{b:,}" for b in budgets) + " |", "|---|" + "---|" * len(budgets)]
    for init in inits:
        cells = [_fmt(*_mean_se([r[key] for r in rows if r["init"] == init and r["budget"] == b])) for b in budgets]
        lines.append(f"| {init} | " + " | ".join(cells) + " |")
    return lines


def _differences_table(rows: list[dict[str, Any]], inits: list[str], budgets: list[int],
                       key: str = "gap") -> list[str]:
    """Paired ``key`` differences against fusion with run-clustered intervals and Holm-adjusted
    p-values over the table's rows; "wins" count the units where fusion's ``key`` is smaller."""
    from fusion_psro.experiments.statistics import holm  # noqa: PLC0415

    found = []
    for init in (i for i in inits if i != REFERENCE):
        for budget in budgets:
            d = paired_difference([r for r in rows if r["budget"] == budget and r.get(key) is not None], init, key)
            if d["n"]:
                found.append((init, budget, d))
    adjusted = holm([d["p"] for _, _, d in found])
    lines = [f"{key}(init) − {key}(fusion) per unit; n units from r source runs; 95% intervals from a two-stage "
             "bootstrap (source runs, then units within each drawn run), and the t interval that treats units as "
             f"independent; p from the same bootstrap, Holm-adjusted over the {len(found)} rows of this table.", "",
             f"| init | budget | units (runs) | {key}(init) − {key}(fusion), mean [95% CI, clustered] | "
             "t interval, units independent | p | Holm p | fusion smaller / larger / ties |",
             "|---|---|---|---|---|---|---|---|"]
    for (init, budget, d), holm_p in zip(found, adjusted):
        mean, low, high, t_low, t_high = (_unsigned_zero(d[k]) for k in ("mean", "low", "high", "t_low", "t_high"))
        interval = "" if math.isnan(low) else f" [{low:+.3f}, {high:+.3f}]"
        t_interval = "–" if math.isnan(t_low) else f"[{t_low:+.3f}, {t_high:+.3f}]"
        lines.append(f"| {init} | {budget:,} | {d['n']} ({d['runs']}) | {mean:+.3f}{interval} | {t_interval} | "
                     f"{_p(d['p'])} | {_p(holm_p)} | {d['fusion_wins']} / {d['fusion_loses']} / {d['ties']} |")
    return lines


def _p(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def _diagnostics_table(rows: list[dict[str, Any]], inits: list[str], budgets: list[int]) -> list[str]:
    """Dead-ReLU fraction per layer, parameter norm and Q gap, per init, before and after training."""
    if not any("parameter_norm" in r for r in rows):
        return ["(the oracle reports no network diagnostics)"]
    lines = ["| init | budget | dead ReLU per hidden layer | parameter norm | best − worst Q |", "|---|---|---|---|---|"]
    for init in inits:
        for budget in (budgets[0], budgets[-1]):
            chosen = [r for r in rows if r["init"] == init and r["budget"] == budget and "parameter_norm" in r]
            if not chosen:
                continue
            dead = np.mean([r["dead_relu"] for r in chosen], axis=0)
            lines.append(f"| {init} | {budget:,} | {', '.join(f'{100 * d:.0f}%' for d in dead)} | "
                         f"{_fmt(*_mean_se([r['parameter_norm'] for r in chosen]), 1)} | "
                         f"{_fmt(*_mean_se([r['q_gap'] for r in chosen]), 2)} |")
    return lines


def _by_source_sections(rows: list[dict[str, Any]], inits: list[str], budgets: list[int]) -> list[str]:
    """Paired gap differences per source run's init, when the units come from runs of more than one."""
    sources = sorted({r["source_init"] for r in rows})
    if len(sources) < 2:
        return []
    lines = []
    for source in sources:
        subset = [r for r in rows if r["source_init"] == source]
        count = len({_unit(r) for r in subset})
        heading = f"states from runs with init {source} ({count} unit{'s' if count != 1 else ''})"
        lines += [f"### Paired differences against fusion, {heading}", "", *_differences_table(subset, inits, budgets), ""]
    return lines


def _game_section(game: str, rows: list[dict[str, Any]]) -> list[str]:
    inits = sorted({r["init"] for r in rows}, key=lambda i: (i != REFERENCE, i))
    budgets = sorted({r["budget"] for r in rows})
    tested = [r for r in rows if not r["fusion_equals_inherit"]]
    units = {_unit(r) for r in rows}
    tested_units = {_unit(r) for r in tested}
    repeats = len({r["repeat"] for r in rows})
    lines = [f"## {game}", "",
             f"{len(units)} units (state x player) from {len({r['run'] for r in rows})} runs, "
             f"{repeats} repeat{'s' if repeats != 1 else ''}; "
             f"fusion differs from inherit in {len(tested_units)} of them.", "",
             "### Gap (best-response value − value of the response), mean ± s.e. over units x repeats", "",
             "Budget 0 is the start, before any training.", "", *_table(rows, inits, budgets, "gap"), "",
             "### Paired differences against fusion, all units", "", *_differences_table(rows, inits, budgets), ""]
    if tested and tested_units == units:
        lines += ["Fusion differs from inherit in every unit: the tables above are the units where fusion is tested.", ""]
    elif tested:
        lines += ["### Paired differences against fusion, units where fusion differs from inherit", "",
                  *_differences_table(tested, inits, budgets), "",
                  "### Gap where fusion differs from inherit", "", *_table(tested, inits, budgets, "gap"), ""]
    lines += _by_source_sections(rows, inits, budgets)
    trained = [r for r in rows if r["budget"] > 0]
    lines += ["### Training return (the oracle's: the DQN's mean return of its last 1,000 training episodes, the "
              "pg oracle's exact value of its softmax policy), mean ± s.e.", "",
              *_table(trained, inits, budgets[1:], "training_return"), "",
              "Paired against fusion (higher is better here: a negative difference means fusion's return is "
              "higher):", "", *_differences_table(trained, inits, budgets[1:], "training_return"), "",
              "### Value of the response against the opponent mixture, mean ± s.e.", "",
              *_table(rows, inits, budgets, "value"), "",
              "### Network diagnostics (start and last budget)", "", *_diagnostics_table(rows, inits, budgets), ""]
    return lines


def plot_gaps(rows: list[dict[str, Any]], out_prefix: Path) -> list[Path]:
    """Gap against budget per init: all units, and the units where fusion differs from inherit."""
    import matplotlib  # noqa: PLC0415
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    from fusion_psro.experiments.plots import save_figure  # noqa: PLC0415

    games = sorted({r["game"] for r in rows})
    figure = Figure(figsize=(11, 4.2 * len(games)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(games), 2, squeeze=False)
    palette = matplotlib.colormaps["tab10"]
    for g, game in enumerate(games):
        game_rows = [r for r in rows if r["game"] == game]
        inits = sorted({r["init"] for r in game_rows}, key=lambda i: (i != REFERENCE, i))
        budgets = sorted({r["budget"] for r in game_rows})
        subsets = (game_rows, [r for r in game_rows if not r["fusion_equals_inherit"]])
        for ax, subset, title in zip(axes[g], subsets, ("all units", "fusion differs from inherit")):
            for k, init in enumerate(inits):
                stats = [_mean_se([r["gap"] for r in subset if r["init"] == init and r["budget"] == b]) for b in budgets]
                mean = np.array([m for m, _ in stats])
                se = np.nan_to_num(np.array([s for _, s in stats]))
                x = np.arange(len(budgets))
                ax.plot(x, mean, marker="o", color=palette(k % 10), label=init, linewidth=1.6 if init == REFERENCE else 1.1)
                ax.fill_between(x, mean - se, mean + se, color=palette(k % 10), alpha=0.15, linewidth=0)
            ax.set_xticks(np.arange(len(budgets)), [f"{b:,}" for b in budgets])
            ax.set_xlabel("training episodes")
            ax.set_ylabel("gap to the best response")
            ax.set_title(f"{game}: {title}")
            ax.grid(True, alpha=0.3)
        axes[g][0].legend(fontsize="small")
    paths = [out_prefix.parent / f"{out_prefix.name}.{fmt}" for fmt in ("png", "svg")]
    for path, fmt in zip(paths, ("png", "svg")):
        save_figure(figure, path, fmt, dpi=130)
    return paths


def duration(seconds: float) -> str:
    """``42 s``, ``12.5 min`` or ``3.20 h``: a time in the unit that shows it."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _compute_time(cells: list[dict[str, Any]]) -> str:
    timed = [cell["wall_s"] for cell in cells if "wall_s" in cell]
    text = f"{len(cells)} cells."
    if timed:
        text += (f" Compute time of the {len(timed)} timed cells: {duration(sum(timed))} in all, "
                 f"{float(np.median(timed)):.1f} s per cell (median; rebuilding the state, training, measuring).")
    return text


def write_study_report(out: Path | str) -> tuple[Path, list[Path]]:
    """Write ``report.md``, ``gap.png``/``.svg`` and ``cells.csv`` (every measurement) into the study directory."""
    out = Path(out)
    cells = load_study(out)
    rows = measurement_rows(cells)
    if not rows:
        raise StudyError(f"{out} has no finished cells yet; run the study first")
    with open(out / "cells.csv", "w", newline="") as handle:
        fields = [k for k in rows[0] if k != "dead_relu"] + (["dead_relu"] if "dead_relu" in rows[0] else [])
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    figures = plot_gaps(rows, out / "gap")
    lines = ["# Initialization study", "",
             "Exact values (sequence form); the gap is the best-response value minus the value of the response's "
             "policy against the opponent's meta-strategy mixture. A unit is one state (run, iteration) and player; "
             "differences are paired within units. Their 95% intervals are clustered by source run (a two-stage "
             "bootstrap over runs, then units within runs), and the p-values of each table are Holm-adjusted over "
             "its rows.", "",
             f"![gap against budget]({figures[0].name})", "", _compute_time(cells), ""]
    for game in sorted({r["game"] for r in rows}):
        lines += _game_section(game, [r for r in rows if r["game"] == game])
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report, figures


__all__ = ["REFERENCE", "measurement_rows", "paired_difference", "plot_gaps", "write_study_report"]
