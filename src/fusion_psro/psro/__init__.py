"""The PSRO loop, its variants, and best-response initializations (Nash Policy Fusion)."""

from fusion_psro.psro.initialization import INIT_STRATEGIES, fuse_parameters, initial_parameters
from fusion_psro.psro.loop import ORACLES, POPULATION_MODES, PSRO, VARIANTS, ConfigError, Member, PSROConfig

__all__ = [
    "INIT_STRATEGIES",
    "ORACLES",
    "POPULATION_MODES",
    "PSRO",
    "VARIANTS",
    "ConfigError",
    "Member",
    "PSROConfig",
    "fuse_parameters",
    "initial_parameters",
]
