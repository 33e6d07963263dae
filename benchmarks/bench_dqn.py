"""Benchmark DQN best-response training: fusion-psro's DQNOracle vs OpenSpiel's PyTorch DQN.

Both sides run in ONE process, on the same game (Leduc poker), the same learner (player
0), the same fixed opponent (player 1 samples its actions from a tabular policy, uniform
random by default) and the same hyperparameters:

    hidden 256x256x256 ReLU, Adam lr 5e-3, replay 10,000, batch 512, discount 1,
    constant epsilon 0.05, one update attempt every 10 agent steps, learning from
    1,000 transitions on, target network = online network every 5 updates.

OpenSpiel's agent (``open_spiel.python.pytorch.dqn.DQN``) is driven by the loop of
``open_spiel.python.algorithms.psro_v2.rl_oracle`` (``agent.step`` at each of its turns
and once at the end of the episode) on ``rl_environment.Environment("leduc_poker")``. Its
target period counts agent steps and its target update is a soft blend, so it gets
``update_target_network_every = 5 * 10`` and ``weight_update_coeff`` = the largest float
below 1 (a copy). Its epsilon schedule is made constant (start = end = 0.05).

Reported per run: wall time of the whole best-response call (ours: setup, training and
the greedy-policy pass; OpenSpiel: the episode loop), episodes per second, gradient
updates actually made, learner decisions, and the exact value (sequence-form, against the
opponent) of the greedy policy each trained network ends with, next to the exact
best-response value, so that speed is not bought with quality. Runs alternate between
the two implementations (ours, OpenSpiel, ours, ...) so that load changes on a shared
machine hit both; each figure is the median over ``--repeats`` seeds.

    .venv/bin/python benchmarks/bench_dqn.py                       # 3,000 episodes, 3 seeds each
    .venv/bin/python benchmarks/bench_dqn.py --episodes 1000 --repeats 1   # smoke run
    .venv/bin/python benchmarks/bench_dqn.py --output benchmarks/results_dqn.md

Needs ``dm-tree`` (imported by OpenSpiel's PyTorch DQN): ``pip install dm-tree``.
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

import fusion_psro
from fusion_psro.evaluation import best_response, expected_payoff
from fusion_psro.oracles.base import BestResponseRequest
from fusion_psro.oracles.dqn import DQNConfig, DQNOracle
from fusion_psro.policies import random_policy, uniform_policy

try:
    from open_spiel.python import rl_environment
    from open_spiel.python.pytorch import dqn as openspiel_dqn
except ModuleNotFoundError as exc:  # dm-tree missing
    sys.exit(f"OpenSpiel's PyTorch DQN cannot be imported ({exc}); install it with: pip install dm-tree")

GAME = "leduc_poker"
LEARNER = 0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def greedy_value(compiled, q_network, opponent) -> float:
    """Exact value for the learner of ``q_network``'s greedy policy against ``opponent``."""
    info = compiled.players[LEARNER]
    with torch.no_grad():
        q = q_network(torch.from_numpy(info.tensors)).masked_fill(~torch.from_numpy(info.legal_mask), -torch.inf)
    policy = np.zeros(info.legal_mask.shape)
    policy[np.arange(policy.shape[0]), q.argmax(dim=1).numpy()] = 1.0
    return float(expected_payoff(compiled, policy, opponent)[LEARNER])


def run_ours(compiled, config: DQNConfig, opponent, seed: int) -> dict:
    oracle = DQNOracle(compiled, config)
    request = BestResponseRequest(LEARNER, opponent[None], np.ones(1), seed=seed)
    started = time.perf_counter()
    result = oracle.best_response(request)
    wall = time.perf_counter() - started
    value = float(expected_payoff(compiled, result.policy, opponent)[LEARNER])
    m = result.metrics
    return {
        "wall": wall,
        "episodes": result.episodes,
        "updates": m.updates,
        "learner_steps": m.learner_steps,
        "value": value,
        "mean_return_last_1000": m.mean_return_last_1000,
    }


