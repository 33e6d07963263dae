"""Behaviour snapshot: every variant x init at small budgets, metrics without timings.

A refactoring that must not change results is checked by taking a snapshot before and
after and comparing them::

    python scripts/metrics_snapshot.py --out /tmp/before      # on the old code
    python scripts/metrics_snapshot.py --out /tmp/after       # on the new code
    python scripts/metrics_snapshot.py --compare /tmp/before /tmp/after

Each case runs ``PSRO(config).run()`` in this process (one torch thread, CPU) and writes
its metrics rows as JSON with the wall-clock fields removed, plus a SHA-256 of the final
populations (tabular policies and network parameters). ``--compare`` prints one line per
case and exits 1 if any case differs.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

#: Wall-clock fields: the only numbers allowed to differ between two snapshots.
TIMING_KEYS = {"wall_s", "iteration_s", "fusion_s", "train_s", "checkpoint_s"}
#: Metrics fields added since a snapshot may have been taken: ``--compare`` ignores these
#: keys of a row when only one of the two snapshots has them (both: they must be equal).
ADDED_KEYS = {"start_distances"}

SMALL_DQN = {"hidden_sizes": (16, 16), "batch_size": 32, "min_replay_before_learning": 64,
             "replay_capacity": 2000, "num_envs": 32, "diversity_candidates": 3}
VARIANTS = ("psro", "psro-rn", "p-psro", "dpp", "bdrd", "psd")
DQN_INITS = ("normal", "orthogonal", "kaiming", "inherit", "fusion")
POINT_INITS = ("normal", "inherit", "fusion")


def _pipeline(variant: str) -> dict:
    """The pipeline settings of every case of a pipeline variant (2 learners, frozen after 2 iterations)."""
    return {"learners": 2, "max_iterations": 2} if variant == "p-psro" else {}


def cases() -> dict[str, dict]:
    """Name -> PSROConfig keyword arguments."""
    found = {}
    for game, variant, init in itertools.product(("kuhn_poker", "leduc_poker"), VARIANTS, DQN_INITS):
        found[f"{game}-dqn-{variant}-{init}"] = dict(
            game=game, oracle="dqn", variant=variant, init=init, iterations=3, episodes=200, seed=3,
            variant_options=_pipeline(variant), oracle_options=dict(SMALL_DQN),
        )
    for game, variant in itertools.product(("kuhn_poker", "leduc_poker"), ("psro", "psro-rn", "p-psro")):
        found[f"{game}-exact-{variant}"] = dict(game=game, oracle="exact", variant=variant, iterations=6,
                                                variant_options=_pipeline(variant))
    for solver in ("uniform", "prd", "rm"):
        found[f"leduc_poker-exact-psro-{solver}"] = dict(game="leduc_poker", oracle="exact", meta_solver=solver,
                                                         iterations=5)
    found["kuhn_poker-exact-shared"] = dict(game="kuhn_poker", oracle="exact", population="shared", iterations=5)
    found["leduc_poker-dqn-fusion-start3-inherit"] = dict(
        game="leduc_poker", oracle="dqn", init="fusion", fusion_start=3, fusion_fallback="inherit", iterations=4,
        episodes=200, seed=5, oracle_options=dict(SMALL_DQN))
    found["kuhn_poker-dqn-rn2-prd"] = dict(game="kuhn_poker", oracle="dqn", init="fusion", variant="psro-rn",
                                           variant_options={"learners": 2}, meta_solver="prd", iterations=3, episodes=200,
                                           oracle_options=dict(SMALL_DQN))
    for game, variant, init in itertools.product(("mixture", "mixture_dpp_code"), VARIANTS, POINT_INITS):
        found[f"{game}-gradient-{variant}-{init}"] = dict(
            game=game, variant=variant, init=init, iterations=5, seed=2, variant_options=_pipeline(variant),
            oracle_options={"steps": 20})
    return found


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _population_digest(populations) -> str:
    digest = hashlib.sha256()
    for members in populations:
        for member in members:
            digest.update(np.ascontiguousarray(member.policy, dtype=np.float64).tobytes())
            for name, tensor in sorted((member.parameters or {}).items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def take_snapshot(out: Path, only: str | None) -> None:
    import torch

    from fusion_psro.psro import PSRO, PSROConfig

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    for name, settings in cases().items():
        if only and not any(part in name for part in only.split(",")):
            continue
        started = time.perf_counter()
        psro = PSRO(PSROConfig(**settings))
        rows = [row.to_json() if hasattr(row, "to_json") else row for row in psro.run()]
        record = {"rows": _strip(rows), "populations": _population_digest(psro.state.populations)}
        (out / f"{name}.json").write_text(json.dumps(record, sort_keys=True, indent=1) + "\n")
        print(f"{name}: {len(rows)} iterations, exploitability {rows[-1]['exploitability']:.6f} "
              f"({time.perf_counter() - started:.1f} s)", flush=True)


def _without_added(a: dict, b: dict) -> bool:
    """Whether two snapshots of a case are equal, row keys of :data:`ADDED_KEYS` that only one has aside."""
    rows_a, rows_b = a.get("rows", []), b.get("rows", [])
    if len(rows_a) != len(rows_b):
        return False
    for row_a, row_b in zip(rows_a, rows_b):
        for key in ADDED_KEYS:
            if (key in row_a) != (key in row_b):
                row_a.pop(key, None)
                row_b.pop(key, None)
    return a == b


def compare(before: Path, after: Path) -> int:
    names = sorted({p.name for p in before.glob("*.json")} | {p.name for p in after.glob("*.json")})
    different = 0
    for name in names:
        a, b = before / name, after / name
        if not a.exists() or not b.exists():
            print(f"MISSING {name} ({'before' if not a.exists() else 'after'})")
            different += 1
            continue
        same = _without_added(json.loads(a.read_text()), json.loads(b.read_text()))
        different += not same
        print(f"{'identical' if same else 'DIFFERENT'} {name[:-5]}")
    print(f"{len(names) - different} of {len(names)} cases identical")
    return 1 if different else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write a snapshot into this directory")
    parser.add_argument("--only", help="only the cases whose name contains one of these comma-separated texts")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="compare two snapshots")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        parser.error("give --out DIR or --compare BEFORE AFTER")
    take_snapshot(args.out, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
