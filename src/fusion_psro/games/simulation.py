"""Many episodes at once over a compiled game, for one learner against a frozen mixture.

:class:`VectorizedEpisodes` plays ``num_envs`` games side by side. The state of a game
is one integer, its history index in the :class:`~fusion_psro.games.CompiledGame`; a
move is a lookup in the ``children`` table. Only the *learner* chooses actions from
outside; chance outcomes and the opponent's actions are sampled here, for all games at
once, with one uniform draw per game and move (inverse-CDF sampling on precomputed
cumulative distributions). There is no Python loop over games: the only loop runs over
the (few) consecutive non-learner moves between two learner decisions.

The opponent is a meta-strategy mixture of tabular policies ``[K, I_opp, A]`` with
weights ``[K]``: every episode draws one member from the weights when it starts and
follows it to the end, which is exactly the mixture PSRO's meta-strategy describes
(and what :func:`fusion_psro.evaluation.mixture_plan` evaluates).

The protocol of :class:`~fusion_psro.games.episodes.EpisodeSource`, with the tables of the
compiled game::

    episodes = VectorizedEpisodes(compiled, learner=0, opponent_population=pop,
                                  opponent_weights=w, num_envs=256, seed=0)
    episodes.reset()                      # every game at a learner decision
    while not episodes.finished:
        info = episodes.infostates        # [N] learner information states (-1: inactive)
        obs = episodes.observations       # [N, T] information-state tensors
        mask = episodes.legal_mask        # [N, A]
        result = episodes.step(actions)   # learner acts in every active game
        # result.done / result.rewards: episodes that ended after this action; those
        # games were reset to new episodes (auto-reset) and are again at a learner node.

After :meth:`reset` and after every :meth:`step`, every *active* game stands at a
decision node of the learner. Episodes that end without the learner ever acting (possible
in some games, not in poker) are played out inside the simulation; they are counted and
reported in :attr:`last_terminals` / :attr:`last_returns` but produce no learner step.

With ``max_episodes`` set, no episode is started once that many have been started, and
games whose episode ends after that become inactive: exactly ``max_episodes`` episodes
are played.
"""

from __future__ import annotations


import numpy as np

from fusion_psro.errors import (
    ConfigError,
    GameNotSupportedError,
    InvalidMetaStrategyError,
    InvalidPlayerError,
    InvalidPolicyError,
)
from fusion_psro.games.compiled import CHANCE, TERMINAL, CompiledGame
from fusion_psro.games.episodes import StepResult
from fusion_psro.validation import validate_meta_strategy, validate_policy


