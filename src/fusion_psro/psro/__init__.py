"""The PSRO loop, its variants, and best-response initializations (Nash Policy Fusion)."""

from fusion_psro.errors import ConfigError
from fusion_psro.psro.config import POPULATION_MODES, PSROConfig, resolved_settings
from fusion_psro.psro.initialization import (
    Initialization,
    InitializationChoice,
    StartContext,
    fall_back,
    fuse_parameters,
    fused_population,
)
from fusion_psro.psro.loop import PSRO, PreparedResponse, PSROState, Response, make_oracle
from fusion_psro.psro.population import Member
from fusion_psro.psro.records import IterationRecord
from fusion_psro.psro.variants import ResponsePlan, Snapshot, Variant

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
    "PreparedResponse",
    "Response",
    "ResponsePlan",
    "Snapshot",
    "StartContext",
    "Variant",
    "fall_back",
    "fuse_parameters",
    "fused_population",
    "make_oracle",
    "resolved_settings",
]
