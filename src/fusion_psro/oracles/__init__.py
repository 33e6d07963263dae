"""Best-response oracles: exact (tabular, from the engine), learned (DQN), exact policy gradient
(pg) and the mixture game's point oracle (gradient).

Diversity terms of DPP-, BD&RD- and PSD-PSRO that an oracle can add to its objective are in
:mod:`fusion_psro.oracles.diversity`.

The oracles that need PyTorch are registered deferred (:meth:`fusion_psro.registry.Registry.register_deferred`)
and their names here are imported on first use, so ``run --oracle exact`` never imports PyTorch.
"""

from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, Oracle, OracleMetrics
from fusion_psro.oracles.diversity import DIVERSITY_VARIANTS, DiversityMeasure, DiversityTerm, TabularDiversity
from fusion_psro.oracles.exact import ExactMetrics, ExactOracle
from fusion_psro.lazy import lazy_getattr
from fusion_psro.registry import ORACLES

#: Registered name -> (module, class) of the oracles imported on first use, in registration order.
DEFERRED_ORACLES = {
    "dqn": ("fusion_psro.oracles.dqn", "DQNOracle"),
    "pg": ("fusion_psro.oracles.pg", "PolicyGradientOracle"),
    "gradient": ("fusion_psro.oracles.point_gradient", "GradientOracle"),
}
for _name, (_module, _attribute) in DEFERRED_ORACLES.items():
    if _name not in ORACLES.names():  # the module may have registered itself first
        ORACLES.register_deferred(_name, _module, _attribute)

#: Public names of the deferred modules, imported on first use.
_LAZY = {
    "DQNConfig": "fusion_psro.oracles.dqn",
    "DQNMetrics": "fusion_psro.oracles.dqn",
    "DQNOracle": "fusion_psro.oracles.dqn",
    "PGConfig": "fusion_psro.oracles.pg",
    "PGMetrics": "fusion_psro.oracles.pg",
    "PolicyGradientOracle": "fusion_psro.oracles.pg",
    "GradientConfig": "fusion_psro.oracles.point_gradient",
    "GradientMetrics": "fusion_psro.oracles.point_gradient",
    "GradientOracle": "fusion_psro.oracles.point_gradient",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


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
