"""Recompute a sampled-play run's meta-game from its saved members and compare it with the recorded one.

Every entry is a function of the run seed and its two members (games seeded by their
digests), so recomputing it must give the checkpointed value exactly; a difference means
the recorded games were not the ones the members play::

    python scripts/verify_meta_game.py runs/large-liars-dice/*-seed*
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from fusion_psro.experiments.checkpoint import CHECKPOINT_DIR
from fusion_psro.experiments.results import load_run
from fusion_psro.psro.sampled_space import SampledSpace


def verify(run_dir: Path) -> bool:
    run = load_run(run_dir)
    newest = sorted((run_dir / CHECKPOINT_DIR).glob("iteration-*.npz"))[-1]
    with np.load(newest) as data:
        recorded = data["matrix"]
    space = SampledSpace.create(run.config.resolved())
    rows = [m.policy for m in run.populations[0]]
    columns = [m.policy for m in run.populations[1]]
    pairs = [(r, c) for r in rows for c in columns]
    values = np.array([e[0] for e in space.sample_pairs(pairs)]).reshape(len(rows), len(columns))
    same = np.array_equal(values, recorded)
    print(f"{run_dir}: {recorded.shape[0]}x{recorded.shape[1]} entries, "
          f"{'identical' if same else f'DIFFERENT (max |difference| {np.abs(values - recorded).max():.4g})'}")
    return same


if __name__ == "__main__":
    sys.exit(0 if all([verify(Path(d)) for d in sys.argv[1:]]) else 1)
