"""Speed-up of parallel best responses: PSRO in sampled play on Leduc with 2 local Ray workers against 1.

Both runs have the same settings and seed, one after the other in one process; the
metrics must be identical (the check prints it), only the wall time may differ. With 2
workers the two players' best responses of an iteration train as two Ray tasks and the
new meta-game entries are sampled in two tasks; Ray's start (a few seconds) falls in the
first iteration, so the per-iteration times are reported without it as well.

    PYTHONPATH=src python benchmarks/bench_parallel.py --iterations 4 --episodes 3000 --output benchmarks/results_parallel.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fusion_psro.experiments import run_psro
from fusion_psro.psro import PSROConfig


def _comparable(rows):
    return [{k: v for k, v in row.to_json().items() if not k.endswith("_s") and k != "oracle"} for row in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    config = PSROConfig(game="leduc_poker", oracle="dqn", evaluation="sampled", iterations=args.iterations,
                        episodes=args.episodes, seed=0, sims_per_entry=1000)
    load_before = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            started = time.perf_counter()
            rows = run_psro(config, Path(tmp) / f"w{workers}", progress=False, workers=workers)
            results[workers] = (time.perf_counter() - started, rows)
            print(f"{workers} worker(s): {results[workers][0]:.1f} s", file=sys.stderr, flush=True)
    identical = _comparable(results[1][1]) == _comparable(results[2][1])
    per_iteration = {w: [r.iteration_s for r in rows] for w, (_, rows) in results.items()}
    later = {w: statistics.median(t[1:]) if len(t) > 1 else t[0] for w, t in per_iteration.items()}
    lines = [
        f"## PSRO in sampled play on Leduc: 2 local Ray workers against 1 ({args.iterations} iterations, "
        f"{args.episodes:,} episodes per best response, 1,000 games per meta-game entry)", "",
        f"Command: `PYTHONPATH=src python benchmarks/bench_parallel.py --iterations {args.iterations} --episodes "
        f"{args.episodes}`", "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (shared with other jobs). Metrics identical: "
        f"{'yes' if identical else 'NO'}.", "",
        "| workers | wall s (whole run) | seconds per iteration | median of iterations 2.. |",
        "|---:|---:|---|---:|",
    ]
    for workers, (wall, _) in results.items():
        times = ", ".join(f"{t:.1f}" for t in per_iteration[workers])
        lines.append(f"| {workers} | {wall:.1f} | {times} | {later[workers]:.1f} |")
    lines += ["", f"**Speed-up: {results[1][0] / results[2][0]:.2f}x over the whole run, "
              f"{later[1] / later[2]:.2f}x per iteration after the first.**", ""]
    report = "\n".join(lines)
    print(report)
    if args.output:
        with open(args.output, "a") as handle:
            handle.write(report + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