class VectorizedEpisodes:
    """``num_envs`` episodes of ``compiled`` played at once; see the module docstring.

    An :class:`~fusion_psro.games.episodes.EpisodeSource`.

    Parameters
    ----------
    compiled:
        The game.
    learner:
        The player whose actions are passed to :meth:`step` (0 or 1).
    opponent_population:
        ``[K, I_opp, A]`` (or ``[I_opp, A]``) tabular policies of the other player.
    opponent_weights:
        ``[K]`` meta-strategy over the population (default: the single member).
    num_envs:
        Number of games played side by side.
    seed:
        Seed of the :class:`numpy.random.Generator` for every draw (opponent members,
        chance outcomes, opponent actions), or a Generator to use directly.
    max_episodes:
        Stop starting episodes after this many (None: never stop).
    """

    def __init__(
        self,
        compiled: CompiledGame,
        learner: int,
        opponent_population,
        opponent_weights=None,
        *,
        num_envs: int = 256,
        seed: int | np.random.Generator | None = 0,
        max_episodes: int | None = None,
    ) -> None:
        if learner not in (0, 1):
            raise InvalidPlayerError(f"learner must be 0 or 1, got {learner!r}")
        if not isinstance(num_envs, (int, np.integer)) or num_envs <= 0:
            raise ConfigError(f"num_envs must be a positive integer, got {num_envs!r}")
        if max_episodes is not None and (not isinstance(max_episodes, (int, np.integer)) or max_episodes < 0):
            raise ConfigError(f"max_episodes must be a non-negative integer or None, got {max_episodes!r}")
        opponent = 1 - learner
        population = validate_policy(compiled, opponent, opponent_population, name="opponent population")
        if population.ndim == 2:
            population = population[None]
        if opponent_weights is None:
            if population.shape[0] != 1:
                raise InvalidMetaStrategyError("opponent_weights is required for a population of more than one policy")
            opponent_weights = np.ones(1)
        weights = validate_meta_strategy(opponent_weights, population.shape[0], player=opponent)

        self.compiled = compiled
        self.learner = int(learner)
        self.num_envs = int(num_envs)
        self.max_episodes = None if max_episodes is None else int(max_episodes)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        info = compiled.players[self.learner]
        self._tensors = info.tensors
        self._legal_mask = info.legal_mask
        self._node_player = compiled.node_player.astype(np.int64)
        self._node_infostate = compiled.node_infostate.astype(np.int64)
        self._children = compiled.children.astype(np.int64)
        self._learner_returns = compiled.returns[:, self.learner].copy()
        # "Where the simulation must stop": a learner decision or a terminal history.
        self._stops = (self._node_player == self.learner) | (self._node_player == TERMINAL)

        # Chance: cumulative outcome distributions, one row per chance history.
        chance = np.flatnonzero(self._node_player == CHANCE)
        self._chance_row = np.full(compiled.num_histories, -1, dtype=np.int64)
        self._chance_row[chance] = np.arange(chance.size)
        kids = self._children[chance]
        probs = np.where(kids >= 0, compiled.edge_chance_prob[np.maximum(kids, 0)], 0.0)
        self._chance_cdf = np.cumsum(probs, axis=1)
        # Opponent: cumulative action distributions of every member, [K, I_opp, A].
        self._opponent_cdf = np.cumsum(population, axis=2)
        self._member_cdf = np.cumsum(weights)

        self.history = np.zeros(self.num_envs, dtype=np.int64)
        self.member = np.zeros(self.num_envs, dtype=np.int64)
        self.active = np.zeros(self.num_envs, dtype=bool)
        self.episodes_started = 0
        self.episodes_completed = 0
        self.learner_steps = 0
        #: Terminal histories / learner returns of every episode completed during the
        #: most recent :meth:`reset` or :meth:`step` call (learner-less episodes included).
        self.last_terminals = np.zeros(0, dtype=np.int64)
        self.last_returns = np.zeros(0)

    # ------------------------------------------------------------------ sampling helpers

    @staticmethod
    def _inverse_cdf(cdf: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """Index drawn from each row of ``cdf`` (unnormalised cumulative sums) by ``uniform``.

        The first index whose cumulative sum exceeds ``u * total``: zero-probability
        entries are never chosen, and rounding in the cumulative sum cannot push the
        draw past the last positive entry.
        """
        return np.argmax(cdf > (uniform * cdf[:, -1])[:, None], axis=1)

    def _start_episodes(self, games: np.ndarray) -> None:
        """Reset ``games`` to the root with a fresh opponent member, or deactivate them."""
        if self.max_episodes is not None:
            room = max(self.max_episodes - self.episodes_started, 0)
            if games.size > room:
                self.active[games[room:]] = False
                games = games[:room]
        self.episodes_started += int(games.size)
        self.active[games] = True
        self.history[games] = 0
        uniform = self.rng.random(games.size)
        self.member[games] = np.argmax(self._member_cdf[None, :] > (uniform * self._member_cdf[-1])[:, None], axis=1)

    def _advance(self, games: np.ndarray) -> None:
        """Play chance and opponent moves in ``games`` until each stops (learner or terminal)."""
        moving = games[~self._stops[self.history[games]]]
        while moving.size:
            h = self.history[moving]
            uniform = self.rng.random(moving.size)
            nxt = np.empty(moving.size, dtype=np.int64)
            is_chance = self._node_player[h] == CHANCE
            if is_chance.any():
                hc = h[is_chance]
                outcome = self._inverse_cdf(self._chance_cdf[self._chance_row[hc]], uniform[is_chance])
                nxt[is_chance] = self._children[hc, outcome]
            is_opp = ~is_chance
            if is_opp.any():
                ho = h[is_opp]
                cdf = self._opponent_cdf[self.member[moving[is_opp]], self._node_infostate[ho]]
                action = self._inverse_cdf(cdf, uniform[is_opp])
                nxt[is_opp] = self._children[ho, action]
            self.history[moving] = nxt
            moving = moving[~self._stops[nxt]]

    def _settle(self, games: np.ndarray, terminals: list, returns: list) -> None:
        """Advance freshly reset ``games``; replay any that end before the learner acts."""
        while games.size:
            self._advance(games)
            ended = games[self._node_player[self.history[games]] == TERMINAL]
            if ended.size:
                h = self.history[ended]
                terminals.append(h)
                returns.append(self._learner_returns[h])
                self.episodes_completed += int(ended.size)
                self._start_episodes(ended)
            games = ended[self.active[ended]]

    # ------------------------------------------------------------------ public API

    def reset(self) -> None:
        """Start new episodes in every game (counters are kept)."""
        self.active[:] = False
        terminals: list = []
        returns: list = []
        games = np.arange(self.num_envs)
        self._start_episodes(games)
        self._settle(games[self.active], terminals, returns)
        self._finish_call(terminals, returns)

    def _finish_call(self, terminals: list, returns: list) -> None:
        self.last_terminals = np.concatenate(terminals) if terminals else np.zeros(0, dtype=np.int64)
        self.last_returns = np.concatenate(returns) if returns else np.zeros(0)

    @property
    def finished(self) -> bool:
        """No game is active (only possible with ``max_episodes``)."""
        return not self.active.any()

    @property
    def infostates(self) -> np.ndarray:
        """``int64[N]`` learner information state of each game, -1 for inactive games."""
        return np.where(self.active, self._node_infostate[self.history], -1)

    @property
    def observations(self) -> np.ndarray:
        """``float32[N, T]`` learner information-state tensors (row 0's for inactive games)."""
        if self._tensors is None:
            raise GameNotSupportedError(f"{self.compiled.game_string} provides no information-state tensors")
        return self._tensors[np.maximum(self.infostates, 0)]

    @property
    def legal_mask(self) -> np.ndarray:
        """``bool[N, A]`` legal actions of each game (row 0's for inactive games)."""
        return self._legal_mask[np.maximum(self.infostates, 0)]

    def _illegal_action_message(self, games: np.ndarray, chosen: np.ndarray) -> str:
        num_actions = self._legal_mask.shape[1]
        in_range = (chosen >= 0) & (chosen < num_actions)
        infostates = self._node_infostate[self.history[games]]
        legal = np.zeros(chosen.shape, dtype=bool)
        legal[in_range] = self._legal_mask[infostates[in_range], chosen[in_range]]
        first = int(np.flatnonzero(~legal)[0])
        row = int(infostates[first])
        return (
            f"step() was given the illegal action {int(chosen[first])} for game {int(games[first])}, at "
            f"information state {row} ({self.compiled.players[self.learner].keys[row]!r}); legal actions "
            f"there: {np.flatnonzero(self._legal_mask[row]).tolist()}"
        )

    def step(self, actions) -> StepResult:
        """Apply the learner's ``actions`` (``int[N]``; entries of inactive games are ignored).

        Raises :class:`InvalidPolicyError` if an active game is given an illegal action.
        """
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise InvalidPolicyError(f"actions must have shape ({self.num_envs},), got {actions.shape}")
        acted = self.active.copy()
        games = np.flatnonzero(acted)
        h = self.history[games]
        chosen = actions[games].astype(np.int64)
        if chosen.size and (
            chosen.min() < 0
            or chosen.max() >= self._legal_mask.shape[1]
            or not self._legal_mask[self._node_infostate[h], chosen].all()
        ):
            raise InvalidPolicyError(self._illegal_action_message(games, chosen))
        self.history[games] = self._children[h, chosen]
        self.learner_steps += int(games.size)
        self._advance(games)

        final = self.history[games]
        ended = games[self._node_player[final] == TERMINAL]
        done = np.zeros(self.num_envs, dtype=bool)
        done[ended] = True
        terminals = np.full(self.num_envs, -1, dtype=np.int64)
        rewards = np.zeros(self.num_envs)
        terminals[ended] = self.history[ended]
        rewards[ended] = self._learner_returns[self.history[ended]]
        self.episodes_completed += int(ended.size)

        all_terminals = [terminals[ended]]
        all_returns = [rewards[ended]]
        self._start_episodes(ended)
        self._settle(ended[self.active[ended]], all_terminals, all_returns)
        self._finish_call(all_terminals, all_returns)
        return StepResult(acted=acted, done=done, rewards=rewards, terminals=terminals)
