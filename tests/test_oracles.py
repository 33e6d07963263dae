"""The oracle interface: typed metrics and what every oracle reports."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fusion_psro.errors import ConfigError
from fusion_psro.evaluation import mixture_best_response
from fusion_psro.games import compile_game
from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, OracleMetrics
from fusion_psro.oracles.exact import ExactMetrics, ExactOracle
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
