"""The exact oracle: the tabular best response computed by the engine.

PSRO with it is the noise-free baseline, and the limit every learned oracle approaches:
its best response is the true one, so the only error left in a run is PSRO's own.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fusion_psro.evaluation import mixture_best_response
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, Oracle, OracleMetrics
from fusion_psro.registry import register_oracle


@dataclasses.dataclass
class ExactMetrics(OracleMetrics):
    """The exact oracle's numbers for one best response.

    Attributes
    ----------
    best_response_value:
        Exact value of the best response against the opponent's meta-strategy mixture.
    """

    best_response_value: float


class ExactOracle(Oracle):
    """Pure best response to the opponent's meta-strategy mixture, exactly (sequence form).

    Ties between equally good actions go to the lowest action index, so the oracle is
    deterministic.
    """

    game_kinds = ("tabular",)
    shared_population = True

    def __init__(self, compiled: CompiledGame):
        self.compiled = compiled

    @classmethod
    def from_space(cls, space, settings) -> ExactOracle:
        return cls(space.compiled)

    def best_response(self, request: BestResponseRequest) -> BestResponseResult:
        self.check_checkpoints(request, 0)
        response = mixture_best_response(
            self.compiled, request.player, request.opponent_population, request.opponent_meta_strategy
        )
        return BestResponseResult(
            policy=np.asarray(response.policy), metrics=ExactMetrics(best_response_value=float(response.value))
        )


register_oracle("exact", ExactOracle)
