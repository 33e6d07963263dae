"""Benchmark many runs at once (batched executors, oracles and environments), in one process.

Each section is a function that measures, in this one process, and returns its Markdown
(what was run, a table, the command); ``--section NAME`` runs one (``all``: every one,
``--list-sections`` names them), ``--output`` writes it into
``benchmarks/results_batched.md`` between that section's markers, leaving the other sections
of the file as they are. ``--gpu`` asks every section for its GPU sizes. Sections:

* ``cpu-pg``: R PSRO runs on Leduc with the pg oracle (seeds 0..R-1, inits normal / inherit
  / fusion in turn), first one after the other with the single-run path (``run_psro``),
  then as one batch (:func:`fusion_psro.experiments.batched.run_batch`, one torch thread,
  the CPU). Prints the wall time of each, their ratio, the oracle's training time of each
  (the ``train_s`` of every response summed) and its ratio, and the largest difference of
  an exploitability row between the two (the batched path must repeat the single one).

* ``play``: vectorized play of compiled Leduc poker, every seat taking uniformly random
  legal actions, chance playing its distribution, finished games restarting at once
  (auto-reset): episodes per second of

  - ``RandomPlay`` (``fusion_psro.games.tensor_episodes``), torch, on the CPU and, where
    present, on CUDA (with ``--compile`` also under ``torch.compile``): one player decision
    per game and pass, chance folded into precomputed per-decision transition tables
    (pgx's step is also one player decision: it deals the cards inside ``init`` and ``step``);
  - ``TensorEpisodes`` (the learner-facing environment a batched DQN trains on): one job,
    the learner's random legal actions drawn on the device, a uniform opponent;
  - today's NumPy ``VectorizedEpisodes`` (learner actions random legal, uniform opponent);
  - pgx's ``leduc_holdem`` (JAX, ``jit`` of a ``lax.scan`` over ``vmap``-ed
    ``pgx.experimental.auto_reset(step)``, random legal actions), skipped with a note when
    pgx is not installed (``pip install -e '.[bench]'``).

  OpenSpiel's and pgx's Leduc have the same rules and 6-card deck; every implementation
  plays at the same batch sizes, timed after a warm-up, median of repeats.

* ``dqn-scaling``: the vectorized DQN's throughput against the number of runs R: R runs x 2
  players of Leduc (jobs of one ``DQNOracle.best_responses`` call, each against a fixed
  mixture of random opponents), R = 1, 4, 16 with a small network on the CPU; with ``--gpu``
  R = 1, 4, 16, 64 with the paper's DQN settings on CUDA. Episodes/s and updates/s summed over
  the jobs; larger R are skipped where they would pass ``--max-seconds``.

    .venv/bin/python benchmarks/bench_batched.py --section cpu-pg --output benchmarks/results_batched.md
    .venv/bin/python benchmarks/bench_batched.py --section play --compile --output benchmarks/results_batched.md
    .venv/bin/python benchmarks/bench_batched.py --section play --quick        # smoke run, no file
    .venv/bin/python benchmarks/bench_batched.py --section dqn-scaling --output benchmarks/results_batched.md
    .venv/bin/python benchmarks/bench_batched.py --section all --gpu --output OUT.md   # on a GPU machine
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

import fusion_psro
from fusion_psro.experiments.batched import run_batch
from fusion_psro.experiments.runner import run_psro
from fusion_psro.games import compile_game
from fusion_psro.games.simulation import VectorizedEpisodes
from fusion_psro.games.tensor_episodes import EpisodeJob, RandomPlay, TensorEpisodes
from fusion_psro.oracles.base import BestResponseRequest
from fusion_psro.oracles.dqn import DQNConfig, DQNOracle
from fusion_psro.oracles.pg import PGConfig
from fusion_psro.policies import random_policy, uniform_policy
from fusion_psro.psro import PSROConfig

LEDUC = "leduc_poker"
RESULTS = Path(__file__).with_name("results_batched.md")
INITS = ("normal", "inherit", "fusion")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_rate(run, repeats: int) -> float:
    """Median over ``repeats`` of ``episodes / seconds`` returned by ``run()`` (after one warm-up call)."""
    run()
    rates = []
    for _ in range(repeats):
        episodes, seconds = run()
        rates.append(episodes / seconds)
    return statistics.median(rates)


# ---------------------------------------------------------------------------- cpu-pg


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


# ---------------------------------------------------------------------------- play


def torch_random_play(compiled, batch: int, passes: int, device: torch.device, compile: bool = False):
    play = RandomPlay(compiled, num_envs=batch, device=device, seed=0, compile=compile)

    def run():
        before = play.episodes_completed
        _sync(device)
        started = time.perf_counter()
        play.run(passes)
        _sync(device)
        seconds = time.perf_counter() - started
        return play.episodes_completed - before, seconds

    return run


def torch_learner_play(compiled, batch: int, steps: int, device: torch.device):
    job = EpisodeJob(0, uniform_policy(compiled, 1))
    episodes = TensorEpisodes(compiled, [job], num_envs=batch, device=device, seed=0, check_actions=False)
    episodes.reset()
    generator = torch.Generator(device=device).manual_seed(1)

    def run():
        before = int(episodes.episodes_completed[0])
        _sync(device)
        started = time.perf_counter()
        for _ in range(steps):  # uniform legal actions by inverse CDF, as numpy_play draws them
            counts = episodes.legal_mask().to(torch.float32).cumsum(dim=-1)
            uniform = torch.rand(1, batch, 1, generator=generator, device=device) * counts[..., -1:]
            episodes.step((counts <= uniform).sum(dim=-1))
        _sync(device)
        seconds = time.perf_counter() - started
        return int(episodes.episodes_completed[0]) - before, seconds

    return run


def numpy_play(compiled, batch: int, steps: int):
    episodes = VectorizedEpisodes(compiled, 0, uniform_policy(compiled, 1), num_envs=batch, seed=0)
    legal = compiled.players[0].legal_mask
    cdf = np.cumsum(legal / legal.sum(axis=1, keepdims=True), axis=1)
    rng = np.random.default_rng(1)
    episodes.reset()

    def run():
        before = episodes.episodes_completed
        started = time.perf_counter()
        for _ in range(steps):
            rows = cdf[episodes.infostates]
            episodes.step(np.argmax(rows > rng.random(batch)[:, None], axis=1))
        return episodes.episodes_completed - before, time.perf_counter() - started

    return run


def pgx_play(batch: int, steps: int, reset: bool = True):
    """pgx's Leduc under ``jit``: ``steps`` random legal moves of ``batch`` games per call.

    With ``reset`` (the measurement), ``pgx.experimental.auto_reset`` restarts finished games
    and the episodes counted are those that ended. Without it (a diagnostic only), finished
    games stay terminated and ``terminated.sum()`` summed over the steps counts each finished
    game again at every later step: not episodes.
    """
    import jax
    import jax.numpy as jnp
    import pgx
    from pgx.experimental import auto_reset

    env = pgx.make("leduc_holdem")
    init = jax.vmap(env.init)
    step = jax.vmap(auto_reset(env.step, env.init)) if reset else jax.vmap(env.step)

    def body(carry, _):
        state, key, count = carry
        key, act_key, reset_key = jax.random.split(key, 3)
        logits = jnp.where(state.legal_action_mask, 0.0, -jnp.inf)
        action = jax.random.categorical(act_key, logits, axis=-1)
        state = step(state, action, jax.random.split(reset_key, batch)) if reset else step(state, action)
        return (state, key, count + state.terminated.sum()), None

    @jax.jit
    def play(state, key):
        (state, key, count), _ = jax.lax.scan(body, (state, key, jnp.int32(0)), None, length=steps)
        return state, key, count

    carry = [init(jax.random.split(jax.random.PRNGKey(0), batch)), jax.random.PRNGKey(1)]

    def run():
        started = time.perf_counter()
        state, key, count = play(*carry)
        count = int(jax.block_until_ready(count))
        seconds = time.perf_counter() - started
        carry[:] = [state, key] if reset else carry
        return count, seconds

    return run


@functools.cache
def pgx_version() -> str | None:
    """pgx's version where it is installed and imports (with JAX); None, with a note on stderr, otherwise."""
    try:
        version = metadata.version("pgx")
    except metadata.PackageNotFoundError:
        return None
    try:
        import pgx  # noqa: F401, PLC0415 (imports JAX)
    except Exception as exc:  # noqa: BLE001 (a missing JAX skips the pgx column, with the reason)
        print(f"pgx {version} is installed but does not import ({type(exc).__name__}: {exc}); its column is skipped",
              file=sys.stderr)
        return None
    return version


