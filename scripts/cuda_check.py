"""A sampled-play DQN best response on the GPU beside the same one on the CPU (Leduc, uniform opponent).

Both greedy policies are scored exactly by the compiled engine; on the GPU the run is not
bit-identical to the CPU's (other kernels), so the check is that it trains as well.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from fusion_psro.evaluation import best_response, expected_payoff
from fusion_psro.games import compile_game
from fusion_psro.games.sampled import load_sampled_game, tensor_size
from fusion_psro.oracles.base import BestResponseRequest
from fusion_psro.oracles.dqn import DQNConfig, DQNOracle
from fusion_psro.oracles.episode_sources import tabulate_member
from fusion_psro.oracles.network_policy import uniform_vector
from fusion_psro.policies import uniform_policy

game, compiled = load_sampled_game("leduc_poker"), compile_game("leduc_poker")
opponent = uniform_vector(tensor_size(game), (256, 256, 256), game.num_distinct_actions())[None]
target = best_response(compiled, 0, uniform_policy(compiled, 1)).value
for device in ("cpu", "cuda"):
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device")
        continue
    oracle = DQNOracle(game, DQNConfig(episodes=4000, device=device))
    started = time.perf_counter()
    result = oracle.best_response(BestResponseRequest(0, opponent, np.ones(1), seed=0))
    seconds = time.perf_counter() - started
    value = expected_payoff(compiled, tabulate_member(result.policy, compiled, 0), uniform_policy(compiled, 1))[0]
    print(f"{device}: {result.metrics.device}, {4000 / seconds:.0f} episodes/s, {result.metrics.updates} updates, "
          f"exact value of the greedy policy {value:.4f} (best response {target:.4f})", flush=True)
