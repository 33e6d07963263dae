"""Best-response oracles: exact (tabular, from the engine), learned (DQN), and gradient (mixture game).

Diversity terms of DPP-, BD&RD- and PSD-PSRO that an oracle can add to its objective are in
:mod:`fusion_psro.oracles.diversity`.
"""

from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, Oracle, OracleMetrics
from fusion_psro.oracles.diversity import DIVERSITY_VARIANTS, DiversityMeasure, DiversityTerm, TabularDiversity
from fusion_psro.oracles.exact import ExactMetrics, ExactOracle
from fusion_psro.oracles.dqn import DQNConfig, DQNMetrics, DQNOracle  # noqa: I001 (registration order: exact first)
from fusion_psro.oracles.pg import PGConfig, PGMetrics, PolicyGradientOracle
from fusion_psro.oracles.point_gradient import GradientConfig, GradientMetrics, GradientOracle

__all__ = [
    "DIVERSITY_VARIANTS",
    "BestResponseRequest",
    "BestResponseResult",
    "DQNConfig",
    "DQNMetrics",
    "DQNOracle",
    "DiversityMeasure",
    "DiversityTerm",
    "ExactMetrics",
    "ExactOracle",
    "GradientConfig",
    "GradientMetrics",
    "GradientOracle",
    "Oracle",
    "OracleMetrics",
    "PGConfig",
    "PGMetrics",
    "PolicyGradientOracle",
    "TabularDiversity",
]
