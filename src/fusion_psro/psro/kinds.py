"""The built-in game kinds, registered in this order: ``tabular`` (the fallback), ``mixture``, ``sampled``."""

from fusion_psro.psro.sampled_space import SampledSpace
from fusion_psro.psro.spaces import MixtureSpace, TabularSpace
from fusion_psro.registry import register_game_kind

register_game_kind("tabular", TabularSpace)
register_game_kind("mixture", MixtureSpace)
register_game_kind("sampled", SampledSpace)

__all__ = ["MixtureSpace", "SampledSpace", "TabularSpace"]
