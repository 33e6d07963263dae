"""Learning curves over run directories: exploitability versus PSRO iterations and training episodes.

Runs that differ only in their seed form one *method* (see
:func:`fusion_psro.experiments.runs.group_by_method`); each method is drawn as one line,
the mean exploitability (NashConv / 2) over its seeds, with a shaded band of one standard
error, ``std(ddof=1) / sqrt(n)``. A method with a single seed has no band.

Seeds of one method need not have the same length (an unfinished run, say) nor, for
learned oracles, the same episode counts, so the curves are aligned before averaging:

* **iterations**: only the iterations recorded by *every* seed of the method are drawn
  (up to the shortest seed, where reports compare them too), with a warning naming the
  method. No value is invented.
* **episodes**: each seed's curve ``(cumulative episodes, exploitability)`` is linearly
  interpolated onto a common grid, the union of all the seeds' own episode counts that
  lie inside the range every seed covers, ``[max of the first counts, min of the last
  counts]``. So every seed's measured points are kept, nothing is extrapolated beyond a
  seed's data, and where all seeds share a grid the curve is their plain mean. When one
  run records the same episode count at several iterations, the last of those iterations
  is used (the exploitability reached with that many episodes). Runs that train no
  episodes at all (the exact oracle) have no episodes curve.

Figures are drawn with matplotlib's Agg canvas through the object-oriented API: no
display is needed and the global pyplot state and backend are left alone.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, MaxNLocator

from fusion_psro.errors import FusionPSROError
from fusion_psro.experiments.rundir import RunDirectoryError, make_directory, remove_created
from fusion_psro.files import check_output_path
from fusion_psro.experiments.runs import (
    RunSummary,
    group_by_method,
    load_runs,
    mean_and_standard_error,
    method_label,
    note_unequal_lengths,
    varying_settings,
)

log = logging.getLogger(__name__)

#: Values of ``x`` accepted by :func:`plot_runs` (``method_curves`` takes the first two).
X_AXES = ("iterations", "episodes", "both")
#: Axis label of the exploitability axis.
Y_LABEL = "exploitability (NashConv / 2)"
_X_LABELS = {"iterations": "PSRO iteration", "episodes": "training episodes (cumulative)"}
_FORMATS = ("png", "svg")


class PlotError(FusionPSROError, ValueError):
    """The curves cannot be drawn or written (bad option, nothing to draw, output exists)."""


@dataclasses.dataclass(frozen=True)
class MethodCurve:
    """One method's curve on one x axis: mean and standard error over its seeds.

    ``x``, ``mean`` and ``se`` have the same length; ``se`` is NaN everywhere when the
    method has a single seed. All three are empty when the method cannot be drawn on
    this axis (e.g. it trains no episodes).
    """

    label: str
    x: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    seeds: int
    paths: tuple[Path, ...]

    @property
    def empty(self) -> bool:
        return self.x.size == 0


def interpolate_curves(curves: Sequence[tuple[Any, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Put several ``(x, y)`` curves on one common x grid by linear interpolation.

    Parameters
    ----------
    curves
        One ``(x, y)`` pair of 1-D arrays per seed, ``x`` non-decreasing. Where ``x``
        repeats a value, the last ``y`` at that value is used.

    Returns
    -------
    grid : numpy.ndarray
        Shape ``[m]``: the union of the curves' own x values inside the range all of them
        cover, ``[max_i x_i[0], min_i x_i[-1]]``. Empty when the ranges do not overlap.
    values : numpy.ndarray
        Shape ``[len(curves), m]``: each curve linearly interpolated at ``grid``.
    """
    cleaned = [_last_per_x(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)) for x, y in curves]
    if not cleaned or any(x.size == 0 for x, _ in cleaned):
        return np.empty(0), np.empty((len(cleaned), 0))
    low = max(x[0] for x, _ in cleaned)
    high = min(x[-1] for x, _ in cleaned)
    union = np.unique(np.concatenate([x for x, _ in cleaned]))
    grid = union[(union >= low) & (union <= high)]
    values = np.stack([np.interp(grid, x, y) for x, y in cleaned]) if grid.size else np.empty((len(cleaned), 0))
    return grid, values


