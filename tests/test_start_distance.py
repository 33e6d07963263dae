"""The distance of a start from the previous best response: parameters (L2) and play (KL)."""

from __future__ import annotations

import numpy as np
import pytest

from fusion_psro.evaluation import mixture_plan, play_kl, realization_plans
from fusion_psro.games import compile_game
from fusion_psro.policies import random_policy


def _terminal_distribution(compiled, player, policy, opponent_plan):
    """P(z) of every terminal history, from the sequence form (chance x own plan x opponent plan)."""
    z = compiled.terminal_histories
    own = realization_plans(compiled, player, policy)
    return compiled.chance_reach[z] * own[compiled.sequences[z, player]] * opponent_plan[compiled.sequences[z, 1 - player]]


@pytest.mark.parametrize("game", ["kuhn_poker", "leduc_poker"])
def test_play_kl_is_the_kl_of_the_terminal_distributions(game):
    compiled = compile_game(game)
    rng = np.random.default_rng(1)
    for player in range(2):
        p, q = random_policy(compiled, player, rng), random_policy(compiled, player, rng)
        opponent = mixture_plan(compiled, 1 - player, np.stack([random_policy(compiled, 1 - player, rng)
                                                                for _ in range(2)]), np.array([0.3, 0.7]))
        a, b = (_terminal_distribution(compiled, player, x, opponent) for x in (p, q))
        assert a.sum() == pytest.approx(1.0)
        seen = a > 0
        assert play_kl(compiled, player, p, q, opponent) == pytest.approx(float(np.sum(a[seen] * np.log(a[seen] / b[seen]))),
                                                                         rel=1e-9)
        assert play_kl(compiled, player, p, p, opponent) == 0.0


def test_play_kl_is_infinite_where_the_other_policy_rules_out_a_played_action():
    compiled = compile_game("kuhn_poker")
    uniform = np.where(compiled.players[0].legal_mask, 0.5, 0.0)
    deterministic = np.zeros_like(uniform)
    deterministic[:, 0] = 1.0
    opponent = realization_plans(compiled, 1, np.where(compiled.players[1].legal_mask, 0.5, 0.0))
    assert play_kl(compiled, 0, uniform, deterministic, opponent) == np.inf
    assert play_kl(compiled, 0, deterministic, uniform, opponent) > 0


@pytest.mark.parametrize("oracle", ["pg", "dqn"])
def test_runs_record_the_start_distance_of_each_response(oracle):
    from fusion_psro.psro import PSRO, PSROConfig

    small = {"pg": {"steps": 3, "hidden_sizes": (8,)},
             "dqn": {"hidden_sizes": (8,), "batch_size": 16, "min_replay_before_learning": 32, "num_envs": 8}}[oracle]
    rows = {}
    for init in ("inherit", "fusion", "normal"):
        psro = PSRO(PSROConfig(game="kuhn_poker", oracle=oracle, init=init, iterations=3, seed=0, episodes=100,
                               oracle_options=small))
        rows[init] = [row.to_json() for row in psro.run()]
        if init == "normal":  # recomputed: the fresh draw of the response's seed against the member before it
            for t in (2, 3):
                for p in range(2):
                    fresh = psro.oracle.scratch_parameters(p, "normal", psro.seed(t, p))
                    previous = psro.state.populations[p][t - 1].parameters
                    l2 = np.sqrt(sum(float(((fresh[k].double() - previous[k].double()) ** 2).sum()) for k in fresh))
                    assert rows[init][t - 1]["start_distances"][p]["l2"] == pytest.approx(l2, rel=1e-12)
    # The first responses have no previous one.
    assert all("start_distances" not in rows[init][0] for init in rows)
    for row in rows["inherit"][1:]:  # a copy of the previous response: nowhere
        assert row["start_distances"] == [{"l2": 0.0, "kl": 0.0}] * 2
    for init in ("fusion", "normal"):  # fusion of the previous response alone is the previous response
        for row in rows[init][1:]:
            for distance in row["start_distances"]:
                assert distance["l2"] >= 0 and distance["kl"] >= 0 and np.isfinite(distance["kl"]), (init, row)
    assert all(d["l2"] > 0 for row in rows["normal"][1:] for d in row["start_distances"])
    assert any(d["kl"] > 0 for row in rows["normal"][1:] for d in row["start_distances"])


def test_runs_without_parameters_record_no_distances():
    from fusion_psro.psro import PSRO, PSROConfig

    rows = [row.to_json() for row in PSRO(PSROConfig(game="kuhn_poker", oracle="exact", iterations=2)).run()]
    assert all("start_distances" not in row for row in rows)
