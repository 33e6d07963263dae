"""Quality and speed of the vectorized DQN against today's DQN and OpenSpiel's DQN.

For each game (Kuhn and Leduc poker) and seed, one fixed opponent mixture is drawn (player
1: three Dirichlet(1) random policies with Dirichlet(1) meta-weights, from the seed); the
three implementations train a best response of player 0 against that same mixture
(paired opponents):

* ``vectorized``: :meth:`fusion_psro.oracles.DQNOracle.best_responses`, every seed's
  response one job of a single batched training (:mod:`fusion_psro.oracles.dqn_vectorized`);
* ``today``: :meth:`fusion_psro.oracles.DQNOracle.best_response`, one seed at a time;
* ``openspiel``: ``open_spiel.python.pytorch.dqn.DQN`` driven episode by episode on
  ``rl_environment`` (the opponent draws one member per episode and acts from its table).

Same hyperparameters everywhere (:class:`~fusion_psro.oracles.DQNConfig`'s defaults: the
paper's): hidden 256x256x256, Adam 5e-3, replay 10,000, batch 512, discount 1, epsilon 0.05,
one update attempt per 10 agent steps from 1,000 stored transitions on, target sync every
5 updates (OpenSpiel: every 50 agent steps with a blend coefficient just below 1, a copy).

Measured: the exact gap to the best response, ``mixture_best_response(...).value`` minus
the exact value of the learned greedy policy against the same mixture, after 3,000, 10,000
and 20,000 training episodes (snapshots of one training run), and episodes per second.
Means over seeds with 95% t-intervals, and the paired differences to today's DQN.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_dqn_vectorized.py                 # full (5 seeds)
    PYTHONPATH=src .venv/bin/python benchmarks/bench_dqn_vectorized.py --seeds 2 --episodes 3000 --budgets 1000 3000

``--cache FILE`` keeps each finished (implementation, game, seed) run in a JSON-lines file
and skips runs already there, so the benchmark can be run in parts. OpenSpiel's PyTorch DQN
needs ``dm-tree`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

import fusion_psro
from fusion_psro.evaluation import mixture_best_response, payoff_matrix
from fusion_psro.oracles.base import BestResponseRequest
from fusion_psro.oracles.dqn import DQNConfig, DQNOracle
from fusion_psro.policies import random_policy

LEARNER = 0
MEMBERS = 3
IMPLEMENTATIONS = ("vectorized", "today", "openspiel")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def opponent(compiled, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed's fixed opponent mixture: ``MEMBERS`` random policies of player 1 and their weights."""
    rng = np.random.default_rng([seed, 21])
    population = np.stack([random_policy(compiled, 1 - LEARNER, rng) for _ in range(MEMBERS)])
    return population, rng.dirichlet(np.ones(MEMBERS))


def gap(compiled, policy: np.ndarray, population: np.ndarray, weights: np.ndarray) -> float:
    """Exact best-response value minus the exact value of ``policy`` (player 0) against the mixture."""
    best = mixture_best_response(compiled, LEARNER, population, weights).value
    return float(best - payoff_matrix(compiled, policy[None], population)[0] @ weights)


def greedy_table(q_network, info) -> np.ndarray:
    with torch.no_grad():
        q = q_network(torch.from_numpy(info.tensors)).masked_fill(~torch.from_numpy(info.legal_mask), -torch.inf)
    policy = np.zeros(info.legal_mask.shape)
    policy[np.arange(policy.shape[0]), q.argmax(dim=1).numpy()] = 1.0
    return policy


def request(compiled, seed: int, budgets, snapshots: dict) -> BestResponseRequest:
    population, weights = opponent(compiled, seed)
    return BestResponseRequest(LEARNER, population, weights, seed=seed, checkpoints=tuple(budgets),
                               on_checkpoint=lambda budget, result: snapshots.__setitem__(budget, result.policy))


def run_today(compiled, config: DQNConfig, seed: int, budgets) -> dict:
    snapshots: dict = {}
    started = time.perf_counter()
    result = DQNOracle(compiled, config).best_response(request(compiled, seed, budgets[:-1], snapshots))
    wall = time.perf_counter() - started
    snapshots[budgets[-1]] = result.policy
    population, weights = opponent(compiled, seed)
    return {"gaps": {str(b): gap(compiled, snapshots[b], population, weights) for b in budgets},
            "wall": wall, "episodes": result.episodes}


