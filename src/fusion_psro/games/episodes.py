"""The episode interface a network oracle trains on, written once for its two backends.

A learner plays ``num_envs`` games at once against a frozen opponent mixture; only its own
actions come from outside. Two backends implement :class:`EpisodeSource`:

* :class:`~fusion_psro.games.simulation.VectorizedEpisodes` -- the compiled game: a game's
  state is a history index, information states are rows of the compiled tables;
* :class:`~fusion_psro.games.sampled.SampledEpisodes` -- pyspiel states, for games too
  large to compile: information states are numbered as they are first seen (its
  ``table`` grows).

Both step to :class:`StepResult`. The protocol::

    episodes.reset()                      # every active game at a learner decision
    while not episodes.finished:
        ids = episodes.infostates         # [N] learner information states (-1: inactive game)
        result = episodes.step(actions)   # the learner acts in every active game
        # result.done / result.rewards: the episodes that ended after this action; those games
        # were reset to new episodes (or made inactive once max_episodes have started).
    episodes.last_returns                 # returns of the episodes that ended in the last call
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class StepResult:
    """Outcome of one :meth:`EpisodeSource.step` (arrays over the ``N`` games).

    Attributes
    ----------
    acted:
        ``bool[N]``: the game was active and the learner's action was applied.
    done:
        ``bool[N]``: the game's episode ended after the learner's action (the game has
        since been reset to a new episode, or made inactive).
    rewards:
        ``float64[N]``: the learner's return where ``done``, else 0 (rewards come at the
        end of an episode only).
    terminals:
        ``int64[N]``: the terminal history reached where ``done``, else -1; None where the
        backend has no history index (sampled play).
    """

    acted: np.ndarray
    done: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray | None = None


@runtime_checkable
class EpisodeSource(Protocol):
    """Batched episodes of one learner against a frozen mixture; see the module docstring."""

    #: Games played side by side.
    num_envs: int
    #: Episodes to play in all (None: no end).
    max_episodes: int | None
    #: Episodes ended so far, and learner decisions made.
    episodes_completed: int
    learner_steps: int
    #: Learner returns of the episodes that ended during the last :meth:`reset` or :meth:`step`
    #: (including episodes that ended without a learner decision), and their terminal indices.
    last_returns: np.ndarray
    last_terminals: np.ndarray

    @property
    def finished(self) -> bool:
        """Whether every episode has been played (no game is active)."""

    @property
    def infostates(self) -> np.ndarray:
        """``int64[N]``: the learner's information state in each game, -1 where the game is inactive."""

    def reset(self) -> None:
        """Start the episodes: afterwards every active game stands at a learner decision."""

    def step(self, actions) -> StepResult:
        """Apply ``actions[n]`` (the learner's) in every active game ``n`` and play on to the learner's next decision."""


__all__ = ["EpisodeSource", "StepResult"]