def openspiel_agent(env, config: DQNConfig, player: int, seed: int):
    """OpenSpiel's PyTorch DQN with ``config``'s hyperparameters, and a function giving the updates it made."""
    agent = openspiel_dqn.DQN(
        player_id=player,
        state_representation_size=env.observation_spec()["info_state"][0],
        num_actions=env.action_spec()["num_actions"],
        hidden_layers_sizes=list(config.hidden_sizes),
        batch_size=config.batch_size,
        replay_buffer_capacity=config.replay_capacity,
        learning_rate=config.learning_rate,
        update_target_network_every=config.target_update_every * config.learn_every,
        weight_update_coeff=float(np.nextafter(1.0, 0.0)),
        learn_every=config.learn_every,
        discount_factor=float(config.discount),
        min_buffer_size_to_learn=config.min_replay_before_learning,
        epsilon_start=config.epsilon,
        epsilon_end=config.epsilon,
        optimizer_str="adam",
        loss_str=config.loss,
        seed=seed,
        device="cpu",
    )
    updates = 0
    learn = agent.learn

    def counting_learn():
        nonlocal updates
        loss = learn()
        updates += loss is not None
        return loss

    agent.learn = counting_learn
    return agent, lambda: updates


def run_openspiel(compiled, config: DQNConfig, opponent, seed: int) -> dict:
    env = rl_environment.Environment(GAME)
    agent, updates = openspiel_agent(env, config, LEARNER, seed)
    opponent_info = compiled.players[1 - LEARNER]
    learner_info = compiled.players[LEARNER]
    rng = np.random.default_rng(seed)
    learner_steps = 0
    returns = []
    checked = False
    started = time.perf_counter()
    for _ in range(config.episodes):
        time_step = env.reset()
        while not time_step.last():
            player = time_step.observations["current_player"]
            if player == LEARNER:
                if not checked:  # the network sees the same tensors as ours
                    key = env.get_state.information_state_string(LEARNER)
                    row = learner_info.tensors[learner_info.index[key]]
                    assert np.array_equal(np.asarray(time_step.observations["info_state"][LEARNER], np.float32), row)
                    checked = True
                action = agent.step(time_step).action
                learner_steps += 1
            else:
                key = env.get_state.information_state_string(player)
                probs = opponent[opponent_info.index[key]]
                action = int(np.argmax(np.cumsum(probs) > rng.random() * probs.sum()))
            time_step = env.step([action])
        agent.step(time_step)
        returns.append(time_step.rewards[LEARNER])
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "episodes": config.episodes,
        "updates": updates(),
        "learner_steps": learner_steps,
        "value": greedy_value(compiled, agent._q_network, opponent),
        "mean_return_last_1000": float(np.mean(returns[-1000:])),
    }


