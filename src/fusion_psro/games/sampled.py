"""Many OpenSpiel games at once, stepped from pyspiel states: for games too large to compile.

:class:`SampledEpisodes` plays ``num_envs`` games side by side, each one a ``pyspiel.State``,
for one learner against a frozen opponent mixture (the learner's actions come from
outside, one batch per step), or with both seats frozen (:func:`play_games`: meta-game
entries and evaluation games). Nothing is enumerated: a game of any size can be played.

* **Information states.** Each player's information states are numbered in the order they
  are first seen, in an :class:`ObservationTable` keyed by the information-state string,
  which keeps the information-state tensor and the legal-action mask of each. A learner
  decision is therefore an integer id, as in the compiled simulation
  (:class:`~fusion_psro.games.simulation.VectorizedEpisodes`), and a replay buffer can
  store ids. A table that grows past what its user needs is compacted
  (:meth:`ObservationTable.compact`).
* **Frozen seats.** A seat that is not the learner is a :class:`SeatPolicy`: a mixture of
  members, one drawn from the seat's weights when an episode starts and followed to its
  end. At every round of moves, all games in which that seat acts are handed to the seat
  at once (``act``), so that a network member runs one batched forward pass for all the
  games it plays (:class:`fusion_psro.oracles.network_policy.NetworkSeat`).
* **Random numbers.** One :class:`numpy.random.Generator` draws everything, in a fixed
  order: at each episode start one uniform per frozen seat with more than one member (its
  member), then at each round of non-learner moves one uniform per moving game (chance
  outcome by inverse CDF over ``chance_outcomes()``, or handed to the seat, which uses it
  only for randomized members). The same seed gives the same games.

This module uses pyspiel and NumPy only: the networks that act are supplied by the seats.
"""

from __future__ import annotations

import functools
import itertools
import logging
from typing import Protocol

import numpy as np
import pyspiel

from fusion_psro.errors import ConfigError, GameNotSupportedError, InvalidPlayerError, InvalidPolicyError
from fusion_psro.games.compiled import DEFAULT_MAX_HISTORIES, cache_path, estimate_tree_size
from fusion_psro.games.episodes import StepResult
from fusion_psro.games.loading import load_openspiel_game

log = logging.getLogger(__name__)

_CHANCE = int(pyspiel.PlayerId.CHANCE)
#: A frozen seat's table is started afresh past this many information states (bounded memory in large games).
SEAT_TABLE_LIMIT = 50_000
_TERMINAL = int(pyspiel.PlayerId.TERMINAL)


@functools.lru_cache(maxsize=64)
def load_sampled_game(game: str) -> pyspiel.Game:
    """The (turn-based) OpenSpiel game of ``game``, checked to be playable by sampling.

    Two players, zero-sum or constant-sum, explicit chance, information-state strings
    (:func:`~fusion_psro.games.loading.load_openspiel_game`) and information-state tensors
    (the networks' inputs). Anything else is a :class:`GameNotSupportedError`.
    """
    loaded = load_openspiel_game(game)
    if not loaded.get_type().provides_information_state_tensor:
        raise GameNotSupportedError(
            f"{loaded} provides no information-state tensors, which the networks of sampled play take as "
            "inputs; choose a game (or game parameters) that provides them"
        )
    return loaded


@functools.lru_cache(maxsize=256)
def too_large_to_compile(game: str, max_histories: int = DEFAULT_MAX_HISTORIES) -> bool:
    """Whether ``game`` is a playable OpenSpiel game whose tree exceeds ``max_histories``.

    A game already in the compiled-game cache is not; otherwise the sampled estimate of its
    tree size (:func:`~fusion_psro.games.compiled.estimate_tree_size`, milliseconds)
    decides. A string that is no playable game is not either (the caller reports why).
    """
    try:
        loaded = load_sampled_game(game)
    except (GameNotSupportedError, pyspiel.SpielError):
        return False
    if cache_path(str(loaded)).exists():
        return False
    return estimate_tree_size(loaded, cap=10.0 * max_histories) > max_histories


def tensor_size(game: pyspiel.Game) -> int:
    """Length of the flattened information-state tensor of ``game``."""
    return int(np.prod(game.information_state_tensor_shape()))


_TABLE_TOKENS = itertools.count()


