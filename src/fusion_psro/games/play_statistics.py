"""What sampled games show of a mixture's play: visits, action counts and returns per information state.

:func:`sample_play` plays games of one player's meta-strategy mixture (a member drawn by its
weight at the start of every game, then followed to the end) against the opponent's mixture
on a compiled game, by :class:`~fusion_psro.games.simulation.VectorizedEpisodes`, and counts
what it saw. Nothing exact enters: the statistics are what a learner that only watched the
games would have (Nash distillation from sampled play).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fusion_psro.errors import ConfigError
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.games.simulation import VectorizedEpisodes
from fusion_psro.validation import validate_meta_strategy, validate_policy


@dataclasses.dataclass(frozen=True)
class PlayStatistics:
    """Counts of one player's decisions in sampled games.

    Attributes
    ----------
    games:
        Games played.
    action_counts:
        ``float64[I, A]``: how often the player took ``a`` at ``s``.
    return_sums:
        ``float64[I, A]``: the sum, over those decisions, of the player's return of the game.
    """

    games: int
    action_counts: np.ndarray
    return_sums: np.ndarray

    @property
    def visits(self) -> np.ndarray:
        """``float64[I]``: decisions made at each information state."""
        return self.action_counts.sum(axis=1)

    def frequencies(self) -> np.ndarray:
        """``float64[I, A]``: the empirical policy at visited states (rows of 0 elsewhere)."""
        visits = self.visits[:, None]
        return np.divide(self.action_counts, visits, out=np.zeros_like(self.action_counts), where=visits > 0)

    def mean_returns(self) -> np.ndarray:
        """``float64[I, A]``: the mean return after each decision taken (0 where never taken)."""
        counts = self.action_counts
        return np.divide(self.return_sums, counts, out=np.zeros_like(counts), where=counts > 0)


def sample_play(compiled: CompiledGame, player: int, population, weights, opponent_population, opponent_weights, *,
                games: int, seed: int, num_envs: int = 256) -> PlayStatistics:
    """Play ``games`` games of ``player``'s mixture ``weights @ population`` against the opponent's
    mixture and count the player's decisions (module docstring). Deterministic in ``seed``."""
    if isinstance(games, bool) or not isinstance(games, (int, np.integer)) or games < 1:
        raise ConfigError(f"games must be an integer >= 1, got {games!r}")
    population = validate_policy(compiled, player, population, name="population")
    population = population[None] if population.ndim == 2 else population
    cdf = np.cumsum(validate_meta_strategy(weights, population.shape[0], player=player))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    episodes = VectorizedEpisodes(compiled, player, opponent_population, opponent_weights, num_envs=min(num_envs, games),
                                  seed=np.random.default_rng(np.random.SeedSequence([seed, 2])), max_episodes=games)
    shape = population.shape[1:]
    counts, returns = np.zeros(shape), np.zeros(shape)
    member = np.searchsorted(cdf, rng.random(episodes.num_envs) * cdf[-1], side="right")
    pending: list[list[tuple[int, int]]] = [[] for _ in range(episodes.num_envs)]
    episodes.reset()
    while not episodes.finished:
        info = episodes.infostates
        games_now = np.flatnonzero(info >= 0)
        probabilities = population[member[games_now], info[games_now]]
        chosen = (rng.random(games_now.size)[:, None] * probabilities.sum(axis=1, keepdims=True)
                  > np.cumsum(probabilities, axis=1)).sum(axis=1)
        actions = np.zeros(episodes.num_envs, dtype=np.int64)
        actions[games_now] = chosen
        np.add.at(counts, (info[games_now], chosen), 1.0)
        for game, state, action in zip(games_now, info[games_now], chosen):
            pending[game].append((int(state), int(action)))
        result = episodes.step(actions)
        for game in np.flatnonzero(result.done):
            for state, action in pending[game]:
                returns[state, action] += result.rewards[game]
            pending[game] = []
            member[game] = np.searchsorted(cdf, rng.random() * cdf[-1], side="right")
    return PlayStatistics(games=games, action_counts=counts, return_sums=returns)


__all__ = ["PlayStatistics", "sample_play"]
