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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from fusion_psro.experiments.plots import PlotError, output_paths
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
        figure.savefig(path, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)
        log.info("wrote %s", path)
    return paths


__all__ = ["plot_mixture_trajectories"]