def run_vectorized(compiled, config: DQNConfig, seeds, budgets) -> list[dict]:
    snapshots = {seed: {} for seed in seeds}
    requests = [request(compiled, seed, budgets[:-1], snapshots[seed]) for seed in seeds]
    started = time.perf_counter()
    results = DQNOracle(compiled, config).best_responses(requests)
    wall = time.perf_counter() - started
    runs = []
    for seed, result in zip(seeds, results):
        snapshots[seed][budgets[-1]] = result.policy
        population, weights = opponent(compiled, seed)
        runs.append({"gaps": {str(b): gap(compiled, snapshots[seed][b], population, weights) for b in budgets},
                     "wall": wall, "episodes": sum(r.episodes for r in results)})
    return runs


def openspiel_agent(env, config: DQNConfig, seed: int):
    from open_spiel.python.pytorch import dqn as openspiel_dqn

    return openspiel_dqn.DQN(
        player_id=LEARNER, state_representation_size=env.observation_spec()["info_state"][0],
        num_actions=env.action_spec()["num_actions"], hidden_layers_sizes=list(config.hidden_sizes),
        batch_size=config.batch_size, replay_buffer_capacity=config.replay_capacity,
        learning_rate=config.learning_rate, update_target_network_every=config.target_update_every * config.learn_every,
        weight_update_coeff=float(np.nextafter(1.0, 0.0)), learn_every=config.learn_every,
        discount_factor=float(config.discount), min_buffer_size_to_learn=config.min_replay_before_learning,
        epsilon_start=config.epsilon, epsilon_end=config.epsilon, optimizer_str="adam", loss_str=config.loss,
        seed=seed, device="cpu")


