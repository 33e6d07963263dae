"""Episodes of a compiled game as tensors on a torch device, for many jobs at once.

:class:`TensorEpisodes` is the torch counterpart of
:class:`~fusion_psro.games.simulation.VectorizedEpisodes` with a leading *job* axis: ``J``
independent jobs, each a learner (player 0 or 1) against its own frozen opponent mixture,
each playing ``E`` games side by side. Every state lives on one device (the CPU or a GPU)
and a step is a fixed sequence of tensor operations over all ``J * E`` games; nothing
leaves the device unless asked for (``finished``, ``last_returns``, the action check).

The state of a game is its history index in the :class:`~fusion_psro.games.CompiledGame`.
A step is the learner's move, then a fixed number of *passes* (computed from the game tree)
in which every game at a chance or opponent node makes one move, drawn by inverse-CDF
sampling from per-history tables, and every game at a terminal starts its next episode at
once: at the first decision of a draw from the root's chance play (the chance moves before
it folded into one distribution), with an opponent member drawn from the job's weights,
which the opponent follows to the end of the episode (the mixture PSRO's meta-strategy
describes). Jobs may have different learners and different population sizes: populations
are padded with zero-weight members, which are never drawn.

The protocol::

    episodes = TensorEpisodes(compiled, [EpisodeJob(0, pop0, w0), EpisodeJob(1, pop1, w1)],
                              num_envs=1024, device="cuda", seed=0)
    episodes.reset()                            # every active game at a learner decision
    while not episodes.finished:
        ids = episodes.infostates               # [J, E] learner information states (-1: inactive)
        obs = episodes.observations()           # [J, E, T] information-state tensors
        mask = episodes.legal_mask()            # [J, E, A]
        result = episodes.step(actions)         # actions: [J, E]; the learners act everywhere
        # result.done / result.rewards: [J, E], episodes ended after this action; those
        # games were reset (auto-reset), or made inactive once the job's max_episodes started.

Information states are numbered per player (``compiled.players[p]``), so ``infostates[j]``
is in the numbering of job ``j``'s learner. Observations are the learner's OpenSpiel
information-state tensors; where the two players' tensor sizes differ (no game in OpenSpiel
does this), the shorter ones are padded with zeros to the longer size ``T``.

Randomness: one :class:`torch.Generator` on the device draws everything, as one stream
over the whole ``[J, E]`` batch. The same seed, jobs, ``num_envs`` and learner actions give
the same episodes; a job's episodes are independent of the other jobs' (every draw is a
fresh uniform) and have the same distribution whatever ``J``, but the exact stream a job
sees depends on ``J`` and its position among the jobs.

:class:`RandomPlay` is the benchmark mode: both seats take uniformly random legal actions,
chance plays its distribution, and finished games restart at once; it only counts episodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from fusion_psro.errors import (
    ConfigError,
    GameNotSupportedError,
    InvalidMetaStrategyError,
    InvalidPlayerError,
    InvalidPolicyError,
)
from fusion_psro.games.compiled import CHANCE, TERMINAL, CompiledGame
from fusion_psro.validation import validate_meta_strategy, validate_policy

#: ``max_episodes`` of a job without a limit.
_UNLIMITED = 2**62
#: A pass's code of a history where it restarts the episode (terminal) or waits (the learner's
#: decision); codes from ``_ROW0`` on are rows of the sampling table (two empty rows first).
_END, _STOP, _ROW0 = 0, 1, 2


@dataclasses.dataclass(frozen=True, eq=False)
class EpisodeJob:
    """One learner against one frozen opponent mixture (one best-response training).

    Attributes
    ----------
    learner:
        The player whose actions are passed to :meth:`TensorEpisodes.step` (0 or 1).
    opponent_population:
        ``[K, I_opp, A]`` (or ``[I_opp, A]``) tabular behaviour policies of the other player.
    opponent_weights:
        ``[K]`` meta-strategy over the population (default: the single member).
    max_episodes:
        Episodes to play in all for this job (None: no end).
    """

    learner: int
    opponent_population: object
    opponent_weights: object = None
    max_episodes: int | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class TensorStepResult:
    """Outcome of one :meth:`TensorEpisodes.step`, tensors over ``[J, E]`` on the device.

    ``acted``: the game was active and the learner's action was applied. ``done``: the
    learner's episode ended after its action (the game was since reset, or made inactive).
    ``rewards`` (float32): the learner's return where ``done``, else 0. ``terminals``
    (int64): the terminal history reached where ``done``, else -1.
    """

    acted: torch.Tensor
    done: torch.Tensor
    rewards: torch.Tensor
    terminals: torch.Tensor


def _closed_cdf(probs: np.ndarray) -> np.ndarray:
    """Row-wise cumulative sums of normalised ``probs`` (float32), +inf from each row's last
    positive entry on, so that ``(cdf <= u).sum(-1)`` for ``u`` in [0, 1) never picks a
    zero-probability entry, whatever the rounding. Rows without mass pick entry 0."""
    probs = np.asarray(probs, dtype=np.float64)
    total = probs.sum(axis=-1, keepdims=True)
    cdf = np.cumsum(probs / np.where(total > 0, total, 1.0), axis=-1)
    positive = probs > 0
    last = np.where(positive.any(axis=-1), probs.shape[-1] - 1 - np.argmax(positive[..., ::-1], axis=-1), 0)
    cdf[np.arange(probs.shape[-1]) >= last[..., None]] = np.inf
    return cdf.astype(np.float32)


def _chance_probs(compiled: CompiledGame, width: int) -> np.ndarray:
    """``[H, width]``: outcome probabilities at chance histories (zero rows elsewhere)."""
    children = compiled.children.astype(np.int64)
    probs = np.where(children >= 0, compiled.edge_chance_prob[np.maximum(children, 0)], 0.0)
    probs[compiled.node_player != CHANCE] = 0.0
    return np.pad(probs, ((0, 0), (0, width - probs.shape[1])))


def _moves_to_stop(compiled: CompiledGame, stop: np.ndarray) -> np.ndarray:
    """Per history, the most moves any path takes from it to the first ``stop`` history."""
    children = compiled.children.astype(np.int64)
    moves = np.zeros(compiled.num_histories, dtype=np.int64)
    order = np.argsort(compiled.depth, kind="stable")[::-1]  # children before parents
    for depth in np.unique(compiled.depth)[::-1]:
        rows = order[compiled.depth[order] == depth]
        rows = rows[~stop[rows]]
        kids = children[rows]
        moves[rows] = 1 + np.where(kids >= 0, moves[np.maximum(kids, 0)], -1).max(axis=1)
    return moves


def _per_history_tables(compiled: CompiledGame) -> tuple[np.ndarray, np.ndarray | None]:
    """Legal mask ``[H, A]`` and information-state tensor ``[H, T]`` of the player acting at
    each history (False / zero rows at chance and terminal histories; tensors None if the
    game provides none)."""
    legal = np.zeros((compiled.num_histories, compiled.num_actions), dtype=bool)
    players = [info for info in compiled.players]
    has_tensors = all(info.tensors is not None for info in players)
    width = max(info.tensors.shape[1] for info in players) if has_tensors else 0
    tensors = np.zeros((compiled.num_histories, width), dtype=np.float32) if has_tensors else None
    for player, info in enumerate(players):
        rows = np.flatnonzero(compiled.node_player == player)
        legal[rows] = info.legal_mask[compiled.node_infostate[rows]]
        if has_tensors:
            tensors[rows, : info.tensors.shape[1]] = info.tensors[compiled.node_infostate[rows]]
    return legal, tensors


def _check_job(compiled: CompiledGame, index: int, job) -> tuple[int, np.ndarray, np.ndarray, int]:
    """A job's learner, population ``[K, I_opp, A]``, weights ``[K]`` and episode limit."""
    if not isinstance(job, EpisodeJob):
        raise ConfigError(f"jobs[{index}] must be an EpisodeJob, got {type(job).__name__}")
    if job.learner not in (0, 1):
        raise InvalidPlayerError(f"jobs[{index}]: learner must be 0 or 1, got {job.learner!r}")
    limit = job.max_episodes
    if limit is not None and (not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 0):
        raise ConfigError(f"jobs[{index}]: max_episodes must be a non-negative integer or None, got {limit!r}")
    opponent = 1 - job.learner
    population = job.opponent_population
    if isinstance(population, torch.Tensor):
        population = population.detach().cpu().numpy()
    population = validate_policy(compiled, opponent, population, name=f"jobs[{index}] opponent population")
    population = population[None] if population.ndim == 2 else population
    weights = job.opponent_weights
    if weights is None:
        if population.shape[0] != 1:
            raise InvalidMetaStrategyError(
                f"jobs[{index}]: opponent_weights is required for a population of more than one policy")
        weights = np.ones(1)
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().numpy()
    weights = validate_meta_strategy(weights, population.shape[0], name=f"jobs[{index}] opponent weights")
    return int(job.learner), population, weights, _UNLIMITED if limit is None else int(limit)


