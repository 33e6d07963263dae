"""The DQN best-response oracle on vectorized episodes."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from conftest import LEDUC

from fusion_psro.errors import ConfigError, OracleError
from fusion_psro.evaluation import expected_payoff, mixture_best_response
from fusion_psro.games import compile_game
from fusion_psro.oracles.base import BestResponseRequest, Oracle
from fusion_psro.oracles.dqn import DQNConfig, DQNMetrics, DQNOracle
from fusion_psro.oracles.networks import SCHEMES
from fusion_psro.policies import random_policy, uniform_policy

#: A small, fast configuration for Kuhn poker (one torch thread: the test machine is shared).
SMALL = DQNConfig(
    hidden_sizes=(64, 64),
    batch_size=128,
    replay_capacity=2000,
    min_replay_before_learning=256,
    episodes=3000,
    num_envs=64,
    torch_threads=1,
    device="cpu",
)

#: Gaps between the exact best-response value and the exact value of the trained greedy
#: policy on Kuhn poker (payoffs in [-2, 2]) with SMALL, measured over 36 runs (2 players x
#: 6 opponents (uniform, 3 Dirichlet draws, 2 three-member mixtures) x 3 seeds): 81% of the
#: runs found an exact best response, the mean gap was 0.007, the 90% quantile 0.016 and
#: the largest 0.181. Margins: any single run, and the mean over the runs of a test.
KUHN_MARGIN = 0.2
KUHN_MEAN_MARGIN = 0.05


def learner_value(compiled, player, policy, opponent):
    profile = (policy, opponent) if player == 0 else (opponent, policy)
    return expected_payoff(compiled, *profile)[player]


def request(player, opponent, seed=0, **kwargs):
    population = opponent[None] if opponent.ndim == 2 else opponent
    weights = kwargs.pop("weights", np.full(population.shape[0], 1.0 / population.shape[0]))
    return BestResponseRequest(player, population, weights, seed=seed, **kwargs)


def test_reaches_near_best_response_on_kuhn(kuhn):
    """Both players, against a uniform, a random and a mixed opponent."""
    rng = np.random.default_rng(1)
    cases = []
    for player in (0, 1):
        cases.append((player, uniform_policy(kuhn, 1 - player)[None], np.ones(1)))
        cases.append((player, random_policy(kuhn, 1 - player, rng)[None], np.ones(1)))
    cases.append((0, np.stack([random_policy(kuhn, 1, rng) for _ in range(3)]), np.array([0.6, 0.3, 0.1])))
    oracle = DQNOracle(kuhn, SMALL)
    gaps = []
    for player, population, weights in cases:
        result = oracle.best_response(request(player, population, weights=weights))
        assert result.episodes == SMALL.episodes
        exact = mixture_best_response(kuhn, player, population, weights).value
        value = sum(w * learner_value(kuhn, player, result.policy, m) for w, m in zip(weights, population))
        uniform_value = sum(
            w * learner_value(kuhn, player, uniform_policy(kuhn, player), m) for w, m in zip(weights, population)
        )
        assert value > uniform_value + 0.1  # it learned something
        # The training return (epsilon-greedy, moving policy) lies in the right region too.
        assert abs(result.metrics.mean_return_last_1000 - exact) < 0.35
        gaps.append(exact - value)
    assert max(gaps) <= KUHN_MARGIN, gaps
    assert np.mean(gaps) <= KUHN_MEAN_MARGIN, gaps


def test_result_shape_and_metrics(kuhn):
    oracle = DQNOracle(kuhn, dataclasses.replace(SMALL, episodes=500))
    assert isinstance(oracle, Oracle) and oracle.name == "dqn" and oracle.trains_parameters
    result = oracle.best_response(request(1, uniform_policy(kuhn, 0)))
    info = kuhn.players[1]
    assert result.policy.shape == (info.num_infostates, info.num_actions)
    assert result.policy.dtype == np.float64
    np.testing.assert_array_equal(result.policy.sum(axis=1), 1.0)
    assert set(np.unique(result.policy)) <= {0.0, 1.0}
    assert not result.policy[~info.legal_mask].any()
    assert result.episodes == 500
    assert all(t.device.type == "cpu" for t in result.parameters.values())
    # The run log's schema: these keys in this order, no diversity keys without a term.
    logged = result.metrics.to_json()
    assert list(logged) == ["mean_return_last_1000", "updates", "train_s", "learner_steps", "agent_steps",
                            "updates_per_episode", "mean_rows_per_update", "final_loss", "device"]
    assert json.loads(json.dumps(logged)) == logged
    assert DQNMetrics.from_json(logged) == result.metrics
    with pytest.raises(ConfigError, match="unknown DQNMetrics field"):
        DQNMetrics.from_json({**logged, "loss": 0.0})
    # Player 1 acts once per Kuhn episode: 500 decisions plus 500 episode ends.
    assert result.metrics.learner_steps == 500
    assert result.metrics.agent_steps == 1000


def test_update_count_follows_openspiel_learn_every(kuhn):
    """One update per ``learn_every`` agent steps (decisions + episode ends) once learning starts."""
    config = dataclasses.replace(SMALL, episodes=2000, batch_size=32, num_envs=64, min_replay_before_learning=0)
    result = DQNOracle(kuhn, config).best_response(request(0, uniform_policy(kuhn, 1)))
    metrics = result.metrics
    assert metrics.agent_steps == metrics.learner_steps + 2000
    # Learning starts once 32 transitions are stored, within the first batched step (64
    # decisions, at most 64 episode ends): only attempts of that step can be skipped.
    due = metrics.agent_steps // config.learn_every
    assert 0 <= due - metrics.updates <= 2 * 64 // config.learn_every
    # With a 1000-transition warm-up, the attempts made before the buffer holds 1000
    # transitions are skipped: in Kuhn poker player 0 makes 1 or 2 decisions per episode,
    # so 1000 decisions come with 1500 to 2000 agent steps.
    warm = DQNOracle(kuhn, dataclasses.replace(config, min_replay_before_learning=1000)).best_response(
        request(0, uniform_policy(kuhn, 1))
    )
    skipped = warm.metrics.agent_steps // config.learn_every - warm.metrics.updates
    assert 1500 // config.learn_every - 1 <= skipped <= 2000 // config.learn_every + 1


def test_same_seed_gives_identical_results(kuhn):
    config = dataclasses.replace(SMALL, episodes=800)
    opponent = random_policy(kuhn, 1, np.random.default_rng(3))
    first = DQNOracle(kuhn, config).best_response(request(0, opponent, seed=42))
    torch.manual_seed(1234)  # the global torch RNG must not matter
    np.random.seed(1234)
    second = DQNOracle(kuhn, config).best_response(request(0, opponent, seed=42))
    assert first.parameters.keys() == second.parameters.keys()
    for name in first.parameters:
        assert torch.equal(first.parameters[name], second.parameters[name]), name
    np.testing.assert_array_equal(first.policy, second.policy)
    assert first.metrics.mean_return_last_1000 == second.metrics.mean_return_last_1000
    other = DQNOracle(kuhn, config).best_response(request(0, opponent, seed=43))
    assert not all(torch.equal(first.parameters[n], other.parameters[n]) for n in first.parameters)


def test_training_starts_from_initial_parameters(kuhn):
    oracle = DQNOracle(kuhn, dataclasses.replace(SMALL, episodes=0))
    opponent = uniform_policy(kuhn, 1)
    for scheme, seed in [("orthogonal", 1), ("kaiming", 2), ("normal", 3)]:
        initial = oracle.scratch_parameters(0, scheme, seed)
        result = oracle.best_response(request(0, opponent, initial_parameters=initial))
        assert result.episodes == 0 and result.metrics.updates == 0
        for name in initial:
            assert torch.equal(result.parameters[name], initial[name])
        np.testing.assert_array_equal(result.policy, oracle.greedy_policy(0, initial))

    # With a zero learning rate the network never moves, however long it trains.
    frozen = DQNOracle(kuhn, dataclasses.replace(SMALL, episodes=600, learning_rate=0.0))
    initial = frozen.scratch_parameters(0, "orthogonal", 7)
    result = frozen.best_response(request(0, opponent, initial_parameters=initial))
    assert result.metrics.updates > 0
    for name in initial:
        assert torch.equal(result.parameters[name], initial[name])

    # Without initial parameters the network starts from scratch_parameters(player, "normal", seed).
    start = oracle.best_response(request(0, opponent, seed=11))
    default = oracle.scratch_parameters(0, "normal", 11)
    assert all(torch.equal(start.parameters[n], default[n]) for n in default)


def test_initial_parameters_are_not_modified(kuhn):
    oracle = DQNOracle(kuhn, dataclasses.replace(SMALL, episodes=400))
    initial = oracle.scratch_parameters(0, "normal", 0)
    copy = {n: t.clone() for n, t in initial.items()}
    result = oracle.best_response(request(0, uniform_policy(kuhn, 1), initial_parameters=initial))
    assert all(torch.equal(initial[n], copy[n]) for n in initial)
    assert not all(torch.equal(result.parameters[n], initial[n]) for n in initial)


def test_wrong_initial_parameters_are_rejected(kuhn):
    oracle = DQNOracle(kuhn, SMALL)
    wrong = DQNOracle(kuhn, dataclasses.replace(SMALL, hidden_sizes=(32,))).scratch_parameters(0, "normal", 0)
    with pytest.raises(OracleError, match="initial_parameters"):
        oracle.best_response(request(0, uniform_policy(kuhn, 1), initial_parameters=wrong))
    with pytest.raises(OracleError, match="player must be 0 or 1"):
        oracle.best_response(request(2, uniform_policy(kuhn, 1)))


def test_scratch_schemes(kuhn):
    leduc = compile_game(LEDUC)
    oracle = DQNOracle(leduc, DQNConfig(device="cpu"))
    tensor_size = leduc.players[1].tensors.shape[1]
    params = {scheme: oracle.scratch_parameters(1, scheme, 0) for scheme in SCHEMES}
    shapes = {name: tuple(t.shape) for name, t in params["normal"].items()}
    assert shapes == {
        "layers.0.weight": (256, tensor_size), "layers.0.bias": (256,),
        "layers.1.weight": (256, 256), "layers.1.bias": (256,),
        "layers.2.weight": (256, 256), "layers.2.bias": (256,),
        "layers.3.weight": (3, 256), "layers.3.bias": (3,),
    }
    for scheme, state in params.items():
        assert {n: tuple(t.shape) for n, t in state.items()} == shapes
        assert all(not t.any() for n, t in state.items() if n.endswith("bias")), scheme
        again = oracle.scratch_parameters(1, scheme, 0)
        assert all(torch.equal(state[n], again[n]) for n in state)
        other_seed = oracle.scratch_parameters(1, scheme, 1)
        assert not torch.equal(state["layers.1.weight"], other_seed["layers.1.weight"])
    hidden = {scheme: params[scheme]["layers.1.weight"] for scheme in SCHEMES}
    assert not torch.equal(hidden["normal"], hidden["kaiming"])
    assert not torch.equal(hidden["normal"], hidden["orthogonal"])
    assert hidden["normal"].std().item() == pytest.approx(1 / math.sqrt(256), rel=0.05)
    assert hidden["kaiming"].std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    gram = hidden["orthogonal"] @ hidden["orthogonal"].T
    torch.testing.assert_close(gram, 2.0 * torch.eye(256), atol=1e-4, rtol=0)
    out = params["orthogonal"]["layers.3.weight"]
    torch.testing.assert_close(out @ out.T, torch.eye(3), atol=1e-5, rtol=0)
    # The player only sets the shapes; the global torch RNG is untouched.
    state = torch.random.get_rng_state()
    oracle.scratch_parameters(0, "normal", 0)
    assert torch.equal(state, torch.random.get_rng_state())


def test_unknown_scheme_is_rejected(kuhn):
    with pytest.raises(OracleError, match="normal, orthogonal, kaiming"):
        DQNOracle(kuhn, SMALL).scratch_parameters(0, "xavier", 0)


def test_config_validation(kuhn):
    with pytest.raises(ConfigError, match="batch_size"):
        DQNConfig(batch_size=0)
    with pytest.raises(ValueError, match="epsilon"):
        DQNConfig(epsilon=1.5)
    with pytest.raises(ValueError, match="loss"):
        DQNConfig(loss="l1")
    with pytest.raises(ValueError, match="replay_capacity"):
        DQNConfig(batch_size=512, replay_capacity=100)
    with pytest.raises(ValueError, match="replay_capacity"):
        DQNConfig(min_replay_before_learning=20_000)
    assert DQNConfig().hidden_sizes == (256, 256, 256)


def test_torch_threads_are_restored(kuhn):
    before = torch.get_num_threads()
    DQNOracle(kuhn, dataclasses.replace(SMALL, episodes=100, torch_threads=1)).best_response(
        request(0, uniform_policy(kuhn, 1))
    )
    assert torch.get_num_threads() == before


def _same_result(a, b):
    np.testing.assert_array_equal(a.policy, b.policy)
    assert all(torch.equal(a.parameters[n], b.parameters[n]) for n in a.parameters)
    assert a.episodes == b.episodes
    assert dataclasses.replace(a.metrics, train_s=0.0) == dataclasses.replace(b.metrics, train_s=0.0)


def test_progress_hook_reports_every_batched_step_and_changes_nothing(kuhn):
    config = dataclasses.replace(SMALL, episodes=600, num_envs=64)
    oracle = DQNOracle(kuhn, config)
    opponent = random_policy(kuhn, 1, np.random.default_rng(5))
    plain = oracle.best_response(request(0, opponent, seed=3))
    calls = []
    watched = oracle.best_response(request(0, opponent, seed=3,
                                           on_progress=lambda done, total: calls.append((done, total))))
    _same_result(plain, watched)
    done = [d for d, _ in calls]
    assert {t for _, t in calls} == {600} and done[-1] == 600
    assert all(a <= b for a, b in zip(done, done[1:]))
    # Kuhn: player 0 acts once or twice per episode, so a batched step of 64 games ends
    # at most 64 episodes and there are at least 600 / 64 of them.
    assert len(calls) >= 600 // 64 and all(b - a <= 64 for a, b in zip([0, *done], done))


def test_checkpoints_snapshot_one_training_run_at_each_budget(kuhn):
    config = dataclasses.replace(SMALL, episodes=600, num_envs=64, batch_size=64, min_replay_before_learning=64)
    oracle = DQNOracle(kuhn, config)
    opponent = random_policy(kuhn, 1, np.random.default_rng(5))
    initial = oracle.scratch_parameters(0, "orthogonal", 9)
    plain = oracle.best_response(request(0, opponent, seed=3, initial_parameters=initial))
    seen = []
    result = oracle.best_response(request(0, opponent, seed=3, initial_parameters=initial,
                                          checkpoints=(600, 250, 0, 100, 250),
                                          on_checkpoint=lambda budget, snapshot: seen.append((budget, snapshot))))
    _same_result(plain, result)
    assert [budget for budget, _ in seen] == [0, 100, 250, 600]
    snapshots = dict(seen)
    # Budget 0: the initial network, before any episode.
    assert snapshots[0].episodes == 0 and snapshots[0].metrics.updates == 0
    assert all(torch.equal(snapshots[0].parameters[n], initial[n]) for n in initial)
    # The others: at most one batched step past the budget, parameters copied at that moment.
    for budget in (100, 250):
        snapshot = snapshots[budget]
        assert budget <= snapshot.episodes < budget + config.num_envs
        np.testing.assert_array_equal(oracle.greedy_policy(0, snapshot.parameters), snapshot.policy)
        assert snapshot.metrics.agent_steps == snapshot.metrics.learner_steps + snapshot.episodes
        assert 0 < snapshot.metrics.updates < result.metrics.updates
        assert not all(torch.equal(snapshot.parameters[n], result.parameters[n]) for n in initial)
    assert snapshots[100].metrics.updates < snapshots[250].metrics.updates
    # The last budget is the end of training: the final network.
    _same_result(snapshots[600], result)


def test_checkpoints_are_validated(kuhn):
    oracle = DQNOracle(kuhn, dataclasses.replace(SMALL, episodes=300))
    keep = lambda budget, snapshot: None  # noqa: E731
    with pytest.raises(OracleError, match=r"checkpoints \[400\] lie beyond the 300 training episodes"):
        oracle.best_response(request(0, uniform_policy(kuhn, 1), checkpoints=(100, 400), on_checkpoint=keep))
    with pytest.raises(OracleError, match="non-negative"):
        request(0, uniform_policy(kuhn, 1), checkpoints=(-1,), on_checkpoint=keep)
    with pytest.raises(OracleError, match="on_checkpoint"):
        request(0, uniform_policy(kuhn, 1), checkpoints=(100,))
