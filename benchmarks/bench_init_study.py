"""What an initialization-study cell costs, against getting the same best response from ``fusion-psro run``.

A study cell rebuilds the PSRO state after iteration ``k`` of a recorded run from its saved
members and trains ONE best response (one player, one init) to a budget, measuring it on
the way. Without the study, the same response needs a PSRO run from scratch to iteration
``k + 1`` with that init (every earlier best response trained again, both players). Both
are timed here in one process, on the same Leduc DQN run and budget:

    .venv/bin/python benchmarks/bench_init_study.py RUN_DIR --iteration 3 --budget 2000 --cells 4

``RUN_DIR`` is a finished DQN run with its population saved (e.g. a cell of
configs/init-study-leduc-runs.toml). The script prints the seconds per cell, the seconds of
the run-based equivalent, their ratio, and the time a 40-state Leduc study with 5 inits at
the budget would take on ``--workers`` cores at the measured cell cost (markdown to stdout).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path


def time_cells(run_dir: Path, iteration: int, budget: int, count: int) -> list[float]:
    from fusion_psro.experiments.init_study import StudyCell, StudySettings, run_study_cell

    settings = StudySettings(budgets=(budget,))
    inits = ["normal", "fusion", "inherit", "orthogonal", "kaiming"]
    times = []
    with tempfile.TemporaryDirectory() as out:
        for k in range(count):
            cell = StudyCell(str(run_dir), iteration, k % 2, inits[k % len(inits)], k)
            started = time.perf_counter()
            run_study_cell(cell, settings, out)
            times.append(time.perf_counter() - started)
    return times


def time_run_equivalent(run_dir: Path, iteration: int, budget: int) -> float:
    """A fresh run with the recorded settings to iteration k + 1, ``budget`` episodes per best response."""
    from fusion_psro.experiments.results import load_run
    from fusion_psro.psro import PSRO

    config = dataclasses.replace(load_run(run_dir).config, iterations=iteration + 1, episodes=budget)
    started = time.perf_counter()
    PSRO(config).run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--iteration", type=int, default=3)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    cells = time_cells(args.run_dir, args.iteration, args.budget, args.cells)
    cell_s = statistics.median(cells)
    run_s = time_run_equivalent(args.run_dir, args.iteration, args.budget)
    study_cells = 40 * 2 * 5
    responses = 2 * (args.iteration + 1)
    print(f"| budget | study cell (median of {len(cells)}) | fusion-psro run to iteration {args.iteration + 1} "
          f"({responses} best responses) | run / cell | 40-state study, 5 inits, {args.workers} cores |")
    print("|---|---|---|---|---|")
    print(f"| {args.budget:,} episodes | {cell_s:.1f} s | {run_s:.1f} s | {run_s / cell_s:.1f}x | "
          f"{study_cells * cell_s / args.workers / 60:.1f} min ({study_cells} cells) |")


if __name__ == "__main__":
    main()
