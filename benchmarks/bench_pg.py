"""Benchmark the exact policy-gradient oracle (``--oracle pg``): step cost and gap vs budget.

Three measurements, in ONE process, one torch thread, CPU:

1. **Cost of one gradient step** (forward pass over all of the player's information
   states, masked softmax, differentiable plan, value, backward, Adam) on Leduc poker,
   Goofspiel (5 cards, imperfect information, descending points; turn-based) and Liar's
   Dice (1 die, 6 sides), player 0, against a mixture of 5 random policies with Dirichlet
   weights. Side by side, on the same mixture: the engine's exact best response
   (``best_response_to_plans``), OpenSpiel's Python ``BestResponsePolicy`` (construction +
   ``value`` at the root, the mixture given as its behaviour-equivalent ``TabularPolicy``)
   and OpenSpiel's C++ ``pyspiel.TabularBestResponse`` (construction + ``value``; the
   conversion of the policy to C++ excluded). Medians over repeats; ratios printed. The
   three best-response values are checked to agree.
2. **Gap table** on Leduc: ``best_response_value - value`` of the policy a best response
   returns after ``steps`` in {10, 30, 100, 300, 1000} from a ``normal`` scratch network,
   against three kinds of opponent mixture (uniform; a Dirichlet-weighted mixture of 5
   random policies; of 5 random deterministic policies), median over seeds (the seed
   draws both the network and the opponents), for both ``population_policy`` settings
   (one training gives both: they differ only in what is read off the final network), and
   for the default entropy bonus next to none (pure ascent of the exact value).
3. **Estimated 150-iteration Leduc PSRO run**: 2 best responses per iteration, each
   timed as a whole ``best_response`` call (setup, steps, exact metrics) at 100 and 300 steps.

    .venv/bin/python benchmarks/bench_pg.py --output benchmarks/results_pg.md
    .venv/bin/python benchmarks/bench_pg.py --quick          # smoke run, no file
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from importlib import metadata

import numpy as np
import pyspiel
import torch
from open_spiel.python import policy as openspiel_policy
from open_spiel.python.algorithms import best_response as openspiel_best_response

import fusion_psro
from fusion_psro.evaluation import mixture_plan
from fusion_psro.evaluation.sequence_form import best_response_to_plans
from fusion_psro.games import compile_game
from fusion_psro.oracles.base import BestResponseRequest
from fusion_psro.oracles.networks import adam
from fusion_psro.oracles.pg import PGConfig, PolicyGradientOracle, SequenceFormObjective
from fusion_psro.policies import random_deterministic_policy, random_policy, uniform_policy

GAMES = [
    "leduc_poker",
    "goofspiel(num_cards=5,imp_info=True,points_order=descending)",
    "liars_dice",
]
LEDUC = "leduc_poker"
PLAYER = 0
BUDGETS = (10, 30, 100, 300, 1000)
OPPONENTS = ("uniform", "5 random", "5 deterministic")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def opponent_mixture(compiled, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if kind == "uniform":
        return uniform_policy(compiled, 1 - PLAYER)[None], np.ones(1)
    draw = random_policy if kind == "5 random" else random_deterministic_policy
    population = np.stack([draw(compiled, 1 - PLAYER, rng) for _ in range(5)])
    return population, rng.dirichlet(np.ones(5))


def behaviour_policy(compiled, player: int, plan: np.ndarray) -> np.ndarray:
    """The behavioural policy whose realization plan is ``plan`` (uniform where unreached)."""
    info = compiled.players[player]
    reach = plan[info.parent_sequence][:, None]
    sequences = plan[: info.empty_sequence].reshape(info.num_infostates, info.num_actions)
    uniform = uniform_policy(compiled, player)
    with np.errstate(invalid="ignore", divide="ignore"):
        policy = np.where(reach > 0, sequences / reach, uniform)
    return policy / policy.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- 1. step cost


def step_cost(compiled, objective: SequenceFormObjective, repeats: int) -> float:
    oracle = PolicyGradientOracle(compiled, PGConfig(device="cpu"))
    network = oracle.network(PLAYER, oracle.scratch_parameters(PLAYER, "normal", 0))
    observations = torch.from_numpy(compiled.players[PLAYER].tensors)
    optimizer = adam(network, oracle.config.learning_rate)

    def step():
        regularized, _ = objective(network(observations), oracle.config.entropy_coefficient)
        optimizer.zero_grad(set_to_none=True)
        (-regularized).backward()
        optimizer.step()

    for _ in range(3):  # warm-up: first-use costs of autograd and the fused Adam kernel
        step()
    return median_time(step, repeats)[0]


def case_step_cost(game_string: str, repeats: int, python_repeats: int) -> dict:
    compiled = compile_game(game_string)
    rng = np.random.default_rng(0)
    population, weights = opponent_mixture(compiled, "5 random", rng)
    plan = mixture_plan(compiled, 1 - PLAYER, population, weights)
    row = {"game": game_string, "infostates": compiled.players[PLAYER].num_infostates}
    log(f"step cost: {game_string}")
    row["setup"], objective = median_time(
        lambda: SequenceFormObjective(compiled, PLAYER, plan, torch.device("cpu")), repeats)
    row["step"] = step_cost(compiled, objective, repeats)
    best_response_to_plans(compiled, PLAYER, plan)  # warm the engine's caches
    row["engine"], engine = median_time(lambda: best_response_to_plans(compiled, PLAYER, plan), repeats)

    game = compiled.openspiel_game
    profile = [uniform_policy(compiled, 0), uniform_policy(compiled, 1)]
    profile[1 - PLAYER] = behaviour_policy(compiled, 1 - PLAYER, plan)
    tabular = fusion_psro.to_openspiel_policy(compiled, profile)
    root = game.new_initial_state()
    values = {"engine": float(engine.value)}
    if python_repeats:
        log(f"  OpenSpiel Python BestResponsePolicy x {python_repeats}")
        row["python"], values["python"] = median_time(
            lambda: openspiel_best_response.BestResponsePolicy(game, PLAYER, tabular).value(root), python_repeats)
    cpp_policy = openspiel_policy.python_policy_to_pyspiel_policy(tabular)
    log("  C++ TabularBestResponse")
    row["cpp"], values["cpp"] = median_time(
        lambda: pyspiel.TabularBestResponse(game, PLAYER, cpp_policy).value(root.history_str()), max(1, min(repeats, 5)))
    row["max_diff"] = max(abs(v - values["engine"]) for v in values.values())
    return row


# ---------------------------------------------------------------- 2. gap table


def case_gaps(seeds: int, budgets: tuple[int, ...], entropies: tuple[float, ...]) -> list[dict]:
    compiled = compile_game(LEDUC)
    rows = []
    for entropy in entropies:
        for kind in OPPONENTS:
            gaps = {budget: {"greedy": [], "stochastic": [], "train_s": []} for budget in budgets}
            for seed in range(seeds):
                population, weights = opponent_mixture(compiled, kind, np.random.default_rng(1000 + seed))
                request = BestResponseRequest(PLAYER, population, weights, seed=seed)
                for budget in budgets:
                    config = PGConfig(steps=budget, entropy_coefficient=entropy, device="cpu")
                    metrics = PolicyGradientOracle(compiled, config).best_response(request).metrics
                    cell = gaps[budget]
                    cell["greedy"].append(metrics["gap"])
                    cell["stochastic"].append(metrics["best_response_value"] - metrics["softmax_value"])
                    cell["train_s"].append(metrics["train_s"])
                log(f"gaps: entropy {entropy}, {kind}, seed {seed}: "
                    + ", ".join(f"{b}: {gaps[b]['greedy'][-1]:.4f}" for b in budgets))
            for policy_kind in ("greedy", "stochastic"):
                rows.append({
                    "entropy": entropy, "opponent": kind, "policy": policy_kind,
                    "gaps": {b: statistics.median(gaps[b][policy_kind]) for b in budgets},
                    "worst": {b: max(gaps[b][policy_kind]) for b in budgets},
                    "train_s": {b: statistics.median(gaps[b]["train_s"]) for b in budgets},
                })
    return rows


# ---------------------------------------------------------------- 3. PSRO estimate


def case_psro_estimate(budgets: tuple[int, ...], repeats: int) -> dict:
    compiled = compile_game(LEDUC)
    population, weights = opponent_mixture(compiled, "5 random", np.random.default_rng(0))
    estimate = {}
    for budget in budgets:
        oracle = PolicyGradientOracle(compiled, PGConfig(steps=budget, device="cpu"))
        request = BestResponseRequest(PLAYER, population, weights, seed=0)
        estimate[budget] = median_time(lambda: oracle.best_response(request), repeats)[0]
        log(f"one best response of {budget} steps: {estimate[budget]:.2f} s")
    return estimate


# ---------------------------------------------------------------- report


def machine_info() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {len(os.sched_getaffinity(0))} usable CPUs; Python {platform.python_version()}, "
            f"torch {torch.__version__} (1 intra-op thread), numpy {np.__version__}, "
            f"open_spiel {metadata.version('open_spiel')}; load average {load} at the end (shared machine)")


def render_step_costs(rows: list[dict]) -> list[str]:
    lines = [
        "| game | infostates (player 0) | setup (`g = A y`, opponent reach) | one PG step | engine exact BR "
        "| step / engine BR | OpenSpiel Python BR | Python BR / step | OpenSpiel C++ BR | C++ BR / step "
        "| max value diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        python = row.get("python")
        python_ratio = f"{python / row['step']:.1f}x" if python else "—"
        lines.append(
            f"| {row['game']} | {row['infostates']:,} | {fmt_time(row['setup'])} | {fmt_time(row['step'])} "
            f"| {fmt_time(row['engine'])} | {row['step'] / row['engine']:.1f}x "
            f"| {fmt_time(python) if python else 'skipped'} | {python_ratio} "
            f"| {fmt_time(row['cpp'])} | {row['cpp'] / row['step']:.1f}x | {row['max_diff']:.1e} |"
        )
    return lines


def render_gaps(rows: list[dict], budgets: tuple[int, ...]) -> list[str]:
    head = " | ".join(f"{b} steps" for b in budgets)
    lines = [f"| entropy_coefficient | opponent | population_policy | {head} |",
             "|---|---|---|" + "---:|" * len(budgets)]
    for row in rows:
        cells = " | ".join(f"{row['gaps'][b]:.4f} ({row['worst'][b]:.4f})" for b in budgets)
        lines.append(f"| {row['entropy']:g} | {row['opponent']} | {row['policy']} | {cells} |")
    times = " | ".join(
        fmt_time(statistics.median(r["train_s"][b] for r in rows)) for b in budgets)
    lines.append(f"| | | median training time | {times} |")
    return lines


def render(step_rows, gap_rows, estimate, args, total_s) -> str:
    lines = [
        "# Exact policy-gradient oracle: step cost and gap vs budget",
        "",
        f"Produced by `benchmarks/bench_pg.py` in {total_s / 60:.1f} min. Machine: {machine_info()}.",
        "Network: the default 256-256-256 ReLU MLP; learner: player 0; CPU, one torch thread.",
        "Leduc payoffs lie in [-13, 13]; a gap of 0.0000 is an exact best response (to rounding).",
        "",
        "## Cost of one gradient step vs an exact best response",
        "",
        f"Opponent: a Dirichlet-weighted mixture of 5 random policies. Medians over {args.repeats} repeats "
        f"({args.python_repeats} for OpenSpiel's Python best response, at most 5 for C++). "
        "A best response of N steps costs about setup + N x step (plus one engine best response "
        "for its metrics). OpenSpiel times include building the best-response object; the C++ "
        "column excludes converting the policy to C++.",
        "",
        *render_step_costs(step_rows),
        "",
        "## Gap of the returned policy vs budget on Leduc",
        "",
        f"`best_response_value - value` after `steps` Adam steps from a `normal` scratch network: "
        f"median over {args.seeds} seeds (worst in parentheses); each seed draws the network and "
        "the opponent mixture. Default learning rate "
        f"{PGConfig().learning_rate:g} and anneal fraction {PGConfig().entropy_anneal_fraction:g}; "
        "`entropy_coefficient` 0 is pure ascent of the exact value.",
        "",
        *render_gaps(gap_rows, tuple(args.budgets)),
        "",
        "## Estimated 150-iteration Leduc PSRO run",
        "",
        "Two best responses per iteration; the rest of an iteration (meta-game, meta-solver) costs "
        "milliseconds. Two estimates of one best response: a whole `best_response` call timed "
        "(median of 3; setup, steps, greedy and softmax policies, the engine's best response for "
        "the metrics), and the sum of the step-cost table's parts (setup + steps x one step + "
        "engine BR). They differ by how loaded the shared machine was when each ran.",
        "",
        "| steps per best response | best response, timed | 150 iterations | best response, from the step cost "
        "| 150 iterations |",
        "|---:|---:|---:|---:|---:|",
    ]
    leduc = next((row for row in step_rows if row["game"] == LEDUC), None)
    for budget, timed in estimate.items():
        derived = leduc["setup"] + budget * leduc["step"] + leduc["engine"] if leduc else float("nan")
        lines.append(f"| {budget} | {fmt_time(timed)} | {300 * timed / 60:.1f} min | {fmt_time(derived)} "
                     f"| {300 * derived / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats of a step and of the engine BR")
    parser.add_argument("--python-repeats", type=int, default=3,
                        help="repeats of OpenSpiel's Python best response (0 skips it)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--entropies", type=float, nargs="+", default=[PGConfig().entropy_coefficient, 0.0])
    parser.add_argument("--games", nargs="+", default=GAMES)
    parser.add_argument("--quick", action="store_true", help="smoke run: Leduc only, few repeats, small budgets")
    parser.add_argument("--output", help="write the Markdown report here")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.python_repeats, args.seeds = 3, 1, 1
        args.budgets, args.games, args.entropies = [10, 30], [LEDUC], [PGConfig().entropy_coefficient]
    torch.set_num_threads(1)
    started = time.perf_counter()
    step_rows = [case_step_cost(game, args.repeats, args.python_repeats) for game in args.games]
    print("\n".join(render_step_costs(step_rows)), flush=True)
    gap_rows = case_gaps(args.seeds, tuple(args.budgets), tuple(args.entropies))
    print("\n".join(render_gaps(gap_rows, tuple(args.budgets))), flush=True)
    estimate = case_psro_estimate((100, 300) if not args.quick else (10,), 3)
    report = render(step_rows, gap_rows, estimate, args, time.perf_counter() - started)
    print(report)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
