"""Nash distillation at equal cost (charged to the oracle's budget) and from sampled play alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion_psro.errors import ConfigError
from fusion_psro.evaluation import action_values, mixture_behaviour, mixture_plan
from fusion_psro.games import compile_game
from fusion_psro.games.play_statistics import sample_play
from fusion_psro.policies import random_policy, uniform_policy


@pytest.fixture(scope="module")
def kuhn_mixtures():
    compiled = compile_game("kuhn_poker")
    rng = np.random.default_rng(3)
    own = np.stack([uniform_policy(compiled, 0), random_policy(compiled, 0, rng)])
    opponents = np.stack([random_policy(compiled, 1, rng), random_policy(compiled, 1, rng)])
    return compiled, own, np.array([0.3, 0.7]), opponents, np.array([0.6, 0.4])


def test_sampled_play_estimates_the_mixtures_behaviour_and_action_values(kuhn_mixtures):
    compiled, own, weights, opponents, opponent_weights = kuhn_mixtures
    play = sample_play(compiled, 0, own, weights, opponents, opponent_weights, games=40_000, seed=1)
    assert play.games == 40_000
    behaviour = mixture_behaviour(compiled, 0, own, weights)
    values = action_values(compiled, 0, behaviour, mixture_plan(compiled, 1, opponents, opponent_weights))
    seen = play.visits > 2000
    assert seen.sum() >= 4
    np.testing.assert_allclose(play.frequencies()[seen], behaviour[seen], atol=0.03)
    taken = play.action_counts > 2000
    np.testing.assert_allclose(play.mean_returns()[taken], values.q[taken], atol=0.08)
    again = sample_play(compiled, 0, own, weights, opponents, opponent_weights, games=500, seed=1)
    assert np.array_equal(again.action_counts, sample_play(compiled, 0, own, weights, opponents, opponent_weights,
                                                           games=500, seed=1).action_counts)
    with pytest.raises(ConfigError, match="games must be an integer >= 1"):
        sample_play(compiled, 0, own, weights, opponents, opponent_weights, games=0, seed=1)


def test_sampled_distillation_uses_no_exact_target(kuhn_mixtures, monkeypatch):
    import fusion_psro.oracles.dqn as dqn_module
    import fusion_psro.oracles.pg as pg_module
    from fusion_psro.oracles import DQNConfig, DQNOracle
    from fusion_psro.oracles.pg import PGConfig, PolicyGradientOracle

    compiled, own, weights, opponents, opponent_weights = kuhn_mixtures
    behaviour = mixture_behaviour(compiled, 0, own, weights)
    exact_q = action_values(compiled, 0, behaviour, mixture_plan(compiled, 1, opponents, opponent_weights)).q

    def refuse(*args, **kwargs):
        raise AssertionError("an exact target was computed")

    for module in (pg_module, dqn_module):
        monkeypatch.setattr(module, "mixture_behaviour", refuse)
    monkeypatch.setattr(dqn_module, "action_values", refuse)
    pg = PolicyGradientOracle(compiled, PGConfig(hidden_sizes=(32,)))
    fresh = pg.scratch_parameters(0, "normal", 0)
    fitted = pg.distill(0, fresh, own, weights, opponents, opponent_weights, steps=300, learning_rate=1e-2,
                        sampled_games=20_000, seed=0)
    before = np.abs(pg.tabular_policy(0, fresh, "stochastic") - behaviour).max()
    after = np.abs(pg.tabular_policy(0, fitted, "stochastic") - behaviour).max()
    assert after < 0.05 < before
    dqn = DQNOracle(compiled, DQNConfig(hidden_sizes=(32,)))
    fresh = dqn.scratch_parameters(0, "normal", 0)

    def q_error(parameters):
        with torch.no_grad():
            q = dqn.network(0, parameters)(torch.from_numpy(compiled.players[0].tensors)).double().numpy()
        return np.abs(q - exact_q)[compiled.players[0].legal_mask].mean()

    fitted = dqn.distill(0, fresh, own, weights, opponents, opponent_weights, steps=300, learning_rate=1e-2,
                         sampled_games=20_000, seed=0)
    assert q_error(fitted) < 0.3 * q_error(fresh)


def _run(init_options, *, oracle="pg", iterations=3, **settings):
    from fusion_psro.psro import PSRO, PSROConfig

    options = {"pg": {"steps": 20, "hidden_sizes": (8,)},
               "dqn": {"hidden_sizes": (8,), "batch_size": 16, "min_replay_before_learning": 32, "num_envs": 8}}
    return PSRO(PSROConfig(game="kuhn_poker", oracle=oracle, init="nash-distill", iterations=iterations, seed=0,
                           init_options=init_options, oracle_options=options[oracle], **settings)).run()


def test_a_charged_distillation_leaves_the_oracle_the_rest_of_its_budget():
    rows = _run({"steps": 5, "charge": True})
    for row in rows:
        for init, entry in zip(row.inits, row.oracle):
            assert entry["steps"] == (15 if init == "nash-distill" else 20), row
    assert {init for row in rows for init in row.inits} == {"nash-distill"}  # the uniform policy is distilled too
    assert [row.episodes for row in rows] == [40, 80, 120]  # every response costs its 20 steps in all
    free = _run({"steps": 5})
    assert all(entry["steps"] == 20 for row in free for entry in row.oracle)
    dqn = _run({"steps": 5, "target": "sampled", "games": 30, "charge": True}, oracle="dqn", episodes=100)
    assert [row.episodes for row in dqn] == [200, 400, 600]


@pytest.mark.parametrize(("options", "oracle", "message"), [
    ({"charge": True}, "dqn", "episodes count sampled games \\(give target=sampled\\)"),
    ({"steps": 20, "charge": True}, "pg", "spends 20 of the 20 steps"),
    ({"target": "nearest"}, "pg", "target must be one of exact, sampled"),
    ({"games": 0}, "pg", "games must be an integer >= 1"),
    ({"charge": "yes"}, "pg", "charge must be true or false"),
])
def test_bad_distillation_settings_are_one_line_errors(options, oracle, message):
    with pytest.raises(ConfigError, match=message):
        _run(options, oracle=oracle, episodes=100)
