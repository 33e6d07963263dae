"""Speed-up of parallel best responses: PSRO in sampled play on Leduc with 2 local Ray workers against 1.

The same settings and seed run with one worker (in this process) and with two (a local
Ray), alternating ``--repeats`` times in one process (1, 2, 2, 1, ...) so that changes of
the machine's load hit both; Ray is started and warmed up (its workers have built the
oracle) before any timed run, so the times are those of the PSRO iterations. The metrics
of every run must be identical (the check is printed): only the wall time may differ.
With 2 workers, the two players' best responses of an iteration train as two Ray tasks
and the new meta-game entries are sampled in two tasks.

    PYTHONPATH=src python benchmarks/bench_parallel.py --iterations 3 --episodes 2000 --repeats 2 \\
        --output benchmarks/results_parallel.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

from fusion_psro.psro import PSRO, PSROConfig
from fusion_psro.psro.executors import RayExecutor, SerialExecutor


def _comparable(rows):
    return [{k: v for k, v in row.to_json().items() if not k.endswith("_s") and k != "oracle"} for row in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    config = PSROConfig(game="leduc_poker", oracle="dqn", evaluation="sampled", iterations=args.iterations,
                        episodes=args.episodes, seed=0, sims_per_entry=1000)
    executors = {1: SerialExecutor(), 2: RayExecutor(workers=2)}
    warm = PSRO(PSROConfig(**{**config.__dict__, "iterations": 1, "episodes": 100}), executor=executors[2])
    warm.run()  # starts Ray; its workers build the oracle
    load_before = os.getloadavg()[0]
    times, rows = {1: [], 2: []}, {}
    order = [w for r in range(args.repeats) for w in ((1, 2) if r % 2 == 0 else (2, 1))]
    for workers in order:
        started = time.perf_counter()
        result = PSRO(config, executor=executors[workers]).run()
        times[workers].append(time.perf_counter() - started)
        rows.setdefault(workers, result)
        print(f"{workers} worker(s): {times[workers][-1]:.1f} s", file=sys.stderr, flush=True)
    executors[2].close()
    identical = _comparable(rows[1]) == _comparable(rows[2])
    median = {w: statistics.median(t) for w, t in times.items()}
    lines = [
        f"## PSRO in sampled play on Leduc: 2 local Ray workers against 1 ({args.iterations} iterations, "
        f"{args.episodes:,} episodes per best response, MLP 256x256x256, 1,000 games per meta-game entry)", "",
        f"Command: `PYTHONPATH=src python benchmarks/bench_parallel.py --iterations {args.iterations} --episodes "
        f"{args.episodes} --repeats {args.repeats}`", "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (shared with other jobs). Runs alternate "
        f"({', '.join(map(str, order))} workers); Ray was started and warmed up before them. Metrics identical: "
        f"{'yes' if identical else 'NO'}.", "",
        "| workers | wall s per run | median |", "|---:|---|---:|",
    ]
    for workers in (1, 2):
        lines.append(f"| {workers} | {', '.join(f'{t:.1f}' for t in times[workers])} | {median[workers]:.1f} |")
    lines += ["", f"**Speed-up of 2 workers over 1: {median[1] / median[2]:.2f}x.**", ""]
    report = "\n".join(lines)
    print(report)
    if args.output:
        with open(args.output, "a") as handle:
            handle.write(report + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
