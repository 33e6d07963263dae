"""The oracle of a run: the registered oracle its config names, built for its policy space.

Its own module, so that the loop (:mod:`fusion_psro.psro.loop`) and the workers of an
executor (:mod:`fusion_psro.psro.executors`) build oracles alike without importing each other.
"""

from __future__ import annotations

from typing import Any

from fusion_psro.errors import ConfigError
from fusion_psro.registry import ORACLES


def make_oracle(config: Any, space: Any):
    """The registered oracle ``config.oracle`` (a resolved config) for the game of ``space``.

    An oracle whose budget is episodes gets ``config.episodes``; giving it also in
    ``oracle_options`` with another value is an error.
    """
    oracle_class = ORACLES.get(config.oracle)
    options = dict(config.oracle_options)
    if oracle_class.budget_setting == "episodes":
        if options.get("episodes", config.episodes) != config.episodes:
            raise ConfigError(
                f"the episode budget is given twice (episodes={config.episodes}, oracle option "
                f"episodes={options['episodes']}); give it once, with --episodes"
            )
        options["episodes"] = config.episodes
    return oracle_class.create(space, options)


__all__ = ["make_oracle"]
