"""Games: OpenSpiel games compiled into arrays."""

from fusion_psro.games.compiled import (
    CHANCE,
    DEFAULT_MAX_HISTORIES,
    TERMINAL,
    CompiledGame,
    DerivedData,
    PlayerInfostates,
    cache_path,
    compile_game,
    default_cache_dir,
    estimate_tree_size,
)
from fusion_psro.games.loading import load_openspiel_game, openspiel_version

__all__ = [
    "CHANCE",
    "DEFAULT_MAX_HISTORIES",
    "TERMINAL",
    "CompiledGame",
    "DerivedData",
    "PlayerInfostates",
    "cache_path",
    "compile_game",
    "default_cache_dir",
    "estimate_tree_size",
    "load_openspiel_game",
    "openspiel_version",
]
