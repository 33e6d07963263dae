"""What one PSRO iteration writes: a typed row of ``metrics.jsonl``.

Schema (one JSON object per line; exploitability = NashConv / 2):

``iteration``
    PSRO iteration, 1 for the first.
``exploitability``, ``nash_conv``
    Of the meta-strategy mixtures after the iteration, computed exactly.
``wall_s``, ``iteration_s``
    Seconds: cumulative, and of this iteration (training, meta-game, solving, evaluation).
``episodes``
    Cumulative training episodes (gradient steps for oracles that count steps).
``fusion_s``
    Seconds spent fusing parameters in this iteration.
``population_sizes``, ``meta_strategies``, ``meta_game_value``
    The populations' sizes, the meta-strategies (one list per player) and player 0's value
    of the meta-game under them.
``inits``
    The initialization each new best response got (``continue`` for a P-PSRO learner that
    keeps training; None for oracles without parameters).
``oracle``
    One object per best response, the oracle's own numbers; their fields are documented by
    the oracle's metrics class (:class:`fusion_psro.oracles.base.OracleMetrics` subclasses).
``exploitability_prior_code``
    Only in runs with ``exploitability_prior_code`` set (mixture game): the exploitability
    (NashConv / 2) as the PSD-PSRO code estimates it, each best response one 100-step Adam
    ascent (lr 0.1) from a seeded random start near the origin against the opponent's
    meta-strategy mixture. A lower bound of ``exploitability``, which stays the exact
    number that reports and plots use.
``start_distances``
    Only in runs of oracles that train parameters on compiled games: one entry per response
    (as ``inits``), None or the distance of its start from the player's previous best
    response (the member ``inherit`` copies): ``l2``, the Euclidean distance of all the
    network's parameters, and ``kl``, the KL divergence in nats of the start's play from the
    previous response's against the opponent mixture the response trains on (the oracle's
    acting policies: pg's softmax, the DQN's epsilon-greedy policy; the sum over
    information states of their visit probability under the start times the KL of the two
    action distributions there, which is the KL between the two distributions over the
    game's terminal histories).
further keys
    The variant's own numbers (P-PSRO: ``active_learners``, ``frozen``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass
class IterationRecord:
    """One row of ``metrics.jsonl``; see the module docstring for each field."""

    iteration: int
    exploitability: float
    nash_conv: float
    wall_s: float
    iteration_s: float
    episodes: int
    fusion_s: float
    population_sizes: list[int]
    meta_game_value: float
    meta_strategies: list[list[float]]
    inits: list[str | None]
    oracle: list[dict[str, Any]]
    #: The variant's own numbers, written as further top-level keys.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The row as written to ``metrics.jsonl``."""
        row = {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "extra"}
        return {**row, **self.extra}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> IterationRecord:
        """A row read back (keys the schema does not name go to :attr:`extra`)."""
        names = {field.name for field in dataclasses.fields(cls)} - {"extra"}
        missing = sorted(names - set(row))
        if missing:
            raise ValueError(f"a metrics row lacks {missing}")
        return cls(**{k: row[k] for k in names}, extra={k: v for k, v in row.items() if k not in names})


__all__ = ["IterationRecord"]
