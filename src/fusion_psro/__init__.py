"""fusion-psro: exact, vectorized PSRO and Nash Policy Fusion for two-player zero-sum games.

The public OpenSpiel-facing API::

    import fusion_psro
    fusion_psro.exploitability("leduc_poker", policy)         # NashConv / 2
    fusion_psro.nash_conv("leduc_poker", policy)
    fusion_psro.mixture_exploitability("leduc_poker", populations, meta_strategies)

Array-level engine: :mod:`fusion_psro.games` (compiled games) and
:mod:`fusion_psro.evaluation` (payoff matrices, best responses, NashConv).
"""

from fusion_psro.errors import (
    FusionPSROError,
    GameNotSupportedError,
    GameTooLargeError,
    InvalidMetaStrategyError,
    InvalidPolicyError,
    PolicyTypeError,
)
from fusion_psro.games import CompiledGame, compile_game
from fusion_psro.interop import (
    exploitability,
    from_openspiel_policy,
    mixture_exploitability,
    mixture_nash_conv,
    nash_conv,
    to_openspiel_policy,
)

__version__ = "0.1.0"

__all__ = [
    "CompiledGame",
    "FusionPSROError",
    "GameNotSupportedError",
    "GameTooLargeError",
    "InvalidMetaStrategyError",
    "InvalidPolicyError",
    "PolicyTypeError",
    "compile_game",
    "exploitability",
    "from_openspiel_policy",
    "mixture_exploitability",
    "mixture_nash_conv",
    "nash_conv",
    "to_openspiel_policy",
]
