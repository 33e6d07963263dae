"""Benchmark DQN best responses in sampled play against OpenSpiel's rl_environment DQN, and against the compiled path.

Three implementations train a best response of player 0 against a fixed uniformly random
opponent, in ONE process, runs alternating, with the same hyperparameters (those of
``benchmarks/bench_dqn.py``: MLP 256x256x256, Adam 5e-3, replay 10,000, batch 512,
discount 1, epsilon 0.05, one update attempt per 10 agent steps, learning from 1,000
transitions, target = online network every 5 updates; one torch thread each):

* ``sampled``: fusion-psro's DQN on batched pyspiel states (:mod:`fusion_psro.games.sampled`),
  the path of games too large to compile;
* ``openspiel``: ``open_spiel.python.pytorch.dqn.DQN`` driven by ``rl_environment``, as
  ``psro_v2``'s RL oracle drives it (the opponent draws a uniformly random legal action);
* ``compiled`` (games that compile): fusion-psro's DQN on the compiled game.

Reported per implementation: episodes per second (median over ``--repeats``), gradient
updates per episode (the same rule on all sides), and, where the game compiles, the exact
value of the greedy policy each run ends with (so that speed is not bought with quality).

    PYTHONPATH=src python benchmarks/bench_sampled.py --game leduc_poker --episodes 3000 --repeats 2
    PYTHONPATH=src python benchmarks/bench_sampled.py --game "liars_dice(numdice=2)" --episodes 2000

Needs ``dm-tree`` (imported by OpenSpiel's PyTorch DQN): ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

from fusion_psro.evaluation import best_response, expected_payoff
from fusion_psro.games import compile_game
from fusion_psro.games.sampled import load_sampled_game, tensor_size, too_large_to_compile
from fusion_psro.oracles.base import BestResponseRequest
from fusion_psro.oracles.dqn import DQNConfig, DQNOracle
from fusion_psro.oracles.episode_sources import tabulate_member
from fusion_psro.oracles.network_policy import uniform_vector
from fusion_psro.policies import uniform_policy

from bench_dqn import greedy_value, openspiel_agent  # the same OpenSpiel agent and exact greedy value

try:
    from open_spiel.python import rl_environment
except ModuleNotFoundError as exc:  # dm-tree missing
    sys.exit(f"OpenSpiel's PyTorch DQN cannot be imported ({exc}); install it with: pip install dm-tree")


def run_sampled(game: str, config: DQNConfig, seed: int, compiled) -> dict:
    loaded = load_sampled_game(game)
    opponent = uniform_vector(tensor_size(loaded), config.hidden_sizes, loaded.num_distinct_actions())[None]
    started = time.perf_counter()
    result = DQNOracle(loaded, config).best_response(BestResponseRequest(0, opponent, np.ones(1), seed=seed))
    wall = time.perf_counter() - started
    value = None if compiled is None else float(expected_payoff(
        compiled, tabulate_member(result.policy, compiled, 0), uniform_policy(compiled, 1))[0])
    return {"wall": wall, "episodes": result.episodes, "updates": result.metrics.updates, "value": value}


def run_compiled(game: str, config: DQNConfig, seed: int, compiled) -> dict:
    started = time.perf_counter()
    result = DQNOracle(compiled, config).best_response(
        BestResponseRequest(0, uniform_policy(compiled, 1)[None], np.ones(1), seed=seed))
    wall = time.perf_counter() - started
    value = float(expected_payoff(compiled, result.policy, uniform_policy(compiled, 1))[0])
    return {"wall": wall, "episodes": result.episodes, "updates": result.metrics.updates, "value": value}


def run_openspiel(game: str, config: DQNConfig, seed: int, compiled) -> dict:
    env = rl_environment.Environment(load_sampled_game(game))
    agent, updates = openspiel_agent(env, config, 0, seed)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(config.episodes):
        time_step = env.reset()
        while not time_step.last():
            player = time_step.observations["current_player"]
            if player == 0:
                action = agent.step(time_step).action
            else:
                legal = time_step.observations["legal_actions"][player]
                action = legal[int(rng.random() * len(legal))]
            time_step = env.step([action])
        agent.step(time_step)
    wall = time.perf_counter() - started
    value = None if compiled is None else greedy_value(compiled, agent._q_network, uniform_policy(compiled, 1))
    return {"wall": wall, "episodes": config.episodes, "updates": updates(), "value": value}


RUNNERS = {"sampled": run_sampled, "openspiel": run_openspiel, "compiled": run_compiled}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="leduc_poker")
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", help="append the Markdown report to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    compiled = None if too_large_to_compile(args.game) else compile_game(args.game)
    names = ["sampled", "openspiel"] + (["compiled"] if compiled is not None else [])
    config = DQNConfig(episodes=args.episodes, torch_threads=1, device="cpu")
    run_sampled(args.game, DQNConfig(episodes=300, device="cpu"), 99, compiled)  # warm-up (imports, first optimizer)
    load_before = os.getloadavg()[0]
    runs = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            runs[name].append(RUNNERS[name](args.game, config, repeat, compiled))
            print(f"{name} seed {repeat}: {runs[name][-1]}", file=sys.stderr, flush=True)
    report = _report(args, names, runs, compiled, load_before)
    print(report)
    if args.output:
        with open(args.output, "a") as handle:
            handle.write(report + "\n")
    return 0


def _report(args, names, runs, compiled, load_before) -> str:
    rate = {n: statistics.median(r["episodes"] / r["wall"] for r in runs[n]) for n in names}
    lines = [f"## {args.game}: DQN best response against a uniform opponent, {args.episodes:,} episodes, "
             f"{args.repeats} seeds per implementation", "",
             f"Command: `PYTHONPATH=src python benchmarks/bench_sampled.py --game '{args.game}' --episodes "
             f"{args.episodes} --repeats {args.repeats}`", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
             f"1 thread each; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (shared machine).",
             ""]
    if compiled is not None:
        target = best_response(compiled, 0, uniform_policy(compiled, 1)).value
        lines.append(f"Exact best-response value: {target:.4f}.")
        lines.append("")
    lines += ["| implementation | episodes/s (median) | updates/episode | exact value of the greedy policy (per seed) |",
              "|---|---:|---:|---|"]
    for name in names:
        per_episode = statistics.median(r["updates"] / r["episodes"] for r in runs[name])
        values = ", ".join("n/a" if r["value"] is None else f"{r['value']:.3f}" for r in runs[name])
        lines.append(f"| {name} | {rate[name]:.0f} | {per_episode:.3f} | {values} |")
    lines.append("")
    lines.append(f"**sampled / openspiel: {rate['sampled'] / rate['openspiel']:.2f}x**"
                 + (f"; **compiled / sampled: {rate['compiled'] / rate['sampled']:.2f}x**" if compiled is not None else ""))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
