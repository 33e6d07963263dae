"""Run the unfinished cells of sweep configs as parallel processes, without Ray.

For a machine with many cores and no Ray: every cell of every config becomes one process
(``run_cell``: run, resume or skip, as ``fusion-psro sweep`` does), at most ``--processes``
at a time. The run directories are those the sweep uses, so ``fusion-psro sweep CONFIG``
afterwards reports them (and skips the finished ones)::

    python scripts/sweep_processes.py configs/large-liars-dice.toml configs/large-phantom-ttt.toml --processes 12
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

from fusion_psro.experiments.sweep import load_sweep, run_cell


def _run(args):
    config, out, plugins = args
    started = time.perf_counter()
    try:
        result = run_cell(config, out, plugins)
        return out, result["action"], result["last"].get("approx_exploitability"), time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 (reported with the others)
        return out, f"failed: {type(exc).__name__}: {exc}", None, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--processes", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    tasks = []
    for path in args.configs:
        sweep = load_sweep(path, quick=args.quick)
        tasks += [(cell.config, str(cell.out), sweep.plugins) for cell in sweep.cells]
    with multiprocessing.get_context("spawn").Pool(args.processes, maxtasksperchild=1) as pool:
        for out, action, approx, seconds in pool.imap_unordered(_run, tasks):
            print(f"{out}: {action}, approximate exploitability {approx}, {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