def _rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a 2-D ``table``: ``index_select`` (advanced indexing of rows is far
    slower on the CPU)."""
    return table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[1])


def _generator(seed, device: torch.device) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        if seed.device.type != device.type:
            raise ConfigError(f"the generator is on {seed.device}, the episodes on {device}; pass one on {device}")
        return seed
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer or a torch.Generator, got {seed!r}")
    return torch.Generator(device=device).manual_seed(int(seed))


def _device(device) -> torch.device:
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} needs CUDA, which this machine (or this PyTorch build) does not have")
    return parsed


class TensorEpisodes:
    """``J`` jobs of ``num_envs`` games each, played at once on ``device``; see the module docstring.

    Parameters
    ----------
    compiled:
        The game.
    jobs:
        The :class:`EpisodeJob` s (at least one).
    num_envs:
        Games per job, ``E``.
    device:
        Where every tensor lives (``"cpu"``, ``"cuda"``, a :class:`torch.device`).
    seed:
        Seed of the :class:`torch.Generator` for every draw, or a Generator on ``device``.
    check_actions:
        Refuse illegal learner actions (one host synchronisation per step); off, an
        illegal action moves a game to an undefined history.
    """

    def __init__(self, compiled: CompiledGame, jobs: Sequence[EpisodeJob], *, num_envs: int = 256,
                 device: str | torch.device = "cpu", seed: int | torch.Generator = 0,
                 check_actions: bool = True) -> None:
        if not isinstance(jobs, Sequence) or not jobs:
            raise ConfigError(f"jobs must be a non-empty sequence of EpisodeJob, got {jobs!r}")
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs <= 0:
            raise ConfigError(f"num_envs must be a positive integer, got {num_envs!r}")
        checked = [_check_job(compiled, index, job) for index, job in enumerate(jobs)]
        self.compiled = compiled
        self.device = _device(device)
        self.generator = _generator(seed, self.device)
        self.num_jobs = len(checked)
        self.num_envs = int(num_envs)
        self.check_actions = bool(check_actions)
        self._build_game_tables(compiled)
        self._build_job_tables(compiled, checked)
        self._build_state()

    # ------------------------------------------------------------------ construction

    def _tensor(self, array, dtype=None) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=self.device)

    def _build_game_tables(self, compiled: CompiledGame) -> None:
        """Per-history tables shared by every job."""
        num_histories = compiled.num_histories
        self._width = int(compiled.children.shape[1])
        self._node_infostate = self._tensor(compiled.node_infostate, torch.int64)
        self._children = self._tensor(np.maximum(compiled.children, 0).reshape(-1), torch.int64)
        legal, tensors = _per_history_tables(compiled)
        self._legal = self._tensor(legal)
        self._legal_flat = self._legal.reshape(-1)
        self._obs = None if tensors is None else self._tensor(tensors)
        # An episode starts at a draw from the root's chance play (the first decision reached).
        landing = _landings(compiled).get(0, {0: 1.0})
        self._start_histories = self._tensor(list(landing), torch.int64)
        self._start_cdf = self._tensor(_closed_cdf(np.array(list(landing.values()))))
        # Indexed by learner * H + history: what a pass does there (_STOP at the learner's
        # decisions, _END at terminals, else its sampling row: _ROW0 + the history at chance,
        # _ROW0 + H + the information state at the opponent's decisions, to which the game's
        # offset is added), and the learner's return.
        player = compiled.node_player
        kinds = []
        for p in (0, 1):
            kind = _ROW0 + np.where(player == CHANCE, np.arange(num_histories), num_histories + compiled.node_infostate)
            kinds.append(np.where(player == p, _STOP, np.where(player == TERMINAL, _END, kind)))
        self._kind = self._tensor(np.concatenate(kinds), torch.int64)
        self._returns = self._tensor(np.concatenate([compiled.returns[:, p] for p in (0, 1)]), torch.float32)
        self._passes = {p: self._pass_counts(compiled, p, list(landing)) for p in (0, 1)}
        self._num_histories = num_histories

    @staticmethod
    def _pass_counts(compiled: CompiledGame, player: int, starts: list[int]) -> tuple[int, int, bool]:
        """Passes that bring every game of learner ``player`` to its next decision after a reset
        and after a learner action (moves to a terminal, one to restart, moves from the start),
        and whether an episode can end without a decision of ``player`` (then more passes run
        until every game has stopped)."""
        stop = (compiled.node_player == player) | (compiled.node_player == TERMINAL)
        moves = _moves_to_stop(compiled, stop)
        kids = compiled.children[compiled.node_player == player].astype(np.int64)
        after = int(np.where(kids >= 0, moves[np.maximum(kids, 0)], 0).max(initial=0))
        from_start = int(moves[starts].max())
        learnerless = TensorEpisodes._terminal_reachable_without(compiled, player)
        return from_start, after + 1 + from_start, learnerless

    @staticmethod
    def _first_decision(compiled: CompiledGame, player: int) -> int:
        decisions = np.flatnonzero(compiled.node_player == player)
        if not decisions.size:
            raise GameNotSupportedError(f"{compiled.game_string}: player {player} never acts, so cannot learn")
        return int(decisions[0])

    @staticmethod
    def _terminal_reachable_without(compiled: CompiledGame, player: int) -> bool:
        """Whether some terminal is reachable from the root without a decision of ``player``."""
        reach = np.zeros(compiled.num_histories, dtype=bool)
        reach[0] = True
        for depth in np.unique(compiled.depth)[1:]:
            rows = np.flatnonzero(compiled.depth == depth)
            parents = compiled.parent[rows]
            reach[rows] = reach[parents] & (compiled.node_player[parents] != player)
        return bool(reach[compiled.node_player == TERMINAL].any())

    def _build_job_tables(self, compiled: CompiledGame, checked: list) -> None:
        """Sampling tables: rows ``[0, H)`` chance distributions by history, then one row per
        (job, member, opponent information state) of the opponents' action distributions."""
        num_members = max(population.shape[0] for _, population, _, _ in checked)
        num_rows = max(info.num_infostates for info in compiled.players)
        width, num_actions = self._width, compiled.num_actions
        opponents = np.zeros((self.num_jobs, num_members, num_rows, width))
        weights = np.zeros((self.num_jobs, num_members))
        for j, (learner, population, job_weights, _) in enumerate(checked):
            opponents[j, : population.shape[0], : population.shape[1], :num_actions] = population
            weights[j, : population.shape[0]] = job_weights
        rows = np.concatenate([np.zeros((_ROW0, width)), _chance_probs(compiled, width), opponents.reshape(-1, width)])
        self._cdf = self._tensor(_closed_cdf(rows))
        self._member_cdf = self._tensor(_closed_cdf(weights))
        self._member_rows = num_rows
        learners = np.array([learner for learner, _, _, _ in checked])
        self.learners = self._tensor(learners, torch.int64)
        self.max_episodes = tuple(None if limit == _UNLIMITED else limit for _, _, _, limit in checked)
        self._limits = self._tensor([limit for _, _, _, limit in checked], torch.int64)
        self._limited = any(limit is not None for limit in self.max_episodes)
        shape = (self.num_jobs, self.num_envs)
        per_game = np.broadcast_to(np.arange(self.num_jobs)[:, None], shape)
        self._job_of_game = self._tensor(per_game, torch.int64)
        self._learner_base = self._tensor(learners[per_game] * compiled.num_histories, torch.int64)
        # A game's opponent rows start at H + its offset (job and member); see _offsets.
        self._job_offset = self._tensor(np.arange(self.num_jobs)[:, None] * num_members * num_rows, torch.int64)
        # Inactive games wait at a decision of their learner, where no pass moves them.
        park = np.array([self._first_decision(compiled, p) for p in learners])
        self._park = self._tensor(np.broadcast_to(park[:, None], shape), torch.int64)
        used = sorted(set(learners.tolist()))
        self._reset_passes = max(self._passes[p][0] for p in used)
        self._step_passes = max(self._passes[p][1] for p in used)
        self._loop_until_stopped = any(self._passes[p][2] for p in used)

    def _build_state(self) -> None:
        shape = (self.num_jobs, self.num_envs)
        zeros = torch.zeros(self.num_jobs, dtype=torch.int64, device=self.device)
        self.history = self._park.clone()
        self._offset = self._job_offset.expand(shape).clone()
        self.active = torch.zeros(shape, dtype=torch.bool, device=self.device)
        #: Per job: episodes started, episodes ended, learner decisions made (int64 [J]).
        self.episodes_started = zeros.clone()
        self.episodes_completed = zeros.clone()
        self.learner_steps = zeros.clone()
        self._ended: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._completed_before = zeros.clone()

    # ------------------------------------------------------------------ simulation

    @property
    def member(self) -> torch.Tensor:
        """``int64[J, E]``: the opponent member each game's episode follows."""
        return (self._offset - self._job_offset) // self._member_rows

    def _draws(self, passes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per pass and game, a uniform for the move (``[passes, J, E]``); per game, a start
        history and an opponent offset (member) for a new episode (``[J, E]``, fresh per
        pass where an episode can end without a learner decision, then ``[passes, J, E]``:
        otherwise a game starts at most one episode in a call)."""
        shape = (self.num_jobs, self.num_envs)
        uniforms = torch.rand(passes, *shape, generator=self.generator, device=self.device)
        starts = passes if self._loop_until_stopped else 1
        rand = torch.rand(2, self.num_jobs, starts * self.num_envs, generator=self.generator, device=self.device)
        histories = self._start_histories[torch.searchsorted(self._start_cdf, rand[0], right=True)]
        offsets = self._job_offset + torch.searchsorted(self._member_cdf, rand[1], right=True) * self._member_rows
        if starts == 1:
            return uniforms, histories.expand(passes, *shape), offsets.expand(passes, *shape)
        per_pass = (self.num_jobs, starts, self.num_envs)
        return uniforms, histories.view(per_pass).transpose(0, 1), offsets.view(per_pass).transpose(0, 1)

    def _pass(self, history, uniform, start_history, start_offset, first_end):
        """One pass: every game at a chance or opponent node moves; every game at a terminal
        starts a new episode (within its job's limit) at ``start_history``; learners wait."""
        kind = self._kind[self._learner_base + history]
        ended = kind == _END
        row = torch.where(kind >= _ROW0 + self._num_histories, kind + self._offset, kind)
        slot = (_rows(self._cdf, row) <= uniform[..., None]).sum(dim=-1)
        moved = torch.where(kind >= _ROW0, self._children[history * self._width + slot], history)
        self._ended.append((ended, history))
        if first_end is not None:
            done, terminals = first_end
            first_end = (done | ended, torch.where(ended & ~done, history, terminals))
        start = ended
        if self._limited:
            start = ended & (torch.cumsum(ended, dim=1) <= (self._limits - self.episodes_started)[:, None])
            self.episodes_started += start.sum(dim=1)
            self.active &= ~(ended & ~start)
            start_history = torch.where(start, start_history, self._park)
        self._offset = torch.where(start, start_offset, self._offset)
        return torch.where(ended, start_history, moved), first_end

    def _settle(self, history: torch.Tensor, passes: int, first_end=None):
        """Play every game on to its next stop: ``passes`` fixed passes, then (in games with
        episodes that end without a learner decision) more until every game has stopped."""
        uniforms, starts, offsets = self._draws(passes)
        for index in range(passes):
            history, first_end = self._pass(history, uniforms[index], starts[index], offsets[index], first_end)
        while self._loop_until_stopped:
            kind = self._kind[self._learner_base + history]
            if not bool(((kind >= _ROW0) | (kind == _END)).any()):
                break
            uniforms, starts, offsets = self._draws(1)
            history, first_end = self._pass(history, uniforms[0], starts[0], offsets[0], first_end)
        self.history = history
        if self._ended:
            ended = torch.stack([mask for mask, _ in self._ended]).sum(dim=(0, 2))
            self.episodes_completed += ended
            if not self._limited:
                self.episodes_started += ended
        return first_end

    # ------------------------------------------------------------------ public API

    def reset(self) -> None:
        """Start new episodes in every game of every job (counters are kept)."""
        self._begin_call()
        start = torch.ones_like(self.active)
        if self._limited:
            start = torch.cumsum(start, dim=1) <= (self._limits - self.episodes_started)[:, None]
        self.active = start
        self.episodes_started += start.sum(dim=1)
        _, starts, offsets = self._draws(1)
        self._offset = offsets[0]
        self._settle(torch.where(start, starts[0], self._park), self._reset_passes)

    @property
    def finished(self) -> bool:
        """No game of any job is active (only possible with every job's ``max_episodes`` set)."""
        return not bool(self.active.any())

    @property
    def jobs_finished(self) -> torch.Tensor:
        """``bool[J]``: the job has no active game."""
        return ~self.active.any(dim=1)

    @property
    def infostates(self) -> torch.Tensor:
        """``int64[J, E]`` learner information state of each game (per-player numbering), -1 if inactive."""
        return torch.where(self.active, self._node_infostate[self.history], -1)

    def observations(self) -> torch.Tensor:
        """``float32[J, E, T]`` learner information-state tensors (those of a fixed learner
        information state for inactive games)."""
        if self._obs is None:
            raise GameNotSupportedError(f"{self.compiled.game_string} provides no information-state tensors")
        return _rows(self._obs, self.history)

    def legal_mask(self) -> torch.Tensor:
        """``bool[J, E, A]`` legal learner actions (those of a fixed learner information state
        for inactive games, so every row has a legal action)."""
        return _rows(self._legal, self.history)

    def _begin_call(self) -> None:
        self._ended = []
        self._completed_before = self.episodes_completed.clone()

    @property
    def last_completed(self) -> torch.Tensor:
        """``int64[J]`` episodes each job ended during the last :meth:`reset` or :meth:`step`."""
        return self.episodes_completed - self._completed_before

    def last_returns_by_job(self) -> list[np.ndarray]:
        """Per job, :attr:`last_returns` of its episodes, on the host (float64)."""
        jobs, returns = self.last_jobs.cpu().numpy(), self.last_returns.double().cpu().numpy()
        return [returns[jobs == j] for j in range(self.num_jobs)]

    @property
    def last_terminals(self) -> torch.Tensor:
        """``int64[n]`` terminal histories of every episode that ended during the last
        :meth:`reset` or :meth:`step` (episodes without a learner decision included)."""
        return self._last(lambda ended, history: history[ended], torch.int64)

    @property
    def last_jobs(self) -> torch.Tensor:
        """``int64[n]`` the job of each entry of :attr:`last_terminals` / :attr:`last_returns`."""
        return self._last(lambda ended, history: self._job_of_game[ended], torch.int64)

    @property
    def last_returns(self) -> torch.Tensor:
        """``float32[n]`` learner returns of the episodes of :attr:`last_terminals`."""
        return self._last(lambda ended, history: self._returns[(self._learner_base + history)[ended]], torch.float32)

    def _last(self, pick, dtype: torch.dtype) -> torch.Tensor:
        parts = [pick(ended, history) for ended, history in self._ended]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype, device=self.device)

    def _illegal_action_message(self, actions: torch.Tensor, bad: torch.Tensor) -> str:
        job, game = (int(i) for i in torch.nonzero(bad)[0])
        learner = int(self.learners[job])
        history = int(self.history[job, game])
        row = int(self.compiled.node_infostate[history])
        legal = np.flatnonzero(self.compiled.players[learner].legal_mask[row]).tolist()
        return (f"step() was given the illegal action {int(actions[job, game])} for job {job}, game {game} "
                f"(learner {learner}), at information state {row} "
                f"({self.compiled.players[learner].keys[row]!r}); legal actions there: {legal}")

    def step(self, actions: torch.Tensor) -> TensorStepResult:
        """Apply the learners' ``actions`` (``int[J, E]``; entries of inactive games are
        ignored) and play every game on to its learner's next decision.

        Raises :class:`InvalidPolicyError` (with ``check_actions``) if an active game is given
        an illegal action.
        """
        actions = torch.as_tensor(actions, device=self.device)
        shape = (self.num_jobs, self.num_envs)
        if tuple(actions.shape) != shape or actions.dtype.is_floating_point or actions.dtype == torch.bool:
            raise InvalidPolicyError(f"actions must be an integer tensor of shape {shape}, got "
                                     f"{actions.dtype} {tuple(actions.shape)}")
        actions = actions.long()
        num_actions = self.compiled.num_actions
        clamped = actions.clamp(0, num_actions - 1)
        if self.check_actions:
            legal = self._legal_flat[self.history * num_actions + clamped] & (actions == clamped)
            bad = self.active & ~legal
            if bool(bad.any()):
                raise InvalidPolicyError(self._illegal_action_message(actions, bad))
        self._begin_call()
        acted = self.active.clone()
        self.learner_steps += acted.sum(dim=1)
        history = torch.where(acted, self._children[self.history * self._width + clamped], self.history)
        first_end = (torch.zeros_like(acted), torch.full_like(history, -1))
        done, terminals = self._settle(history, self._step_passes, first_end)
        rewards = torch.where(done, self._returns[self._learner_base + terminals.clamp(min=0)], 0.0)
        return TensorStepResult(acted=acted, done=done, rewards=rewards, terminals=terminals)


def _landings(compiled: CompiledGame) -> dict[int, dict[int, float]]:
    """For every chance history, the distribution of the first non-chance history that chance
    play reaches from it (a decision or a terminal)."""
    children = compiled.children
    landing: dict[int, dict[int, float]] = {}
    for h in np.flatnonzero(compiled.node_player == CHANCE)[::-1]:  # children first (pre-order)
        outcome: dict[int, float] = {}
        for child in children[h][children[h] >= 0].tolist():
            p = float(compiled.edge_chance_prob[child])
            for end, q in landing.get(child, {child: 1.0}).items():
                outcome[end] = outcome.get(end, 0.0) + p * q
        landing[int(h)] = outcome
    return landing


def _random_play_transitions(compiled: CompiledGame) -> tuple[list[int], list[list[tuple[int, float]]], list]:
    """Decision histories; per decision row, the distribution of what a uniformly random legal
    action followed by chance play leads to, coded ``next_row * 2`` (a decision) or ``1``
    (the episode ended); and the distribution of the first decision row from the root."""
    decisions = np.flatnonzero((compiled.node_player == 0) | (compiled.node_player == 1))
    row_of = {int(h): row for row, h in enumerate(decisions.tolist())}
    landing = _landings(compiled)

    def reach(h: int) -> dict[int, float]:
        return landing.get(h, {h: 1.0})

    restart = reach(0)
    if any(compiled.node_player[h] == TERMINAL for h in restart):
        raise GameNotSupportedError(f"{compiled.game_string}: an episode can end without a decision; "
                                    "random play needs a decision in every episode")
    rows = []
    for h in decisions.tolist():
        legal = np.flatnonzero(compiled.players[compiled.node_player[h]].legal_mask[compiled.node_infostate[h]])
        outcome: dict[int, float] = {}
        for action in legal.tolist():
            for end, p in reach(int(compiled.children[h, action])).items():
                code = 1 if compiled.node_player[end] == TERMINAL else row_of[end] * 2
                outcome[code] = outcome.get(code, 0.0) + p / legal.size
        rows.append(list(outcome.items()))
    return decisions.tolist(), rows, [(row_of[h] * 2, p) for h, p in restart.items()]


def _alias_tables(rows: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias tables of discrete distributions: ``[R, W]`` acceptance probabilities and
    ``[R, W, 2]`` codes (kept, alias). Slot ``k`` drawn uniformly, then kept with its
    probability, else its alias: exactly each row's distribution."""
    width = max(len(row) for row in rows)
    accept = np.ones((len(rows), width))
    codes = np.zeros((len(rows), width, 2), dtype=np.int64)
    for r, row in enumerate(rows):
        values = [code for code, _ in row] + [row[0][0]] * (width - len(row))
        scaled = [p * width for _, p in row] + [0.0] * (width - len(row))
        codes[r, :, 0] = codes[r, :, 1] = values
        small = [k for k, x in enumerate(scaled) if x < 1.0]
        large = [k for k, x in enumerate(scaled) if x >= 1.0]
        while small and large:
            k, big = small.pop(), large[-1]
            accept[r, k], codes[r, k, 1] = scaled[k], values[big]
            scaled[big] -= 1.0 - scaled[k]
            if scaled[big] < 1.0:
                small.append(large.pop())
    return accept, codes


class RandomPlay:
    """``num_envs`` games of ``compiled`` in which every player takes uniformly random legal
    actions and chance plays its distribution; a game that ends restarts at once.

    A benchmark of vectorized play, one *player decision* per game and pass (the step of
    pgx's environments, which deal chance outcomes inside ``init`` and ``step``): the state of
    a game is its decision history; a pass draws, in every game, what a uniformly random legal
    action followed by chance play leads to (the next decision history, or the end of the
    episode) from a Walker alias table precomputed per decision history, and games whose
    episode ended restart at a decision drawn from the root's chance play. No Python loop
    over games; a handful of tensor operations per pass (with ``compile``, fused by
    :func:`torch.compile` into one kernel per block of passes).
    """

    #: Passes whose random draws are made at once.
    BLOCK = 32

    def __init__(self, compiled: CompiledGame, *, num_envs: int, device: str | torch.device = "cpu",
                 seed: int | torch.Generator = 0, compile: bool = False) -> None:
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs <= 0:
            raise ConfigError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.device = _device(device)
        self.generator = _generator(seed, self.device)
        self.num_envs = int(num_envs)
        # torch.compile fuses a block of passes into one kernel (a C++ compiler, or Triton on
        # CUDA, is needed; the first call compiles). Same draws, same results as eager.
        self._compiled_passes = torch.compile(_random_play_passes, dynamic=False) if compile else _random_play_passes
        self.decisions, rows, start = _random_play_transitions(compiled)
        accept, codes = _alias_tables(rows)
        self._width = accept.shape[1]
        # A game's state is its row times the width; codes give the next state * 2 + ended.
        self._accept = torch.as_tensor(accept.reshape(-1), device=self.device)
        self._codes = torch.as_tensor(((codes >> 1) * self._width * 2 + (codes & 1)).reshape(-1), device=self.device)
        accept, codes = _alias_tables([start])
        self._start = (torch.as_tensor(accept.reshape(-1), device=self.device),
                       torch.as_tensor((codes >> 1).reshape(-1) * self._width, device=self.device), accept.shape[1])
        self.state = self._restarts((self.num_envs,))
        self._completed = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def _uniform_slots(self, shape: tuple, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Alias-table draws: a slot in ``[0, width)`` and an independent uniform fraction."""
        scaled = torch.rand(shape, generator=self.generator, device=self.device, dtype=torch.float64) * width
        slots = scaled.long()
        return slots, scaled - slots

    def _restarts(self, shape: tuple) -> torch.Tensor:
        """First decision states of new episodes (the root's chance play), ``int64[shape]``."""
        accept, codes, width = self._start
        slots, fractions = self._uniform_slots(shape, width)
        return codes[slots * 2 + (fractions >= accept[slots])]

    @property
    def histories(self) -> torch.Tensor:
        """``int64[num_envs]``: the decision history each game stands at."""
        return torch.as_tensor(self.decisions, device=self.device)[self.state // self._width]

    @property
    def episodes_completed(self) -> int:
        """Episodes ended so far, in all games."""
        return int(self._completed.sum())

    def run(self, passes: int) -> None:
        """Make ``passes`` decisions in every game (asynchronously on a GPU)."""
        state, completed = self.state, self._completed
        for first in range(0, passes, self.BLOCK):
            block = (min(self.BLOCK, passes - first), self.num_envs)
            slots, fractions = self._uniform_slots(block, self._width)
            draws = (slots, fractions, self._restarts(block))
            play = self._compiled_passes if block[0] == self.BLOCK else _random_play_passes
            state, completed = play(state, completed, *draws, self._codes, self._accept)
        self.state, self._completed = state, completed


def _random_play_passes(state, completed, slots, fractions, restarts, codes, accept):
    """One pass of :class:`RandomPlay` per row of the draws ``slots``, ``fractions``, ``restarts``."""
    for index in range(slots.shape[0]):
        entry = state + slots[index]
        code = codes[entry * 2 + (fractions[index] >= accept[entry])]
        ended = code & 1
        completed = completed + ended
        state = (code >> 1) + ended * restarts[index]
    return state, completed


__all__ = ["EpisodeJob", "RandomPlay", "TensorEpisodes", "TensorStepResult"]
