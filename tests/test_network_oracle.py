"""The network half shared by the DQN and pg oracles (:class:`NetworkOracle`) and their shared metrics."""

from __future__ import annotations

import math

import pytest
import torch

from fusion_psro.errors import OracleError
from fusion_psro.games import compile_game
from fusion_psro.oracles.base import DiversityMetrics
from fusion_psro.oracles.dqn import DQNConfig, DQNMetrics, DQNOracle
from fusion_psro.oracles.network_oracle import NetworkOracle
from fusion_psro.oracles.pg import PGConfig, PGMetrics, PolicyGradientOracle


@pytest.fixture(scope="module")
def oracles():
    kuhn = compile_game("kuhn_poker")
    return DQNOracle(kuhn, DQNConfig(hidden_sizes=(8,), device="cpu")), \
        PolicyGradientOracle(kuhn, PGConfig(hidden_sizes=(8,), device="cpu"))


def test_both_network_oracles_share_the_plumbing(oracles):
    kuhn = compile_game("kuhn_poker")
    for oracle, kind in zip(oracles, ("Q-network", "policy network")):
        assert isinstance(oracle, NetworkOracle) and oracle.trains_parameters and oracle.has_output_layer
        fresh = oracle.scratch_parameters(1, "orthogonal", seed=4)
        assert {name: tuple(t.shape) for name, t in fresh.items()} == {
            "layers.0.weight": (8, kuhn.players[1].tensors.shape[1]), "layers.0.bias": (8,),
            "layers.1.weight": (kuhn.players[1].num_actions, 8), "layers.1.bias": (kuhn.players[1].num_actions,)}
        assert all(torch.equal(fresh[k], v) for k, v in oracle.scratch_parameters(1, "orthogonal", seed=4).items())
        assert oracle.output_layer_names(1) == ("layers.1.bias", "layers.1.weight")
        assert set(oracle.diagnostics(1, fresh)) == {"dead_relu", "parameter_norm", "q_gap"}
        with pytest.raises(OracleError, match=f"parameters do not fit player 0's {kind}"):
            oracle.network(0, {"layers.0.weight": torch.zeros(3, 3)})
        broken = {**fresh, "layers.0.bias": torch.full((8,), math.nan)}
        with pytest.raises(OracleError, match=f"parameters for player 1's {kind} hold NaN"):
            oracle.network(1, broken)
        with pytest.raises(OracleError, match="player must be 0 or 1, got 2"):
            oracle.build_network(2)


def test_diversity_fields_are_shared_and_written_last():
    assert issubclass(DQNMetrics, DiversityMetrics) and issubclass(PGMetrics, DiversityMetrics)
    metrics = PGMetrics(value=1.0, initial_value=0.5, best_response_value=1.5, gap=0.5, softmax_value=0.9, steps=3,
                        train_s=0.1, device="cpu", diversity_candidate=2, diversity=0.25)
    assert list(metrics.to_json()) == ["value", "initial_value", "best_response_value", "gap", "softmax_value",
                                       "steps", "train_s", "device", "diversity_candidate", "diversity"]
    assert PGMetrics.from_json(metrics.to_json()) == metrics