def run_openspiel(game: str, compiled, config: DQNConfig, seed: int, budgets) -> dict:
    from open_spiel.python import rl_environment

    env = rl_environment.Environment(game)
    agent = openspiel_agent(env, config, seed)
    population, weights = opponent(compiled, seed)
    opponent_info, learner_info = compiled.players[1 - LEARNER], compiled.players[LEARNER]
    rng = np.random.default_rng([seed, 5])
    gaps, evaluation_s = {}, 0.0
    started = time.perf_counter()
    for episode in range(1, config.episodes + 1):
        member = population[int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right"))]
        time_step = env.reset()
        while not time_step.last():
            if time_step.observations["current_player"] == LEARNER:
                action = agent.step(time_step).action
            else:
                probs = member[opponent_info.index[env.get_state.information_state_string(1 - LEARNER)]]
                action = int(np.argmax(np.cumsum(probs) > rng.random() * probs.sum()))
            time_step = env.step([action])
        agent.step(time_step)
        if episode in budgets:
            evaluation_started = time.perf_counter()
            gaps[str(episode)] = gap(compiled, greedy_table(agent._q_network, learner_info), population, weights)
            evaluation_s += time.perf_counter() - evaluation_started
    return {"gaps": gaps, "wall": time.perf_counter() - started - evaluation_s, "episodes": config.episodes}


def interval(values) -> str:
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return f"{values.mean():.4f}"
    half = T_975.get(values.size - 1, 1.96) * values.std(ddof=1) / np.sqrt(values.size)
    return f"{values.mean():.4f} [{values.mean() - half:.4f}, {values.mean() + half:.4f}]"


def report(results: dict, games, seeds, budgets, config: DQNConfig, command: str) -> str:
    lines = ["## Exact gap to the best response: vectorized DQN, today's DQN, OpenSpiel's DQN", "",
             f"Command: `{command}`", "",
             f"Learner: player {LEARNER}; opponent per seed: a fixed mixture of {MEMBERS} Dirichlet(1) random policies "
             f"with Dirichlet(1) weights, the same for the three implementations. Seeds {list(seeds)}; "
             f"{config.episodes:,} episodes per response, gaps of the greedy policy at {', '.join(map(str, budgets))} "
             "episodes. Hyperparameters: DQNConfig defaults (the paper's); today's and vectorized play "
             f"{config.num_envs} games per response side by side. torch {torch.__version__}, CPU, 1 thread; "
             f"load average {os.getloadavg()[0]:.1f} at the end (the machine is shared).", "",
             "Gap = exact best-response value - exact value of the greedy policy (0 is a best response); mean over "
             "seeds [95% t-interval]. Paired difference = implementation - today's DQN, per seed.", ""]
    for game in games:
        lines += [f"### {game}", "", "| implementation | seeds | " + " | ".join(f"gap @ {b:,}" for b in budgets)
                  + " | episodes/s |", "| --- | ---: | " + " | ".join("---" for _ in budgets) + " | ---: |"]
        for impl in IMPLEMENTATIONS:
            runs = [results[(impl, game, seed)] for seed in seeds if (impl, game, seed) in results]
            if not runs:
                continue
            speed = np.mean([r["episodes"] / r["wall"] for r in runs])
            lines.append(f"| {impl} | {len(runs)} | " + " | ".join(interval([r["gaps"][str(b)] for r in runs])
                                                                for b in budgets) + f" | {speed:,.0f} |")
        lines += ["", "| paired difference | seeds | " + " | ".join(f"@ {b:,}" for b in budgets) + " |",
                  "| --- | ---: | " + " | ".join("---" for _ in budgets) + " |"]
        for impl in ("vectorized", "openspiel"):
            pairs = [(results[(impl, game, s)], results[("today", game, s)]) for s in seeds
                     if (impl, game, s) in results and ("today", game, s) in results]
            if pairs:
                lines.append(f"| {impl} - today | {len(pairs)} | " + " | ".join(
                    interval([a["gaps"][str(b)] - t["gaps"][str(b)] for a, t in pairs]) for b in budgets) + " |")
        lines.append("")
    lines += ["episodes/s: training episodes per second of wall time (vectorized: all seeds' episodes of the one "
              "batched training over its wall time; the others: per run, averaged), exact evaluations excluded "
              "for OpenSpiel, included (as snapshot hooks, a few ms) for ours.", ""]
    return "\n".join(lines)


def load_cache(path: str | None) -> dict:
    results = {}
    if path and os.path.exists(path):
        with open(path) as handle:
            for line in handle:
                row = json.loads(line)
                results[(row["impl"], row["game"], row["seed"])] = row["run"]
    return results


def store(path: str | None, results: dict, impl: str, game: str, seed: int, run: dict) -> None:
    results[(impl, game, seed)] = run
    log(f"{impl} {game} seed {seed}: {run}")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"impl": impl, "game": game, "seed": seed, "run": run}) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", nargs="+", default=["kuhn_poker", "leduc_poker"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=20_000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[3_000, 10_000],
                        help="snapshot budgets before the last (the last is --episodes)")
    parser.add_argument("--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument("--device", default="cpu", help="device of the vectorized DQN (and today's)")
    parser.add_argument("--cache", help="JSON-lines file of finished runs: read, skipped, appended to")
    parser.add_argument("--output", help="also write the Markdown report to this file")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    budgets = sorted({*args.budgets, args.episodes})
    seeds = list(range(args.seeds))
    config = DQNConfig(episodes=args.episodes, device=args.device)
    results = load_cache(args.cache)
    for game in args.games:
        compiled = fusion_psro.compile_game(game)
        if "vectorized" in args.implementations and any(("vectorized", game, s) not in results for s in seeds):
            log(f"vectorized {game}, seeds {seeds}")
            for seed, run in zip(seeds, run_vectorized(compiled, config, seeds, budgets)):
                store(args.cache, results, "vectorized", game, seed, run)
        for seed in seeds:
            if "today" in args.implementations and ("today", game, seed) not in results:
                store(args.cache, results, "today", game, seed, run_today(compiled, config, seed, budgets))
            if "openspiel" in args.implementations and ("openspiel", game, seed) not in results:
                store(args.cache, results, "openspiel", game, seed, run_openspiel(game, compiled, config, seed, budgets))
    text = report(results, args.games, seeds, budgets, config,
                  "PYTHONPATH=src .venv/bin/python benchmarks/bench_dqn_vectorized.py " + " ".join(sys.argv[1:]))
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