def pgx_backend() -> str:
    import jax

    return jax.default_backend()


def play_row(compiled, batch: int, args, devices: list[torch.device], have_pgx: bool) -> dict:
    """Episodes/s of every implementation at one batch size (keys: see ``render_play``)."""
    steps = max(args.passes // 4, 1)  # a learner step of Leduc is about 2 decisions with chance, opponent
    row = {"batch": batch}
    for device in devices:
        if device.type == "cpu" and batch > args.cpu_max:
            continue
        row[f"random_{device.type}"] = median_rate(torch_random_play(compiled, batch, args.passes, device), args.repeats)
        if args.compile:
            row[f"compiled_{device.type}"] = median_rate(
                torch_random_play(compiled, batch, args.passes, device, compile=True), args.repeats)
        row[f"learner_{device.type}"] = median_rate(torch_learner_play(compiled, batch, steps, device), args.repeats)
    if batch <= args.numpy_max:
        row["numpy"] = median_rate(numpy_play(compiled, batch, steps), args.repeats)
    if have_pgx:
        row["pgx"] = median_rate(pgx_play(batch, args.passes), args.repeats)
    log("  " + ", ".join(f"{k}={v:,.0f}" for k, v in row.items()))
    return row


def play_rows(args, devices: list[torch.device]) -> tuple[list[dict], str]:
    compiled = compile_game(LEDUC)
    have_pgx = pgx_version() is not None
    if not have_pgx:
        log("pgx is not installed (pip install -e '.[bench]'): its rows are skipped")
    rows = [play_row(compiled, batch, args, devices, have_pgx) for batch in args.sizes]
    note = ""
    if have_pgx:  # what counting terminated states without a reset would claim (not episodes)
        batch = 4096 if 4096 in args.sizes else args.sizes[0]
        rate = median_rate(pgx_play(batch, args.passes, reset=False), args.repeats)
        note = (f"Without a reset, pgx's finished games stay terminated: summing `terminated` over "
                f"{args.passes} steps of {batch:,} games would claim {rate / 1e6:.2f}M 'episodes'/s, each "
                "finished game counted again at every later step; the table counts episodes with "
                "`pgx.experimental.auto_reset`.")
    return rows, note


def _rate(row: dict, key: str) -> str:
    return f"{row[key] / 1e6:.2f}M" if key in row else "-"


def _ratio(row: dict, key: str, base: str) -> str:
    return f"{row[key] / row[base]:.2f}x" if key in row and base in row else "-"


def render_play(rows: list[dict], devices: list[torch.device], args) -> list[str]:
    kinds = ["random"] + (["compiled"] if args.compile else []) + ["learner"]
    columns = [f"{kind}_{d.type}" for kind in kinds for d in devices] + ["numpy", "pgx"]
    backend = pgx_backend() if pgx_version() else "-"
    names = {"numpy": "NumPy VectorizedEpisodes (cpu)", "pgx": f"pgx leduc_holdem (JAX, {backend})"}
    for d in devices:
        names[f"random_{d.type}"] = f"torch RandomPlay ({d.type})"
        names[f"compiled_{d.type}"] = f"torch RandomPlay, compiled ({d.type})"
        names[f"learner_{d.type}"] = f"torch TensorEpisodes ({d.type})"
    ratios = [(f"{kind}_{d.type}", "pgx") for kind in kinds for d in devices] + [("numpy", "pgx")]
    header = [names[c] for c in columns] + [f"{names[a].split(' (')[0]} ({a.split('_')[-1]}) / pgx"
                                            if a != "numpy" else "NumPy / pgx" for a, _ in ratios]
    lines = ["| games | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for row in rows:
        cells = [_rate(row, c) for c in columns] + [_ratio(row, a, b) for a, b in ratios]
        lines.append(f"| {row['batch']:,} | " + " | ".join(cells) + " |")
    return lines


def section_play(args: argparse.Namespace) -> str:
    devices = [torch.device("cpu")]
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))
    log(f"play: Leduc, random legal actions, auto-reset; sizes {args.sizes}, devices {[d.type for d in devices]}")
    rows, note = play_rows(args, devices)
    pgx = pgx_version()
    lines = [f"Median of {args.repeats} timed calls after a warm-up; {args.passes} decisions per game per call "
             f"(RandomPlay, pgx), {max(args.passes // 4, 1)} learner steps (TensorEpisodes, NumPy); torch threads: "
             f"{torch.get_num_threads()}; pgx {pgx or 'not installed'}"
             + (f", jax {metadata.version('jax')} on {pgx_backend()}" if pgx else "") + ".", ""]
    lines += render_play(rows, devices, args)
    lines += ([""] + [note] if note else []) + ["", f"Command: `python benchmarks/bench_batched.py {args.command}`"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- dqn-scaling

def _dqn_requests(compiled, runs: int) -> list[BestResponseRequest]:
    """Both players' requests of ``runs`` runs, each against a fixed mixture of 3 random opponents (seed: the run)."""
    requests = []
    for run in range(runs):
        for player in (0, 1):
            rng = np.random.default_rng([run, player, 21])
            population = np.stack([random_policy(compiled, 1 - player, rng) for _ in range(3)])
            requests.append(BestResponseRequest(player, population, rng.dirichlet(np.ones(3)), seed=run))
    return requests


def _dqn_row(oracle: DQNOracle, compiled, runs: int, device: str) -> dict:
    requests = _dqn_requests(compiled, runs)
    _sync(torch.device(device))
    start = time.perf_counter()
    results = oracle.best_responses(requests, device=device)
    _sync(torch.device(device))
    wall = time.perf_counter() - start
    return {"runs": runs, "jobs": len(requests), "wall": wall, "episodes": sum(r.episodes for r in results),
            "updates": sum(r.metrics.updates for r in results)}


def section_dqn_scaling(args: argparse.Namespace) -> str:
    """``dqn-scaling``: the vectorized DQN's training throughput against R (module docstring)."""
    device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    if args.gpu:  # the paper's DQN settings
        sizes, config = [1, 4, 16, 64], DQNConfig(episodes=1000, device=device)
    else:
        sizes, config = [1, 4, 16], DQNConfig(hidden_sizes=(64,), batch_size=128, min_replay_before_learning=256,
                                              num_envs=64, episodes=500, device=device)
    if args.quick:
        sizes, config = [1, 2], dataclasses.replace(config, episodes=100)
    compiled = compile_game(LEDUC)
    oracle = DQNOracle(compiled, config)
    _dqn_row(oracle, compiled, 1, device)  # warm-up: the game's tables, the first kernels
    rows, started = [], time.perf_counter()
    for runs in sizes:
        if rows and (time.perf_counter() - started) + rows[-1]["wall"] * runs / rows[-1]["runs"] > args.max_seconds:
            log(f"dqn-scaling: R = {runs} skipped (would pass --max-seconds {args.max_seconds:g})")
            break
        rows.append(_dqn_row(oracle, compiled, runs, device))
        log(f"dqn-scaling: R = {runs}: {rows[-1]['episodes'] / rows[-1]['wall']:.0f} episodes/s")
    base = rows[0]["episodes"] / rows[0]["wall"]
    table = [f"| {r['runs']} | {r['jobs']} | {r['episodes']:,} | {r['updates']:,} | {r['wall']:.2f} | "
             f"{r['episodes'] / r['wall']:,.0f} | {r['updates'] / r['wall']:,.0f} | "
             f"{r['episodes'] / r['wall'] / base:.2f}x |" for r in rows]
    return "\n".join([
        f"Leduc poker, `DQNOracle.best_responses` (the vectorized DQN) on {device}: R runs x 2 players = 2R jobs "
        f"in one call, each job {config.episodes:,} episodes against a fixed mixture of 3 random opponent "
        f"policies; network {list(config.hidden_sizes)}, batch {config.batch_size}, {config.num_envs} games per "
        f"job, updates from {config.min_replay_before_learning} transitions (the update rule per job as "
        "`best_response`'s). One timed call per R, after a warm-up call; episodes/s and updates/s summed over "
        "the jobs (wall time).",
        "",
        "| R | jobs | episodes | updates | wall (s) | episodes/s | updates/s | episodes/s vs R = 1 |",
        "|---|---|---|---|---|---|---|---|",
        *table,
        "",
        f"Command: `python benchmarks/bench_batched.py {args.command}`",
    ])


# ---------------------------------------------------------------------------- driver

#: Sections by name: each returns its Markdown body.
SECTIONS: dict[str, tuple[str, Callable[[argparse.Namespace], str]]] = {
    "cpu-pg": ("CPU: batched pg runs against single runs", section_cpu_pg),
    "play": ("Vectorized random play of compiled Leduc (episodes per second)", section_play),
    "dqn-scaling": ("Vectorized DQN: training throughput against the number of runs", section_dqn_scaling),
}


def _machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    return (f"{platform.processor() or platform.machine()}, {cpus} CPUs available to the process, {gpu}; Python "
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=[*sorted(SECTIONS), "all"], help="section to run (all: every one)")
    parser.add_argument("--list-sections", action="store_true", help="print the sections' names and exit")
    parser.add_argument("--output", type=Path, help="write the sections into this Markdown file (their markers)")
    parser.add_argument("--quick", action="store_true", help="a smoke run at a tiny scale (writes nothing)")
    parser.add_argument("--gpu", action="store_true", help="every section's GPU sizes (play: 4,096 to 1,048,576 "
                        "games on CUDA, at most 65,536 on the CPU)")
    parser.add_argument("--runs", type=int, default=8, help="cpu-pg: runs (default 8)")
    parser.add_argument("--iterations", type=int, default=10, help="cpu-pg: PSRO iterations (default 10)")
    parser.add_argument("--steps", type=int, default=30, help="cpu-pg: Adam steps per best response (default 30)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="play: add CUDA rows (auto: where present)")
    parser.add_argument("--sizes", default="1024,4096,16384", help="play: batch sizes, comma-separated")
    parser.add_argument("--passes", type=int, default=200, help="play: decisions per game per timed call")
    parser.add_argument("--repeats", type=int, default=5, help="play: timed calls (the median is reported)")
    parser.add_argument("--numpy-max", type=int, default=16384, help="play: largest batch the NumPy environment plays")
    parser.add_argument("--cpu-max", type=int, default=1 << 30, help="play: largest batch played on the CPU")
    parser.add_argument("--compile", action="store_true", help="play: add torch.compile'd RandomPlay")
    parser.add_argument("--threads", type=int, default=1, help="play: torch threads (default 1)")
    parser.add_argument("--max-seconds", type=float, default=90.0, help="dqn-scaling: skip the larger R that "
                        "would end past this many seconds of the section (default 90)")
    args = parser.parse_args(argv)
    if not args.list_sections and args.section is None:
        parser.error("--section is required (one of: " + ", ".join([*sorted(SECTIONS), "all"]) + ")")
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    if args.gpu:
        args.device, args.sizes, args.cpu_max, args.repeats = "cuda", [4096, 65536, 1 << 20], 65536, 3
    if args.quick:
        args.sizes, args.passes, args.repeats = [256], 8, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_sections:
        print("\n".join(sorted(SECTIONS)))
        return 0
    torch.set_num_threads(args.threads)
    for name in sorted(SECTIONS) if args.section == "all" else [args.section]:
        title, section = SECTIONS[name]
        load_before = os.getloadavg()[0]
        body = section(args)
        body += (f"\n\nLoad average (1 minute) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on "
                 f"{os.cpu_count()} CPUs; a shared machine's absolute times are noisy, the ratios less so.")
        print(f"## {title}\n\n{body}", flush=True)
        if args.output is not None and not args.quick:
            write_section(name, title, body, args.output)
            print(f"\nwrote section {name} of {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
