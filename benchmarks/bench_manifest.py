"""What the run directory's manifest costs a run: the main job's cell, timed with and without its part.

Runs one cell of ``configs/main.toml`` (Leduc poker, pg oracle, 30 steps per best response,
100 iterations; ``--init`` and ``--seed`` choose the cell, ``--iterations`` shortens it) into
a temporary directory, in this process, and times every piece of work the manifest adds:

* hashing what is written (``sha256`` of each checkpoint file, member file and metrics line;
  the population's files at the end),
* building and writing ``manifest.json`` (atomically, with ``fsync``) after every iteration
  and at the end,
* working out which files the manifest lists (``Checkpointer.vouched``).

Pruning old checkpoints is not counted: runs pruned before the manifest existed too.
Prints the manifest's seconds, the run's wall time, and the share::

    .venv/bin/python benchmarks/bench_manifest.py                     # one full cell: fusion, seed 0
    .venv/bin/python benchmarks/bench_manifest.py --iterations 20     # a shorter run
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import tempfile
import time
import tomllib
from pathlib import Path

from fusion_psro.experiments import checkpoint, manifest, rundir, runner
from fusion_psro.psro import PSROConfig

ROOT = Path(__file__).resolve().parent.parent


def _timed(owner, name: str, spent: list[float]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--init", default="fusion", help="the cell's init (default: fusion)")
    parser.add_argument("--seed", type=int, default=0, help="the cell's seed (default: 0)")
    parser.add_argument("--iterations", type=int, help="fewer iterations than main.toml's 100")
    args = parser.parse_args()
    settings = tomllib.loads((ROOT / "configs" / "main.toml").read_text())["settings"]
    settings.update(init=args.init, seed=args.seed)
    if args.iterations:
        settings["iterations"] = args.iterations
    config = PSROConfig(**settings)

    spent: list[float] = []
    for owner, name in [(checkpoint, "sha256_bytes"),  # (the config's hash is inside commit)
                        (manifest.ManifestWriter, "commit"), (manifest.ManifestWriter, "row_appended"),
                        (checkpoint.Checkpointer, "vouched")]:
        _timed(owner, name, spent)
    population_hashes: list[float] = []
    save_population = rundir.save_population

    def timed_save(run_dir, populations):  # only the hashing of the population's bytes is the manifest's
        files = rundir.population_files(populations)
        started = time.perf_counter()
        for data in files.values():
            manifest.hashlib.sha256(data).hexdigest()
        population_hashes.append(time.perf_counter() - started)
        return save_population(run_dir, populations)

    runner.save_population = timed_save
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        rows = runner.run_psro(config, Path(tmp) / "run", progress=False)
        wall = time.perf_counter() - started
    cost = sum(spent) + sum(population_hashes)
    print(f"main.toml cell init={args.init} seed={args.seed}: {len(rows)} iterations, run {wall:.1f} s "
          f"(wall clock, this process), manifest {cost:.3f} s = {100 * cost / wall:.3f}% of the run "
          f"({cost / len(rows) * 1e3:.2f} ms per iteration); final exploitability {rows[-1].exploitability:.4f}")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
