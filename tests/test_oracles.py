"""The oracle interface: typed metrics and the training hooks of a request."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from fusion_psro.errors import ConfigError, OracleError
from fusion_psro.evaluation import mixture_best_response
from fusion_psro.games import compile_game
from fusion_psro.games.mixture import MixtureGame
from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, OracleMetrics
from fusion_psro.oracles.diversity import DiversityTerm
from fusion_psro.oracles.exact import ExactMetrics, ExactOracle
from fusion_psro.oracles.point_gradient import GradientConfig, GradientOracle
from fusion_psro.policies import uniform_policy


@dataclasses.dataclass
class _Example(OracleMetrics):
    count: int
    note: str | None = None


def test_metrics_leave_out_fields_that_do_not_apply_and_read_back():
    assert OracleMetrics().to_json() == {}
    assert BestResponseResult(policy=np.zeros((1, 1))).metrics.to_json() == {}
    assert _Example(count=3).to_json() == {"count": 3}
    assert _Example(count=3, note="x").to_json() == {"count": 3, "note": "x"}
    assert _Example.from_json({"count": 3}) == _Example(count=3)
    with pytest.raises(ConfigError, match=r"unknown _Example field\(s\) \['size'\]; accepted: count, note"):
        _Example.from_json({"count": 3, "size": 1})


def test_exact_oracle_reports_its_best_response_value():
    kuhn = compile_game("kuhn_poker")
    opponent = uniform_policy(kuhn, 1)[None]
    result = ExactOracle(kuhn).best_response(BestResponseRequest(0, opponent, np.ones(1)))
    value = mixture_best_response(kuhn, 0, opponent, np.ones(1)).value
    assert result.metrics == ExactMetrics(best_response_value=float(value))
    assert json.loads(json.dumps(result.metrics.to_json())) == {"best_response_value": float(value)}


def test_exact_oracle_takes_no_checkpoints():
    kuhn = compile_game("kuhn_poker")
    request = BestResponseRequest(0, uniform_policy(kuhn, 1)[None], np.ones(1), checkpoints=(0,),
                                  on_checkpoint=lambda budget, snapshot: None)
    with pytest.raises(OracleError, match="exact oracle takes no checkpoints"):
        ExactOracle(kuhn).best_response(request)


def test_gradient_checkpoints_are_the_points_of_shorter_ascents():
    game = MixtureGame()
    opponents = game.centres[:3].copy()
    weights = np.array([0.5, 0.3, 0.2])
    own = game.centres[3:4].copy()
    term = DiversityTerm(kind="bdrd", weight=0.5, own_population=own, own_meta_strategy=np.ones(1),
                         own_payoffs=game.payoff_matrix(own, opponents), opponent_population=opponents)

    def respond(steps, **hooks):
        oracle = GradientOracle(game, GradientConfig(steps=steps))
        return oracle.best_response(BestResponseRequest(0, opponents, weights, seed=4, diversity=term, **hooks))

    seen, progress = {}, []
    result = respond(30, checkpoints=(30, 0, 10), on_checkpoint=seen.__setitem__,
                     on_progress=lambda done, total: progress.append((done, total)))
    assert progress == [(30, 30)]
    assert list(seen) == [0, 10, 30]
    plain = respond(30)
    np.testing.assert_array_equal(result.policy, plain.policy)
    assert result.metrics == plain.metrics
    # Adam is deterministic: the point after 10 of 30 steps is where a 10-step ascent ends.
    for budget in (10, 30):
        shorter = respond(budget)
        np.testing.assert_array_equal(seen[budget].policy, shorter.policy)
        assert torch.equal(seen[budget].parameters["point"], shorter.parameters["point"])
        assert seen[budget].episodes == budget
        assert seen[budget].metrics.value == pytest.approx(shorter.metrics.value, abs=1e-12)
        assert seen[budget].metrics.diversity == pytest.approx(shorter.metrics.diversity, abs=1e-12)
    np.testing.assert_array_equal(seen[0].policy, result.metrics.start)
    with pytest.raises(OracleError, match="beyond the 30 training episodes"):
        respond(30, checkpoints=(31,), on_checkpoint=seen.__setitem__)
