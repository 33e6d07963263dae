"""Benchmark many runs at once (batched executors and oracles) against the same runs done singly.

Each section is a function that measures, in this one process, and returns its Markdown
(a heading, what was run, a table, the command); ``--section NAME`` runs one, ``--output``
writes it into ``benchmarks/results_batched.md`` between that section's markers, leaving the
other sections of the file as they are. Sections:

* ``cpu-pg``: R PSRO runs on Leduc with the pg oracle (seeds 0..R-1, inits normal / inherit
  / fusion in turn), first one after the other with the single-run path (``run_psro``),
  then as one batch (:func:`fusion_psro.experiments.batched.run_batch`, one torch thread,
  the CPU). Prints the wall time of each, their ratio, the oracle's training time of each
  (the ``train_s`` of every response summed) and its ratio, and the largest difference of
  an exploitability row between the two (the batched path must repeat the single one).

    .venv/bin/python benchmarks/bench_batched.py --section cpu-pg --output benchmarks/results_batched.md
    .venv/bin/python benchmarks/bench_batched.py --section cpu-pg --quick     # smoke run, no file
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch

import fusion_psro
from fusion_psro.experiments.batched import run_batch
from fusion_psro.experiments.runner import run_psro
from fusion_psro.oracles.pg import PGConfig
from fusion_psro.psro import PSROConfig

RESULTS = Path(__file__).with_name("results_batched.md")
INITS = ("normal", "inherit", "fusion")


def _pg_configs(runs: int, iterations: int, steps: int, hidden: tuple[int, ...]) -> list[PSROConfig]:
    options = {"steps": steps, "device": "cpu", "torch_threads": 1, "hidden_sizes": hidden}
    return [PSROConfig(game="leduc_poker", oracle="pg", oracle_options=options, iterations=iterations, seed=seed,
                       init=INITS[seed % len(INITS)]) for seed in range(runs)]


def _train_s(rows) -> float:
    return sum(metrics.get("train_s", 0.0) for row in rows for metrics in row.oracle)


def _single_and_batched(configs: list[PSROConfig]) -> dict[str, float]:
    """Wall and training seconds of ``configs`` run singly, then as one batch; the largest row difference."""
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        single = [run_psro(config, Path(tmp) / f"single{k}", progress=False) for k, config in enumerate(configs)]
        single_s, single_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        outcomes = run_batch(configs, [Path(tmp) / f"batched{k}" for k in range(len(configs))])
        batched_s, batched_cpu = time.perf_counter() - started, time.process_time() - cpu
    failed = [o.error for o in outcomes if o.failed]
    if failed:
        raise SystemExit(f"a batched run failed: {failed[0]}")
    batched = [o.result for o in outcomes]
    difference = max(abs(a.exploitability - b.exploitability) for x, y in zip(single, batched) for a, b in zip(x, y))
    return {"single_s": single_s, "batched_s": batched_s, "single_cpu": single_cpu, "batched_cpu": batched_cpu,
            "single_train": sum(map(_train_s, single)),
            "batched_train": sum(map(_train_s, batched)), "difference": difference}


def section_cpu_pg(args: argparse.Namespace) -> str:
    """``cpu-pg``: batched pg runs against the same runs one after the other (module docstring)."""
    runs, iterations, steps = (4, 2, 5) if args.quick else (args.runs, args.iterations, args.steps)
    networks = [PGConfig().hidden_sizes, (64, 64)]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:  # compiles Leduc and loads what a run loads, before any timing
        run_psro(_pg_configs(1, 1, 1, (8,))[0], Path(tmp) / "warm-up", progress=False)
    rows = []
    for hidden in networks:
        m = _single_and_batched(_pg_configs(runs, iterations, steps, hidden))
        rows.append(f"| {list(hidden)} | {m['single_cpu']:.1f} | {m['batched_cpu']:.1f} | "
                    f"**{m['single_cpu'] / m['batched_cpu']:.2f}x** | {m['single_s']:.1f} | {m['batched_s']:.1f} | "
                    f"{m['single_s'] / m['batched_s']:.2f}x | {m['single_train'] / m['batched_train']:.2f}x | "
                    f"{m['difference']:.1e} |")
    command = (f"python benchmarks/bench_batched.py --section cpu-pg --runs {runs} --iterations {iterations} "
               f"--steps {steps}")
    return "\n".join([
        f"Leduc poker, pg oracle ({steps} Adam steps per best response), {runs} PSRO runs of {iterations} "
        f"iterations (seeds 0..{runs - 1}, inits {' / '.join(INITS)} in turn), one torch thread, the CPU, in one "
        "process: the runs one after the other (`run_psro`), then as one batch (`run_batch`). CPU: the "
        "process's CPU seconds (`time.process_time`) for the whole runs (exact evaluation, meta-solver, fusion, "
        "files included), what other load on a shared machine disturbs least; wall: their wall seconds; "
        "training: the ratio of the oracle's `train_s` of every response, summed (a batched response's share of "
        "its batch; wall time). Max row difference: the largest difference of an exploitability row, batched "
        "vs single.",
        "",
        "| network | single CPU (s) | batched CPU (s) | single / batched | single wall (s) | batched wall (s) | "
        "single / batched | training single / batched | max row difference |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Command: `{command}`",
    ])


#: Sections by name: each returns its Markdown body.
SECTIONS: dict[str, tuple[str, Callable[[argparse.Namespace], str]]] = {
    "cpu-pg": ("CPU: batched pg runs against single runs", section_cpu_pg),
}


def _machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{platform.processor() or platform.machine()}, {cpus} CPUs available to the process; Python "
            f"{platform.python_version()}, torch {torch.__version__}, open_spiel {metadata.version('open_spiel')}, "
            f"fusion-psro {fusion_psro.__version__}")


def write_section(name: str, title: str, body: str, path: Path = RESULTS) -> None:
    """Replace section ``name`` of ``path`` (between its markers), or append it; other sections stay."""
    block = f"<!-- section: {name} -->\n## {title}\n\n{body}\n\nMachine: {_machine()}.\n<!-- end section: {name} -->\n"
    text = path.read_text() if path.exists() else (
        "# Many runs at once: batched runs against single runs\n\n"
        "Written by `benchmarks/bench_batched.py`, one section per `--section`; each section's numbers "
        "were measured in one process.\n\n")
    pattern = re.compile(rf"<!-- section: {re.escape(name)} -->\n.*?<!-- end section: {re.escape(name)} -->\n",
                         re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=sorted(SECTIONS), required=True)
    parser.add_argument("--output", type=Path, help="write the section into this Markdown file (its markers)")
    parser.add_argument("--quick", action="store_true", help="a smoke run at a tiny scale (writes nothing)")
    parser.add_argument("--runs", type=int, default=8, help="cpu-pg: runs (default 8)")
    parser.add_argument("--iterations", type=int, default=10, help="cpu-pg: PSRO iterations (default 10)")
    parser.add_argument("--steps", type=int, default=30, help="cpu-pg: Adam steps per best response (default 30)")
    args = parser.parse_args(argv)
    title, section = SECTIONS[args.section]
    load_before = os.getloadavg()[0]
    body = section(args)
    body += (f"\n\nLoad average (1 minute) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on "
             f"{os.cpu_count()} CPUs; a shared machine's absolute times are noisy, the ratios less so.")
    print(f"## {title}\n\n{body}")
    if args.output is not None and not args.quick:
        write_section(args.section, title, body, args.output)
        print(f"\nwrote section {args.section} of {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