def summarize(runs: list[dict]) -> dict:
    wall = statistics.median(r["wall"] for r in runs)
    episodes = runs[0]["episodes"]
    return {
        "wall": wall,
        "eps_per_s": statistics.median(r["episodes"] / r["wall"] for r in runs),
        "updates": statistics.median(r["updates"] for r in runs),
        "updates_per_episode": statistics.median(r["updates"] / r["episodes"] for r in runs),
        "steps_per_episode": statistics.median(r["learner_steps"] / r["episodes"] for r in runs),
        "ms_per_update": statistics.median(1e3 * r["wall"] / max(r["updates"], 1) for r in runs),
        "values": [r["value"] for r in runs],
        "returns": [r["mean_return_last_1000"] for r in runs],
        "episodes": episodes,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3, help="seeds per implementation (median reported)")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads, both implementations")
    parser.add_argument("--opponent", choices=["uniform", "random"], default="uniform",
                        help="opponent's fixed policy: uniform random, or a Dirichlet(1) draw per information state")
    parser.add_argument("--output", help="also write the Markdown report to this file")
    parser.add_argument("--append", action="store_true", help="append to --output instead of overwriting it")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    compiled = fusion_psro.compile_game(GAME)
    opponent = (uniform_policy(compiled, 1 - LEARNER) if args.opponent == "uniform"
                else random_policy(compiled, 1 - LEARNER, np.random.default_rng(0)))
    config = DQNConfig(episodes=args.episodes, num_envs=args.num_envs, torch_threads=args.threads, device="cpu")
    exact = best_response(compiled, LEARNER, opponent).value
    uniform_value = float(expected_payoff(compiled, uniform_policy(compiled, LEARNER), opponent)[LEARNER])

    # Warm-up: the first torch optimizer imports torch._dynamo (seconds), and our first
    # call touches the compiled game's lazily built tables. Neither is timed.
    log("warm-up")
    run_ours(compiled, DQNConfig(episodes=300, num_envs=args.num_envs, torch_threads=args.threads, device="cpu"),
             opponent, seed=999)

    load_before = os.getloadavg()
    ours, theirs = [], []
    for seed in range(args.repeats):
        log(f"ours, seed {seed}")
        ours.append(run_ours(compiled, config, opponent, seed))
        log(f"  {ours[-1]}")
        log(f"OpenSpiel, seed {seed}")
        theirs.append(run_openspiel(compiled, config, opponent, seed))
        log(f"  {theirs[-1]}")
    load_after = os.getloadavg()

    a, b = summarize(ours), summarize(theirs)
    ratio = a["eps_per_s"] / b["eps_per_s"]

    def values(s):
        return ", ".join(f"{v:.3f}" for v in s["values"])

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"## DQN best response on {GAME}: fusion-psro vs OpenSpiel ({args.opponent} opponent, {args.episodes:,} episodes)",
        "",
        "Command: `.venv/bin/python benchmarks/bench_dqn.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
        "",
        f"Learner: player {LEARNER}; opponent: fixed {args.opponent} policy. {args.episodes:,} training episodes per run, "
        f"{args.repeats} seeds per implementation (runs alternate), medians shown. Hyperparameters (both): hidden "
        f"{'x'.join(map(str, config.hidden_sizes))} ReLU, Adam lr {config.learning_rate:g}, replay {config.replay_capacity:,}, "
        f"batch {config.batch_size}, discount {config.discount:g}, epsilon {config.epsilon:g} (constant), one update "
        f"attempt per {config.learn_every} agent steps, learning from {config.min_replay_before_learning:,} transitions, "
        f"target sync every {config.target_update_every} updates. Ours: {args.num_envs} episodes side by side.",
        "",
        f"Machine: {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} on CPU with {args.threads} intra-op thread(s) "
        f"for both; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (the machine is shared).",
        "",
        "| implementation | wall s | episodes/s | gradient updates | updates/episode | learner decisions/episode "
        "| wall ms/update | exact value of greedy policy (per seed) | training return, last 1000 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
        f"| fusion-psro DQNOracle | {a['wall']:.2f} | {a['eps_per_s']:,.0f} | {a['updates']:,.0f} | "
        f"{a['updates_per_episode']:.3f} | {a['steps_per_episode']:.2f} | {a['ms_per_update']:.2f} | {values(a)} | "
        f"{statistics.median(a['returns']):.3f} |",
        f"| OpenSpiel pytorch DQN | {b['wall']:.2f} | {b['eps_per_s']:,.0f} | {b['updates']:,.0f} | "
        f"{b['updates_per_episode']:.3f} | {b['steps_per_episode']:.2f} | {b['ms_per_update']:.2f} | {values(b)} | "
        f"{statistics.median(b['returns']):.3f} |",
        "",
        f"**Speed-up (episodes/s): {ratio:.2f}x.** Exact best-response value: {exact:.4f}; the uniform policy scores "
        f"{uniform_value:.4f}. Median greedy value: ours {statistics.median(a['values']):.4f}, OpenSpiel "
        f"{statistics.median(b['values']):.4f}.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.output:
        with open(args.output, "a" if args.append else "w") as handle:
            handle.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
