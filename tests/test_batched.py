"""Many runs' best responses trained at once: the pg oracle's batched path, against its single path.

``FUSION_PSRO_TEST_DEVICE=cuda`` reruns the equality tests with both paths on CUDA (skipped,
with the reason, where this machine has none); by default they run on the CPU.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch
from conftest import KUHN, LEDUC

from fusion_psro.games import compile_game
from fusion_psro.oracles import BestResponseRequest, DiversityTerm
from fusion_psro.oracles.exact import ExactOracle
from fusion_psro.oracles.pg import PGConfig, PolicyGradientOracle
from fusion_psro.policies import random_policy, uniform_policy

#: The device the equality tests run on (both paths): ``FUSION_PSRO_TEST_DEVICE``, default the CPU.
DEVICE = os.environ.get("FUSION_PSRO_TEST_DEVICE", "cpu")


def equality_device():
    """The device the equality tests compare on; skips them where it is absent."""
    if DEVICE.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"FUSION_PSRO_TEST_DEVICE={DEVICE}, but this machine (or this PyTorch build) has no CUDA")
    return DEVICE


def requests_for(compiled, oracle, count, seed=0):
    """``count`` requests of both players against random opponent mixtures, from scratch and from given parameters."""
    rng = np.random.default_rng(seed)
    requests = []
    for k in range(count):
        player = k % 2
        population = np.stack([random_policy(compiled, 1 - player, rng) for _ in range(3)])
        start = oracle.scratch_parameters(player, "normal", 100 + k) if k % 3 else None
        requests.append(BestResponseRequest(player, population, rng.dirichlet(np.ones(3)), seed=k,
                                            initial_parameters=start))
    return requests


def assert_same_response(single, batched, parameter_tol=1e-5):
    assert np.array_equal(single.policy, batched.policy)
    assert single.episodes == batched.episodes
    a, b = single.metrics.to_json(), batched.metrics.to_json()
    assert set(a) == set(b)
    for key in a:
        if key == "train_s":
            continue
        if isinstance(a[key], float):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
        else:
            assert a[key] == b[key], key
    assert list(single.parameters) == list(batched.parameters)
    for name, tensor in single.parameters.items():
        assert batched.parameters[name].device.type == "cpu"
        assert torch.allclose(tensor, batched.parameters[name], atol=parameter_tol), name


@pytest.mark.parametrize("game, hidden, steps", [(KUHN, (32,), 60), (LEDUC, (64, 64), 40)])
def test_pg_batched_responses_equal_single_ones(game, hidden, steps):
    device = equality_device()
    compiled = compile_game(game)
    oracle = PolicyGradientOracle(compiled, PGConfig(hidden_sizes=hidden, steps=steps, device=device))
    requests = requests_for(compiled, oracle, 6)
    single = [oracle.best_response(r) for r in requests]
    batched = oracle.best_responses(requests)
    for a, b in zip(single, batched):
        assert_same_response(a, b)
    assert all(r.metrics.device.startswith(device) for r in batched)


def test_pg_batched_responses_take_spent_budgets_diversity_and_progress():
    """Requests that spent some budget train for the rest; a diversity term or checkpoints go the single
    path; every request's progress is reported."""
    compiled = compile_game(KUHN)
    oracle = PolicyGradientOracle(compiled, PGConfig(hidden_sizes=(16,), steps=20, device="cpu"))
    requests = requests_for(compiled, oracle, 5, seed=1)
    seen = {k: [] for k in range(5)}
    requests = [dataclasses.replace(r, on_progress=lambda done, total, k=k: seen[k].append((done, total)))
                for k, r in enumerate(requests)]
    requests[2] = dataclasses.replace(requests[2], budget_spent=5)
    requests[4] = dataclasses.replace(requests[4], budget_spent=5)
    term = DiversityTerm(kind="dpp", weight=0.5, own_population=uniform_policy(compiled, 1)[None],
                         own_meta_strategy=np.ones(1), own_payoffs=np.zeros((1, 3)),
                         opponent_population=requests[3].opponent_population, seed=3)
    requests[3] = dataclasses.replace(requests[3], diversity=term)
    single = [oracle.best_response(r) for r in requests]
    batched = oracle.best_responses(requests)
    for a, b in zip(single, batched):
        assert_same_response(a, b)
    assert [r.metrics.steps for r in batched] == [20, 20, 15, 20, 15]
    assert seen[0][-1] == (20, 20) and seen[2][-1] == (15, 15)


def test_every_oracle_answers_best_responses():
    """The default hook computes the requests one after the other (an oracle that batches nothing)."""
    compiled = compile_game(KUHN)
    oracle = ExactOracle(compiled)
    assert not oracle.batches_responses and PolicyGradientOracle.batches_responses
    requests = requests_for(compiled, PolicyGradientOracle(compiled, PGConfig(hidden_sizes=(8,))), 3)
    requests = [dataclasses.replace(r, initial_parameters=None) for r in requests]
    for a, b in zip(oracle.best_responses(requests), [oracle.best_response(r) for r in requests]):
        assert np.array_equal(a.policy, b.policy)
