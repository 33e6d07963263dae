"""Where a learner's training episodes come from: the compiled game, or pyspiel states.

A network oracle trains on batched episodes with the protocol
:class:`~fusion_psro.games.episodes.EpisodeSource` (information states as integer ids, one
learner action per game and step). Two sources provide them:

* :class:`CompiledSource` -- the compiled game (``tabular`` game kind): ids are rows of the
  player's compiled information states, whose tensors and legal masks are fixed; the
  opponent mixture is tabular policies, acted from by table lookups; a member's policy is
  its greedy table over every information state.
* :class:`SampledSource` -- pyspiel states (``sampled`` game kind,
  :class:`~fusion_psro.games.sampled.SampledEpisodes`): ids number the information states
  seen so far (a table that grows, and is compacted when it outgrows what the replay
  buffer refers to); the opponent mixture is network members
  (:class:`~fusion_psro.oracles.network_policy.NetworkSeat`); a member's policy is its
  network (:func:`~fusion_psro.oracles.network_policy.encode`).

:class:`DeviceTable` keeps the learner's current table on the training device.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyspiel
import torch

from fusion_psro.games.compiled import CompiledGame
from fusion_psro.games.sampled import SampledEpisodes, tensor_size
from fusion_psro.games.simulation import VectorizedEpisodes
from fusion_psro.oracles.base import StateDict
from fusion_psro.oracles.network_policy import NetworkSeat, tabular_policy
from fusion_psro.policies import uniform_policy


class CompiledSource:
    """Episodes of a compiled game; see the module docstring."""

    #: The game kind whose policies it produces.
    kind = "tabular"

    def __init__(self, compiled: CompiledGame) -> None:
        self.compiled = compiled

    def input_size(self, player: int) -> int:
        return int(self.compiled.players[player].tensors.shape[1])

    def num_actions(self, player: int) -> int:
        return int(self.compiled.players[player].num_actions)

    def episodes(self, request, *, num_envs: int, rng: np.random.Generator, max_episodes: int) -> VectorizedEpisodes:
        return VectorizedEpisodes(self.compiled, request.player, request.opponent_population,
                                  request.opponent_meta_strategy, num_envs=num_envs, seed=rng,
                                  max_episodes=max_episodes)

    def table(self, episodes, player: int):
        """The learner's information states (``tensors``, ``legal_mask``): the compiled ones."""
        return self.compiled.players[player]

    def member_policy(self, greedy_table, parameters) -> np.ndarray:
        """The greedy table of the network over every information state of the player (``greedy_table()``)."""
        return greedy_table()

    def uniform(self, player: int) -> np.ndarray:
        return uniform_policy(self.compiled, player)


class SampledSource:
    """Episodes stepped from pyspiel states; see the module docstring."""

    kind = "sampled"

    def __init__(self, game: pyspiel.Game, member_vector: Callable[[StateDict], np.ndarray]) -> None:
        self.game = game
        self.member_vector = member_vector
        self._input_size = tensor_size(game)

    def input_size(self, player: int) -> int:
        return self._input_size

    def num_actions(self, player: int) -> int:
        return int(self.game.num_distinct_actions())

    def episodes(self, request, *, num_envs: int, rng: np.random.Generator, max_episodes: int) -> SampledEpisodes:
        seat = NetworkSeat(request.opponent_population, request.opponent_meta_strategy, self._input_size,
                           self.num_actions(request.player))
        seats = (None, seat) if request.player == 0 else (seat, None)
        return SampledEpisodes(self.game, seats, learner=request.player, num_envs=num_envs, seed=rng,
                               max_episodes=max_episodes)

    def table(self, episodes: SampledEpisodes, player: int):
        """The learner's information states seen so far (it grows)."""
        return episodes.table

    def member_policy(self, greedy_table, parameters) -> np.ndarray:
        """The network's policy vector (``parameters``: its state dict), as the oracle writes its members."""
        return self.member_vector(parameters)


class DeviceTable:
    """The learner's information-state tensors and legal masks on the training device.

    ``source`` has ``tensors`` and ``legal_mask`` arrays (and, if it grows, ``size`` and
    ``version``). :meth:`refresh` brings the device copy up to date: new rows are appended;
    a new ``version`` (reallocated or renumbered rows) is copied anew. On the CPU the
    tensors share memory with the arrays.
    """

    def __init__(self, source, device: torch.device) -> None:
        self.source, self.device = source, device
        self._version = None
        self._rows = 0
        self.observations = self.legal = None
        self.refresh()

    @property
    def grows(self) -> bool:
        return hasattr(self.source, "version")

    def refresh(self) -> bool:
        """Update the device copy; True if rows were renumbered or reallocated since the last call."""
        version = getattr(self.source, "version", 0)
        tensors, legal = self.source.tensors, self.source.legal_mask
        if self.device.type == "cpu" or version != self._version or self.observations is None:
            changed = self._version is not None and version != self._version
            self.observations = torch.from_numpy(tensors).to(self.device)
            self.legal = torch.from_numpy(legal).to(self.device)
        else:
            changed = False
            if tensors.shape[0] > self._rows:
                new = slice(self._rows, tensors.shape[0])
                self.observations = torch.cat([self.observations, torch.from_numpy(tensors[new]).to(self.device)])
                self.legal = torch.cat([self.legal, torch.from_numpy(legal[new]).to(self.device)])
        self._version, self._rows = version, tensors.shape[0]
        return changed

    @property
    def size(self) -> int:
        return self._rows


def tabulate_member(vector: np.ndarray, compiled: CompiledGame, player: int) -> np.ndarray:
    """A sampled-play member's tabular policy over ``compiled``'s information states of ``player``."""
    info = compiled.players[player]
    return tabular_policy(vector, info.tensors, info.legal_mask)


__all__ = ["CompiledSource", "DeviceTable", "SampledSource", "tabulate_member"]
