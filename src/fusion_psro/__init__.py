"""fusion-psro: exact, vectorized PSRO and Nash Policy Fusion for two-player zero-sum games.

The public OpenSpiel-facing API::

    import fusion_psro
    fusion_psro.exploitability("leduc_poker", policy)         # NashConv / 2
    fusion_psro.nash_conv("leduc_poker", policy)
    fusion_psro.mixture_exploitability("leduc_poker", populations, meta_strategies)

Array-level engine: :mod:`fusion_psro.games` (compiled games) and
:mod:`fusion_psro.evaluation` (payoff matrices, best responses, NashConv).

Components (oracles, variants, initializations, meta-solvers, diversity terms, game kinds)
are registered by name (:mod:`fusion_psro.registry`); ``register_oracle`` and its siblings
add new ones.

A run's results come back with ``fusion_psro.load_run(DIR)`` (populations, networks,
meta-strategies, metrics, the final mixtures as an OpenSpiel ``TabularPolicy``); see
:mod:`fusion_psro.experiments.results`.
"""

from fusion_psro.errors import (
    FusionPSROError,
    GameNotSupportedError,
    GameTooLargeError,
    InvalidMetaStrategyError,
    InvalidPolicyError,
    PolicyTypeError,
)
from fusion_psro.lazy import lazy_getattr

__version__ = "0.1.0"

#: Names imported on first use, so that ``import fusion_psro`` (and the command line's start,
#: where Ctrl-C must be answered in one line) loads neither NumPy nor OpenSpiel until asked.
_LAZY = {
    "registry": "fusion_psro",
    "CompiledGame": "fusion_psro.games",
    "compile_game": "fusion_psro.games",
    **dict.fromkeys(("exploitability", "from_openspiel_policy", "mixture_exploitability", "mixture_nash_conv",
                     "nash_conv", "to_openspiel_policy"), "fusion_psro.interop"),
    **dict.fromkeys(("register_diversity_term", "register_game_kind", "register_init", "register_meta_solver",
                     "register_oracle", "register_variant"), "fusion_psro.registry"),
    "RunDirectoryError": "fusion_psro.experiments.rundir",
    "RunIntegrityError": "fusion_psro.experiments.manifest",
    "SavedRun": "fusion_psro.experiments.results",
    "load_run": "fusion_psro.experiments.results",
    "match_runs": "fusion_psro.experiments.results",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "CompiledGame",
    "FusionPSROError",
    "GameNotSupportedError",
    "GameTooLargeError",
    "InvalidMetaStrategyError",
    "InvalidPolicyError",
    "PolicyTypeError",
    "RunDirectoryError",
    "RunIntegrityError",
    "SavedRun",
    "compile_game",
    "exploitability",
    "from_openspiel_policy",
    "load_run",
    "match_runs",
    "mixture_exploitability",
    "mixture_nash_conv",
    "nash_conv",
    "register_diversity_term",
    "register_game_kind",
    "register_init",
    "register_meta_solver",
    "register_oracle",
    "register_variant",
    "registry",
    "to_openspiel_policy",
]