class ObservationTable:
    """One player's information states seen so far: id -> tensor and legal-action mask.

    Ids are given in the order of first sight (:meth:`intern`); :attr:`tensors` and
    :attr:`legal_mask` are views of the first :attr:`size` rows. :attr:`version` changes
    whenever the arrays are reallocated or renumbered, so users holding views know to
    take new ones; :attr:`token` tells tables apart (what users caching by id key on).
    """

    def __init__(self, tensor_size: int, num_actions: int, capacity: int = 1024) -> None:
        #: Unique among the tables of this process (``id`` is not: a freed table's is reused).
        self.token = next(_TABLE_TOKENS)
        self.index: dict[str, int] = {}
        self._tensors = np.zeros((capacity, tensor_size), dtype=np.float32)
        self._legal = np.zeros((capacity, num_actions), dtype=bool)
        self.size = 0
        self.version = 0

    @property
    def tensors(self) -> np.ndarray:
        """``float32[size, T]`` information-state tensors."""
        return self._tensors[: self.size]

    @property
    def legal_mask(self) -> np.ndarray:
        """``bool[size, A]`` legal actions."""
        return self._legal[: self.size]

    def intern(self, state: pyspiel.State, player: int) -> int:
        """The id of ``player``'s information state at ``state`` (added on first sight)."""
        key = state.information_state_string(player)
        found = self.index.get(key)
        if found is not None:
            return found
        if self.size == self._tensors.shape[0]:
            self._grow()
        row = self.size
        self._tensors[row] = state.information_state_tensor(player)
        self._legal[row, state.legal_actions(player)] = True
        self.index[key] = row
        self.size += 1
        return row

    def _grow(self) -> None:
        capacity = 2 * self._tensors.shape[0]
        tensors = np.zeros((capacity, self._tensors.shape[1]), dtype=np.float32)
        legal = np.zeros((capacity, self._legal.shape[1]), dtype=bool)
        tensors[: self.size], legal[: self.size] = self._tensors[: self.size], self._legal[: self.size]
        self._tensors, self._legal = tensors, legal
        self.version += 1

    def compact(self, keep: np.ndarray) -> np.ndarray:
        """Keep only the ids in ``keep``, renumbered in their old order; returns old id -> new id (-1: dropped)."""
        keep = np.unique(np.asarray(keep, dtype=np.int64))
        mapping = np.full(self.size, -1, dtype=np.int64)
        mapping[keep] = np.arange(keep.size)
        self._tensors[: keep.size] = self._tensors[keep]
        self._legal[: keep.size] = self._legal[keep]
        self._legal[keep.size:] = False
        self.index = {key: int(mapping[i]) for key, i in self.index.items() if mapping[i] >= 0}
        self.size = int(keep.size)
        self.version += 1
        return mapping


class SeatPolicy(Protocol):
    """A frozen seat: a mixture of members; see the module docstring."""

    #: Members' weights (a probability vector); one member is drawn per episode.
    weights: np.ndarray

    def act(self, members: np.ndarray, ids: np.ndarray, table: ObservationTable, uniforms: np.ndarray) -> np.ndarray:
        """Actions at information states ``ids`` of ``table``, member ``members[n]`` acting in game ``n``.

        ``uniforms`` are one draw in [0, 1) per game, for members that randomize.
        """


