"""The PSRO loop, its variants, and best-response initializations (Nash Policy Fusion)."""

from fusion_psro.errors import ConfigError
from fusion_psro.psro.config import POPULATION_MODES, PSROConfig, resolved_settings
from fusion_psro.psro.initialization import (
    Initialization,
    InitializationChoice,
    StartContext,
    fuse_parameters,
    initial_parameters,
)
from fusion_psro.psro.loop import PSRO, PSROState, Response, make_oracle
from fusion_psro.psro.population import Member
from fusion_psro.psro.records import IterationRecord
from fusion_psro.psro.variants import ResponsePlan, Variant

__all__ = [
    "POPULATION_MODES",
    "PSRO",
    "ConfigError",
    "Initialization",
    "InitializationChoice",
    "IterationRecord",
    "Member",
    "PSROConfig",
    "PSROState",
    "Response",
    "ResponsePlan",
    "StartContext",
    "Variant",
    "fuse_parameters",
    "initial_parameters",
    "make_oracle",
    "resolved_settings",
]
