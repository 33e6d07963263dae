"""Best-response oracles: exact (tabular, from the engine), learned (DQN), and gradient (mixture game).

Diversity terms of DPP-, BD&RD- and PSD-PSRO that an oracle can add to its objective are in
:mod:`fusion_psro.oracles.diversity`.
"""

from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, Oracle
from fusion_psro.oracles.diversity import DIVERSITY_VARIANTS, DiversityTerm
from fusion_psro.oracles.exact import ExactOracle
from fusion_psro.oracles.dqn import DQNConfig, DQNOracle  # noqa: I001 (registration order: exact first)
from fusion_psro.oracles.pg import PGConfig, PolicyGradientOracle  # noqa: F401 (registers "pg")
from fusion_psro.oracles.gradient import GradientConfig, GradientOracle

__all__ = [
    "DIVERSITY_VARIANTS",
    "BestResponseRequest",
    "BestResponseResult",
    "DQNConfig",
    "DQNOracle",
    "DiversityTerm",
    "ExactOracle",
    "GradientConfig",
    "GradientOracle",
    "Oracle",
]