def random_legal_actions(legal: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """For each row of ``legal`` the ``floor(u * count)``-th legal action (uniform over legal actions)."""
    counts = legal.sum(axis=1)
    rank = np.minimum((uniforms * counts).astype(np.int64), counts - 1)
    return np.argmax(np.cumsum(legal, axis=1) > rank[:, None], axis=1)


def _check_seats(seats, learner: int | None) -> None:
    if learner not in (0, 1, None):
        raise InvalidPlayerError(f"learner must be 0, 1 or None, got {learner!r}")
    for player in range(2):
        if (seats[player] is None) != (player == learner):
            raise ConfigError(f"seat {player} must be {'None (the learner)' if player == learner else 'a SeatPolicy'}")


class SampledEpisodes:
    """``num_envs`` games of ``game`` played at once from pyspiel states; see the module docstring.

    An :class:`~fusion_psro.games.episodes.EpisodeSource`.

    Parameters
    ----------
    game:
        The (turn-based) OpenSpiel game (:func:`load_sampled_game`).
    seats:
        One :class:`SeatPolicy` per frozen player, None for the learner.
    learner:
        The player whose actions :meth:`step` takes, or None (both seats frozen: use
        :meth:`play_out`).
    num_envs, seed, max_episodes:
        Games side by side; the seed (or Generator) of every draw; stop starting episodes
        after this many (None: never).

    The protocol is that of :class:`~fusion_psro.games.simulation.VectorizedEpisodes`:
    :meth:`reset`, then :meth:`step` while not :attr:`finished`; :attr:`infostates` are ids
    in :attr:`table` (the learner's :class:`ObservationTable`).
    """

    def __init__(self, game: pyspiel.Game, seats, *, learner: int | None, num_envs: int = 256,
                 seed: int | np.random.Generator | None = 0, max_episodes: int | None = None) -> None:
        _check_seats(seats, learner)
        if not isinstance(num_envs, (int, np.integer)) or num_envs <= 0:
            raise ConfigError(f"num_envs must be a positive integer, got {num_envs!r}")
        if max_episodes is not None and (not isinstance(max_episodes, (int, np.integer)) or max_episodes < 0):
            raise ConfigError(f"max_episodes must be a non-negative integer or None, got {max_episodes!r}")
        self.game, self.seats, self.learner = game, seats, learner
        self.num_envs, self.max_episodes = int(num_envs), None if max_episodes is None else int(max_episodes)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        size, actions = tensor_size(game), game.num_distinct_actions()
        #: Per player, the information states seen so far.
        self.tables = (ObservationTable(size, actions), ObservationTable(size, actions))
        self._cdfs = [None if seat is None else np.cumsum(np.asarray(seat.weights, dtype=np.float64)) for seat in seats]
        self.states: list[pyspiel.State | None] = [None] * self.num_envs
        self.members = np.zeros((self.num_envs, 2), dtype=np.int64)
        self.ids = np.zeros(self.num_envs, dtype=np.int64)
        self.active = np.zeros(self.num_envs, dtype=bool)
        self.episodes_started = self.episodes_completed = self.learner_steps = 0
        #: Returns (the learner's; player 0's without a learner) of the episodes that ended
        #: during the last :meth:`reset` or :meth:`step`, and their count as ``last_terminals``.
        self.last_returns = np.zeros(0)
        self.last_terminals = np.zeros(0, dtype=np.int64)
        self._ended: list[float] = []

    @property
    def table(self) -> ObservationTable:
        """The learner's information states (ids of :attr:`infostates`)."""
        return self.tables[self.learner]

    @property
    def finished(self) -> bool:
        return not self.active.any()

    @property
    def infostates(self) -> np.ndarray:
        """``int64[N]`` learner information-state id of each game, -1 for inactive games."""
        return np.where(self.active, self.ids, -1)

    def _start(self, games: list[int]) -> list[int]:
        """Fresh episodes in ``games`` (as many as ``max_episodes`` allows); the games started."""
        if self.max_episodes is not None:
            room = max(self.max_episodes - self.episodes_started, 0)
            for g in games[room:]:
                self.active[g], self.states[g] = False, None
            games = games[:room]
        self.episodes_started += len(games)
        for g in games:
            self.states[g] = self.game.new_initial_state()
            self.active[g] = True
        for player, cdf in enumerate(self._cdfs):
            if cdf is not None and cdf.size > 1 and games:
                draws = self.rng.random(len(games)) * cdf[-1]
                self.members[games, player] = np.argmax(cdf[None, :] > draws[:, None], axis=1)
        return games

    def _advance(self, games: list[int]) -> None:
        """Play chance and frozen seats in ``games`` until each is at a learner decision or over."""
        pending = games
        while pending:
            chance, seated = [], ([], [])
            for g in pending:
                player = self.states[g].current_player()
                if player == _CHANCE:
                    chance.append(g)
                elif player >= 0 and player != self.learner:
                    seated[player].append(g)
            uniforms = self.rng.random(len(chance) + len(seated[0]) + len(seated[1]))
            for g, u in zip(chance, uniforms):
                outcomes = self.states[g].chance_outcomes()
                cdf = np.cumsum([p for _, p in outcomes])
                self.states[g].apply_action(outcomes[min(int(np.searchsorted(cdf, u * cdf[-1], side="right")),
                                                         len(outcomes) - 1)][0])
            offset = len(chance)
            for player in range(2):
                moving = seated[player]
                if moving:
                    self._seat_moves(player, moving, uniforms[offset: offset + len(moving)])
                    offset += len(moving)
            pending = chance + seated[0] + seated[1]

    def _seat_moves(self, player: int, games: list[int], uniforms: np.ndarray) -> None:
        table = self.tables[player]
        if table.size >= SEAT_TABLE_LIMIT:  # a frozen seat's ids live for one round: start a new table
            table = ObservationTable(table.tensors.shape[1], table.legal_mask.shape[1])
            self.tables = (table, self.tables[1]) if player == 0 else (self.tables[0], table)
        ids = np.fromiter((table.intern(self.states[g], player) for g in games), dtype=np.int64, count=len(games))
        actions = self.seats[player].act(self.members[games, player], ids, table, uniforms)
        for g, action in zip(games, actions.tolist()):
            self.states[g].apply_action(action)

    def _settle(self, games: list[int]) -> None:
        """Advance ``games``; record and restart those whose episodes end, until all stand at a learner decision."""
        while games:
            self._advance(games)
            ended = [g for g in games if self.states[g].is_terminal()]
            scored = 0 if self.learner is None else self.learner
            for g in ended:
                self._ended.append(self.states[g].returns()[scored])
            self.episodes_completed += len(ended)
            waiting = [g for g in games if not self.states[g].is_terminal()]
            table = self.tables[self.learner] if self.learner is not None else None
            for g in waiting:
                self.ids[g] = table.intern(self.states[g], self.learner)
            games = self._start(ended) if ended else []

    def _finish_call(self) -> None:
        self.last_returns = np.asarray(self._ended, dtype=np.float64)
        self.last_terminals = np.zeros(self.last_returns.size, dtype=np.int64)
        self._ended = []

    def reset(self) -> None:
        """Start new episodes in every game (counters are kept)."""
        self.active[:] = False
        self._settle(self._start(list(range(self.num_envs))))
        self._finish_call()

    def step(self, actions) -> StepResult:
        """Apply the learner's ``actions`` (``int[N]``; entries of inactive games are ignored)."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise InvalidPolicyError(f"actions must have shape ({self.num_envs},), got {actions.shape}")
        games = np.flatnonzero(self.active)
        chosen = actions[games].astype(np.int64)
        legal = self.table.legal_mask
        if chosen.size and (chosen.min() < 0 or chosen.max() >= legal.shape[1] or not legal[self.ids[games], chosen].all()):
            bad = int(games[np.flatnonzero((chosen < 0) | (chosen >= legal.shape[1]) |
                                          ~legal[self.ids[games], np.clip(chosen, 0, legal.shape[1] - 1)])[0]])
            raise InvalidPolicyError(
                f"step() was given the illegal action {int(actions[bad])} for game {bad}; legal actions there: "
                f"{np.flatnonzero(legal[self.ids[bad]]).tolist()}"
            )
        acted = self.active.copy()
        for g, action in zip(games.tolist(), chosen.tolist()):
            self.states[g].apply_action(action)
        self.learner_steps += int(games.size)
        done, rewards = self._after_learner(games.tolist())
        return StepResult(acted=acted, done=done, rewards=rewards)

    def _after_learner(self, games: list[int]) -> tuple[np.ndarray, np.ndarray]:
        self._advance(games)
        done, rewards = np.zeros(self.num_envs, dtype=bool), np.zeros(self.num_envs)
        ended = [g for g in games if self.states[g].is_terminal()]
        for g in ended:
            rewards[g] = self.states[g].returns()[self.learner]
            self._ended.append(rewards[g])
        done[ended] = True
        self.episodes_completed += len(ended)
        for g in games:
            if not done[g]:
                self.ids[g] = self.table.intern(self.states[g], self.learner)
        self._settle(self._start(ended))
        self._finish_call()
        return done, rewards

    def play_out(self) -> np.ndarray:
        """Both seats frozen: play every episode (``max_episodes`` of them); player 0's returns, in order of ending."""
        if self.learner is not None:
            raise ConfigError("play_out() plays games without a learner; use step() with one")
        if self.max_episodes is None:
            raise ConfigError("play_out() needs max_episodes")
        self.active[:] = False
        self._settle(self._start(list(range(self.num_envs))))
        returns = np.asarray(self._ended, dtype=np.float64)
        self._ended = []
        return returns


def play_games(game: pyspiel.Game, seats, games: int, *, seed, num_envs: int = 256) -> np.ndarray:
    """Player 0's returns of ``games`` games between two frozen seats (each draws a member per game)."""
    episodes = SampledEpisodes(game, seats, learner=None, num_envs=min(num_envs, max(games, 1)), seed=seed,
                               max_episodes=games)
    return episodes.play_out()


__all__ = [
    "ObservationTable", "SampledEpisodes", "SeatPolicy", "StepResult", "load_sampled_game",
    "play_games", "random_legal_actions", "tensor_size", "too_large_to_compile",
]