def _last_per_x(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.shape != y.shape or x.ndim != 1:
        raise PlotError(f"a curve needs 1-D x and y of the same length, got shapes {x.shape} and {y.shape}")
    if np.any(np.diff(x) < 0):
        raise PlotError("the x values of a curve (cumulative episodes) must not decrease")
    keep = np.append(x[1:] != x[:-1], True)  # the last of each run of equal x values
    return x[keep], y[keep]


def _iteration_curve(run: RunSummary) -> dict[int, float]:
    return {int(row["iteration"]): float(row["exploitability"]) for row in run.rows}  # last row wins


def _episode_curve(run: RunSummary) -> tuple[np.ndarray, np.ndarray]:
    rows = sorted(run.rows, key=lambda row: row["iteration"])
    episodes = np.asarray([row.get("episodes", 0) for row in rows], dtype=np.float64)
    exploitability = np.asarray([row["exploitability"] for row in rows], dtype=np.float64)
    if np.any(np.diff(episodes) < 0):
        raise PlotError(f"{run.path}: the cumulative episode counts in its metrics decrease")
    return episodes, exploitability


def _mean_and_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stats = [mean_and_standard_error(column.tolist()) for column in values.T]
    mean = np.asarray([m for m, _ in stats], dtype=np.float64)
    se = np.asarray([s for _, s in stats], dtype=np.float64)
    return mean, se


def method_curves(runs: Sequence[RunSummary], x: str) -> list[MethodCurve]:
    """Mean and standard error of exploitability over seeds, per method, on one x axis.

    Parameters
    ----------
    runs
        Loaded runs (:func:`fusion_psro.experiments.runs.load_runs`); runs differing
        only in their seed form one method.
    x
        ``"iterations"``: the iterations recorded by every seed of the method.
        ``"episodes"``: cumulative training episodes; each seed's curve is interpolated
        onto a common grid (:func:`interpolate_curves`).

    Returns
    -------
    list of MethodCurve
        One per method, in the order the methods first appear in ``runs``. A method that
        cannot be drawn on this axis has empty arrays (and a warning is logged).
    """
    if x not in ("iterations", "episodes"):
        raise PlotError(f"x must be 'iterations' or 'episodes', got {x!r}")
    varying = varying_settings(runs)
    curves = []
    for members in group_by_method(list(runs)).values():
        label = method_label(members[0].settings, varying)
        paths = tuple(run.path for run in members)
        if x == "iterations":
            per_seed = [_iteration_curve(run) for run in members]
            grid = np.asarray(sorted(set.intersection(*(set(c) for c in per_seed))), dtype=np.float64)
            values = np.asarray([[c[int(i)] for i in grid] for c in per_seed], dtype=np.float64).reshape(len(members), -1)
            if grid.size == 0:
                log.warning("%s: its seeds share no iteration; it is left out of the iterations plot", label)
        else:
            per_seed = [_episode_curve(run) for run in members]
            if any(episodes[-1] <= 0 for episodes, _ in per_seed):
                log.warning("%s: no training episodes recorded (exact best responses train none); "
                            "it is left out of the episodes plot", label)
                grid, values = np.empty(0), np.empty((len(members), 0))
            else:
                grid, values = interpolate_curves(per_seed)
                if grid.size == 0:
                    log.warning("%s: the episode ranges of its seeds do not overlap; "
                                "it is left out of the episodes plot", label)
        mean, se = _mean_and_se(values) if grid.size else (np.empty(0), np.empty(0))
        curves.append(MethodCurve(label, grid, mean, se, len(members), paths))
    return curves


def save_figure(figure: Any, path: Path, fmt: str, dpi: int = 150) -> None:
    """Write ``figure`` as ``fmt``; an SVG gets no date and fixed element ids, so the same data gives the same file."""
    with matplotlib.rc_context({"svg.hashsalt": "fusion-psro"}):
        figure.savefig(path, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)


def output_paths(out_prefix: Path | str) -> list[Path]:
    """``PREFIX.png`` and ``PREFIX.svg`` (a ``.png`` or ``.svg`` ending on the prefix is dropped)."""
    prefix = Path(out_prefix)
    if prefix.suffix.lower() in (".png", ".svg"):
        prefix = prefix.with_suffix("")
    return [prefix.parent / f"{prefix.name}.{fmt}" for fmt in _FORMATS]


def plot_runs(
    run_dirs: Iterable[Path | str],
    out_prefix: Path | str,
    *,
    x: str = "both",
    title: str | None = None,
    log_y: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Draw exploitability curves of run directories, one line per method, as PNG and SVG.

    Each method (runs differing only in their seed) is drawn as the mean exploitability
    (NashConv / 2) over its seeds with a shaded band of one standard error,
    ``std(ddof=1) / sqrt(n)``; single-seed methods have no band. See the module docstring
    for how seeds of different lengths or episode counts are aligned.

    Parameters
    ----------
    run_dirs
        Run directories written by ``fusion-psro run`` (a directory given twice counts once).
    out_prefix
        Output path without extension: ``PREFIX.png`` and ``PREFIX.svg`` are written
        (missing parent directories are created).
    x
        ``"iterations"``, ``"episodes"`` (cumulative training episodes), or ``"both"``:
        one figure with the two panels side by side.
    title
        Figure title; by default the game, when all runs share one.
    log_y
        Logarithmic exploitability axis (non-positive values are not drawn).
    overwrite
        Replace existing output files; otherwise an existing one is an error.

    Returns
    -------
    list of pathlib.Path
        The files written: ``[PREFIX.png, PREFIX.svg]``.

    Raises
    ------
    PlotError
        Unknown ``x``, an output file exists and ``overwrite`` is false, no run given, or
        nothing can be drawn (e.g. ``x="episodes"`` for exact-oracle runs only).
    fusion_psro.experiments.RunDirectoryError
        A directory is not a run directory or has no iterations recorded.
    """
    if x not in X_AXES:
        raise PlotError(f"x must be one of {', '.join(X_AXES)}; got {x!r}")
    check_output_path(out_prefix, suffix_bytes=len(".png"))
    paths = output_paths(out_prefix)
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise PlotError(f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                        "pass --overwrite to replace")

    unique: dict[Path, Path] = {}
    for run_dir in run_dirs:
        resolved = Path(run_dir).resolve()
        if resolved in unique:
            log.warning("%s given more than once; counted once", run_dir)
        unique.setdefault(resolved, Path(run_dir))
    if not unique:
        raise PlotError("no run directories given")
    runs = load_runs(unique.values())

    kinds = ("iterations", "episodes") if x == "both" else (x,)
    per_iteration = episodes_per_iteration(runs)
    if x == "both" and per_iteration:
        log.info("every run trains %s per iteration, so an episodes panel would repeat the iterations panel; "
                 "drawn against iterations only", f"{per_iteration:,}")
        kinds = ("iterations",)
    panels = {kind: method_curves(runs, kind) for kind in kinds}
    if all(curve.empty for curves in panels.values() for curve in curves):
        hint = " (exact best responses train none; plot against iterations instead)" if kinds == ("episodes",) else ""
        raise PlotError(f"nothing to draw on the {' or '.join(kinds)} axis{hint}")
    if title is None:
        games = {run.settings.get("game") for run in runs}
        title = str(games.pop()) if len(games) == 1 else None

    for members in group_by_method(runs).values():
        note = note_unequal_lengths(method_label(members[0].settings, varying_settings(runs)), members)
        if note:
            log.warning("%s", note)
    try:
        created = make_directory(paths[0].parent)  # before drawing, so a bad --out fails at once
    except RunDirectoryError as exc:
        raise PlotError(f"cannot write the figure: {exc}") from None
    figure = _draw(panels, title=title, log_y=log_y)
    try:
        for path, fmt in zip(paths, _FORMATS):
            save_figure(figure, path, fmt)
            log.info("wrote %s", path)
    except OSError as exc:
        remove_created(created)
        raise PlotError(f"cannot write the figure to {exc.filename or paths[0]}: {exc.strerror or exc}") from None
    return paths


def episodes_per_iteration(runs: Sequence[RunSummary]) -> int | None:
    """The training budget per iteration when every run spends the same one each iteration, else None.

    Then cumulative episodes (steps, for oracles budgeted in steps) are that number times
    the iteration, and a curve against them is the iterations curve stretched.
    """
    ratios = {row.get("episodes", 0) / row["iteration"] for run in runs for row in run.rows if row.get("iteration")}
    if len(ratios) != 1:
        return None
    (ratio,) = ratios
    return int(ratio) if ratio > 0 and float(ratio).is_integer() else None


def _fitted_legend(figure: Figure, handles: list, labels: list[str], columns: int) -> None:
    """The legend below the panels, in as many of ``columns`` columns as fit the figure's width;
    a figure too narrow for one column is widened."""
    for ncols in range(max(columns, 1), 0, -1):
        legend = figure.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False,
                               title="mean over seeds; shaded: ± 1 standard error", title_fontsize="small")
        figure.draw_without_rendering()
        width = legend.get_window_extent().width
        if width <= figure.bbox.width or ncols == 1:
            break
        legend.remove()
    if width > figure.bbox.width:
        figure.set_figwidth(figure.get_figwidth() * width / figure.bbox.width * 1.05)


def _draw(panels: dict[str, list[MethodCurve]], *, title: str | None, log_y: bool) -> Figure:
    import matplotlib

    kinds = list(panels)
    figure = Figure(figsize=(6.4 * len(kinds), 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    palette = matplotlib.colormaps["tab10"]
    handles: dict[int, tuple[Any, str]] = {}
    for ax, kind in zip(axes, kinds):
        curves = panels[kind]
        positive = [v for c in curves for v in c.mean if v > 0]
        floor = 0.5 * min(positive) if positive else None
        for index, curve in enumerate(curves):
            if curve.empty:
                continue
            color = palette(index % 10)
            style = ("-", "--", ":", "-.")[(index // 10) % 4]
            marker = "o" if curve.x.size <= 40 else None
            (line,) = ax.plot(curve.x, curve.mean, color=color, linestyle=style, marker=marker, markersize=3.5,
                              linewidth=1.6)
            handle: Any = line
            if curve.seeds > 1 and not np.all(np.isnan(curve.se)):
                lower, upper = curve.mean - curve.se, curve.mean + curve.se
                if log_y and floor is not None:
                    lower = np.maximum(lower, floor)
                ax.fill_between(curve.x, lower, upper, color=color, alpha=0.2, linewidth=0)
                handle = (Patch(facecolor=color, alpha=0.2, linewidth=0), line)
            handles.setdefault(index, (handle, f"{curve.label} (n={curve.seeds})"))
        ax.set_xlabel(_X_LABELS[kind])
        ax.grid(True, alpha=0.3)
        if kind == "iterations":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            ax.xaxis.set_major_formatter(EngFormatter())
        if all(curve.empty for curve in curves):
            why = "no training episodes recorded\n(exact best responses train none)" if kind == "episodes" else \
                "no iteration shared by all seeds"
            ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", color="0.4")
            ax.set_xticks([])
    axes[0].set_ylabel(Y_LABEL)
    if log_y:
        for ax in axes:
            ax.set_yscale("log", nonpositive="mask")
    if title:
        figure.suptitle(title)
    ordered = [handles[i] for i in sorted(handles)]
    # a (band, line) tuple handle draws the line over the band patch
    _fitted_legend(figure, [h for h, _ in ordered], [label for _, label in ordered], min(len(ordered), 3))
    return figure



def plot_performance_profile(scores: dict[str, Sequence[float]], out_prefix: Path | str, *, title: str,
                             xlabel: str) -> list[Path]:
    """Performance profile: per arm, the fraction of runs whose score (an exploitability,
    lower is better) is below each threshold tau, with rliable's 95% bootstrap band; PNG and SVG."""
    from fusion_psro.experiments.statistics import performance_profile  # noqa: PLC0415

    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in scores.values()])
    taus = np.linspace(values.min() - 1e-9, values.max() + 1e-9, 101)
    profiles = performance_profile(scores, taus)
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    palette = matplotlib.colormaps["tab10"]
    for k, (arm, (profile, low, high)) in enumerate(profiles.items()):
        ax.plot(taus, profile, color=palette(k % 10), label=f"{arm} ({len(scores[arm])} runs)")
        ax.fill_between(taus, low, high, color=palette(k % 10), alpha=0.15, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of runs below tau")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    paths = output_paths(out_prefix)
    for path in paths:
        save_figure(figure, path, path.suffix[1:], dpi=130)
    return paths
