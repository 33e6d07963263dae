"""Mixture-game trajectory figure: the humps, each population's points, and where each best response started.

For runs of the non-transitive mixture game, one panel per run, side by side (PSRO next
to Fusion-PSRO reproduces the paper's trajectory figure):

* the background is the contour map of the hump landscape ``sum_k p_k(x)``, with the
  hump centres numbered in the order of the dominance cycle (hump ``k`` beats humps
  ``k+1 .. k+3``);
* every best response is a marker at the point it reached, coloured by the PSRO
  iteration that produced it (player 0 circles, player 1 triangles);
* its starting point (for Fusion-PSRO the fused point, the meta-Nash-weighted mean of
  the population; for scratch initialization a draw near the origin) is a small cross,
  joined to where the ascent ended by a thin line.

Everything is read from the run's ``metrics.jsonl`` (the gradient oracle records the
start and end point of every best response).

:func:`learner_paths` and :func:`start_statistics` measure the same records: how far each
new learner's starting point lies from the nearest hump centre, and how many of the
points that join the population (nearly) repeat one that joined before.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from fusion_psro.experiments.plots import PlotError, output_paths, save_figure
from fusion_psro.experiments.runs import load_runs, method_label
from fusion_psro.psro.spaces import MIXTURE_GAMES

log = logging.getLogger(__name__)

_MARKERS = ("o", "^")


def _responses(rows: list[dict]) -> list[tuple[int, int, np.ndarray, np.ndarray, str]]:
    """``(iteration, player, start, point, init)`` of every best response in a run."""
    found = []
    for row in rows:
        inits = row.get("inits") or [None] * len(row.get("oracle", []))
        for entry, init in zip(row.get("oracle", []), inits):
            if "point" in entry and "start" in entry:
                found.append((row["iteration"], int(entry.get("player", 0)), np.array(entry["start"]),
                              np.array(entry["point"]), init or ""))
    return found


@dataclasses.dataclass
class LearnerPath:
    """One learner of a player, over the iterations it trained in.

    Attributes
    ----------
    iteration:
        The iteration of its first training.
    init:
        Where it started: the run's initialization (``fusion``, ``normal``, ``inherit``).
    start:
        ``[2]``: the point its first ascent started from (for fusion, the fused point).
    points:
        ``[2]`` points after each iteration of its training (one for a plain best response,
        several for a P-PSRO learner that keeps training).
    joined:
        Whether it joined the population for good: at once for variants that append their
        best responses, when frozen for P-PSRO (learners still training at the end: False).
    """

    iteration: int
    init: str
    start: np.ndarray
    points: list[np.ndarray]
    joined: bool = False


def learner_paths(rows: list[dict], init: str, player: int = 0) -> list[LearnerPath]:
    """Every learner of ``player`` in a run's metrics rows, in order of its first training.

    A response recorded with init ``continue`` is a P-PSRO learner that keeps training; a
    pipeline keeps its learners lowest first, and its lowest leaves (joins the population)
    at the end of an iteration whose ``frozen`` lists the player. Any other response is a
    new best response that joins at once. ``init`` is the run's initialization (P-PSRO
    records its new learners' starts as continued training).
    """
    paths: list[LearnerPath] = []
    active: list[LearnerPath] = []  # learners still training, lowest first
    for row in rows:
        inits = row.get("inits") or [None] * len(row.get("oracle", []))
        continuing = 0
        for entry, how in zip(row.get("oracle", []), inits):
            if "point" not in entry or int(entry.get("player", 0)) != player:
                continue
            point = np.array(entry["point"], dtype=np.float64)
            if how == "continue" and continuing < len(active):
                active[continuing].points.append(point)
            else:
                pipeline = how == "continue"
                path = LearnerPath(row["iteration"], init, np.array(entry["start"], dtype=np.float64), [point],
                                   joined=not pipeline)
                paths.append(path)
                if pipeline:
                    active.append(path)
            continuing += how == "continue"
        if player in row.get("frozen", []) and active:
            active.pop(0).joined = True
    return paths


def start_statistics(paths: list[LearnerPath], centres: np.ndarray, *, identical: float = 1e-6,
                     near: float = 1e-2) -> dict[str, float]:
    """How close starts lie to hump centres, and how often joined points repeat earlier ones.

    Returns ``starts`` (learners counted), ``start_distance_median`` and
    ``start_distance_mean`` (distance of each start to its nearest hump centre),
    ``starts_within_0.5`` (share of starts less than 0.5 from a centre),
    ``point_distance_median`` (the same for where the learners ended), ``joined`` (points
    that joined the population), and ``repeated_identical`` / ``repeated_near``: joined
    points after the first that lie within ``identical`` / ``near`` of a point that
    joined before.
    """
    centres = np.asarray(centres, dtype=np.float64)

    def to_centre(points: np.ndarray) -> np.ndarray:
        return np.linalg.norm(points[:, None, :] - centres[None], axis=2).min(axis=1)

    starts = to_centre(np.stack([p.start for p in paths]))
    ends = to_centre(np.stack([p.points[-1] for p in paths]))
    joined = [p.points[-1] for p in paths if p.joined]
    gaps = [min(np.linalg.norm(joined[k] - earlier) for earlier in joined[:k]) for k in range(1, len(joined))]
    return {
        "starts": len(paths),
        "start_distance_median": float(np.median(starts)),
        "start_distance_mean": float(starts.mean()),
        "starts_within_0.5": float((starts < 0.5).mean()),
        "point_distance_median": float(np.median(ends)),
        "joined": len(joined),
        "repeated_identical": int(sum(g < identical for g in gaps)),
        "repeated_near": int(sum(g < near for g in gaps)),
    }


def plot_mixture_trajectories(
    run_dirs: Sequence[Path | str], out_prefix: Path | str, *, overwrite: bool = False, title: str | None = None
) -> list[Path]:
    """Draw the trajectory figure of mixture-game runs to ``PREFIX.png`` and ``PREFIX.svg``.

    Raises :class:`~fusion_psro.experiments.plots.PlotError` if a run is not of the
    mixture game or records no best-response points, or if the outputs exist and
    ``overwrite`` is False.
    """
    paths = output_paths(out_prefix)
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise PlotError(f"{', '.join(map(str, existing))} already exist; pass --overwrite to replace")
    runs = load_runs(run_dirs)
    if not runs:
        raise PlotError("no run directories given")
    games = set()
    for run in runs:
        game = run.settings.get("game")
        if game not in MIXTURE_GAMES:
            raise PlotError(
                f"{run.path} is a run of {game!r}; the trajectory figure is for the mixture game "
                f"({', '.join(MIXTURE_GAMES)}). Plot learning curves without --trajectories"
            )
        games.add(game)
        if not _responses(run.rows):
            raise PlotError(f"{run.path} records no best-response points (written by an older version?)")

    figure = Figure(figsize=(5.0 * len(runs) + 1.2, 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(runs), squeeze=False, sharex=True, sharey=True)[0]
    iterations = max(run.final["iteration"] for run in runs)
    norm = Normalize(vmin=1, vmax=max(iterations, 2))
    colours = ScalarMappable(norm=norm, cmap="viridis")
    grid = np.linspace(-5.0, 5.0, 241)
    for ax, run in zip(axes, runs):
        game = MIXTURE_GAMES[run.settings["game"]]()
        xx, yy = np.meshgrid(grid, grid)
        landscape = game.activations(np.stack([xx.ravel(), yy.ravel()], axis=1)).sum(axis=1).reshape(xx.shape)
        ax.contourf(xx, yy, landscape, levels=14, cmap="Greys", alpha=0.55)
        ax.contour(xx, yy, landscape, levels=7, colors="0.5", linewidths=0.4)
        for k, (cx, cy) in enumerate(game.centres):
            ax.annotate(str(k), (cx, cy), ha="center", va="center", fontsize=8, color="0.15",
                        xytext=(cx * 1.22, cy * 1.22), textcoords="data")
        for iteration, player, start, point, init in _responses(run.rows):
            color = colours.to_rgba(iteration)
            ax.plot([start[0], point[0]], [start[1], point[1]], color=color, linewidth=0.5, alpha=0.6)
            ax.scatter([start[0]], [start[1]], marker="x", s=14, color=color, linewidths=0.9,
                       alpha=0.9 if init == "fusion" else 0.5)
            ax.scatter([point[0]], [point[1]], marker=_MARKERS[player % 2], s=26, color=color,
                       edgecolors="black", linewidths=0.4, zorder=3)
        final = run.final
        label = method_label(run.settings, ["seed"])
        ax.set_title(f"{label}\nexploitability {final['exploitability']:.4f} after {final['iteration']} iterations",
                     fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(grid[0], grid[-1])
    figure.colorbar(colours, ax=list(axes), label="PSRO iteration", shrink=0.85)
    figure.suptitle(title or "mixture game: best responses (o player 0, ^ player 1) and their starting points (x)",
                    fontsize=11)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for path, fmt in zip(paths, ("png", "svg")):
        save_figure(figure, path, fmt)
        log.info("wrote %s", path)
    return paths


__all__ = ["LearnerPath", "learner_paths", "plot_mixture_trajectories", "start_statistics"]
