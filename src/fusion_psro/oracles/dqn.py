"""A DQN best-response oracle trained on vectorized episodes of the compiled game.

The learner is a Q-network over the game's information-state tensors (one output per
distinct action), trained against the opponent's meta-strategy mixture by
:class:`~fusion_psro.games.simulation.VectorizedEpisodes`, which plays ``num_envs``
episodes at once with table lookups instead of OpenSpiel states. The algorithm mirrors
OpenSpiel's PyTorch DQN (``open_spiel.python.pytorch.dqn.DQN``):

* epsilon-greedy acting over the legal actions (greedy ties go to the lowest action);
* a uniform replay buffer of the last ``replay_capacity`` transitions, minibatches of
  ``batch_size`` distinct transitions (sampled without replacement, as OpenSpiel does);
* target ``y = r + discount * max_{a' legal} Q_target(s', a')`` with ``y = r`` at the
  end of an episode; the illegal actions of ``s'`` are masked out of the max;
* MSE loss (OpenSpiel's default; ``loss="huber"`` available), Adam, optional gradient
  norm clipping (off by default, as in OpenSpiel);
* the returned policy is the network's greedy policy, computed for every information
  state of the player in one batched forward pass.

Parts of a training run
-----------------------
One best response is one :class:`_Training` run, collection and learning kept apart:

* :meth:`_Training._collect` makes one batched step: epsilon-greedy actions in every
  active game, their rewards (plus a diversity bonus), the transitions into the
  :class:`_Replay` buffer;
* :class:`_UpdateSchedule` turns the agent steps of that batched step into a number of
  update attempts (OpenSpiel's counting, below); :meth:`_Training._learn` draws their
  minibatches and hands them to the :class:`_Learner`, which holds the Q-network, the
  target network (:class:`_TargetNetwork`, with its cache) and the optimizer
  (``update(batch)``, ``sync_target()``); the TD target is written once, in
  :meth:`_Learner.td_target`;
* :class:`_DiversityBonus` and :class:`_Snapshots` carry a diversity term (next section);
* after each batched step, the request's hooks: ``on_progress(done, total)`` and, when the
  completed episodes first reach a budget of ``request.checkpoints``,
  ``on_checkpoint(budget, snapshot)`` with the greedy policy, a copy of the parameters and
  the metrics so far (budgets reached before training are reported before it).

Diversity terms (DPP-, BD&RD- and PSD-PSRO)
-------------------------------------------
``request.diversity`` enters through the term's tabular form
(:meth:`~fusion_psro.oracles.diversity.DiversityMeasure.for_tabular`; the formulas of each
term are in :mod:`fusion_psro.oracles.diversity`), in up to two ways:

* its *per-decision* part (BD&RD's behavioural diversity, PSD's distance to the hull of the
  population) is shaped into the reward: each learner decision ``(s, a)`` gets
  ``weight * bonus[s, a]``, the bonus table computed for the learner's current
  epsilon-greedy policy and recomputed whenever the target network syncs. The bonus's
  expectation under that policy is the term, so Q-learning ascends return plus the
  weighted term;
* its *whole-policy* part (DPP's expected cardinality, BD&RD's response diversity) is a
  function of the whole policy, not of single decisions, so it cannot be shaped into the
  reward. For it the oracle keeps ``diversity_candidates`` snapshots of the network taken
  at even intervals of training (the last one is the final network) and returns the
  snapshot with the highest ``value + weight * score``, both computed exactly by the
  engine (the score sees the snapshot's greedy policy and, for behaviour, its
  epsilon-greedy one). This optimizes the diversified objective over the training path
  rather than by its gradient; with weight 0 it returns the final network, as plain PSRO
  does.

Update counting (what ``learn_every`` and ``target_update_every`` mean)
-----------------------------------------------------------------------
OpenSpiel's agent counts *agent steps*: one per ``agent.step`` call, that is one per
learner decision plus one at the end of every episode (the terminal time step every
agent sees), and attempts one gradient update every ``learn_every`` agent steps; an
attempt does nothing while the buffer holds fewer than ``max(batch_size,
min_replay_before_learning)`` transitions. Here one batched step makes one decision in
each of the ``N`` active games and ends some episodes, so it adds ``N + episodes ended``
agent steps; after it, the oracle makes as many update attempts as the running total of
agent steps has crossed multiples of ``learn_every``; in the batched step during which the
buffer first reaches the learning threshold, only the share of those attempts that falls
after the threshold (in proportion to the transitions added) is made. The number of
gradient updates per episode is therefore OpenSpiel's rule applied to the same counts
(to within one update at the end of warm-up).
What differs is the interleaving: a batched step acts with one network for all ``N``
games, adds all ``N`` transitions, then runs its updates (about ``1.4 N / learn_every``
on Leduc), where OpenSpiel alternates one decision and, every tenth step, one update.

``target_update_every`` counts *gradient updates*: after every ``target_update_every``
updates the target network becomes a copy of the online network. (OpenSpiel counts this
period in agent steps and blends with ``weight_update_coeff``; ``update_target_network_every
= target_update_every * learn_every`` with a coefficient of 1 is the same schedule.)

Random numbers
--------------
Everything derives from ``request.seed``, split into two streams: one for the episodes
(opponent members, chance, opponent actions) and one for the learner, which draws, per
batched step, one uniform per active game (explore or not), then one per game and action
(the random legal action), then the minibatches of that step's updates. Nothing else draws
from them, so the same seed gives bit-identical results on the CPU.

Computation shortcuts (same mathematics as OpenSpiel's update, fewer FLOPs)
--------------------------------------------------------------------------
* The replay buffer stores information-state *ids*; observations and legal masks are
  gathered from the compiled tables, so a transition is five scalars.
* The target network is fixed between syncs, so when the player has at most
  ``target_update_every * batch_size`` information states, ``max_a' Q_target(s', a')``
  is computed for all of them once per sync and looked up per update.
* On the CPU the online network is evaluated on the *distinct* information states of a
  minibatch only (typically far fewer than ``batch_size``) and the Q-values are gathered;
  loss and gradients are those of the full minibatch.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pyspiel
import torch
from torch import nn
from torch.nn import functional as F

from fusion_psro import options
from fusion_psro.errors import ConfigError, GameNotSupportedError, OracleError
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.games.play_statistics import sample_play
from fusion_psro.games.sampled import load_sampled_game
from fusion_psro.evaluation import action_values, mixture_behaviour, mixture_plan
from fusion_psro.oracles.episode_sources import CompiledSource, DeviceTable, SampledSource
from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, DiversityMetrics, StateDict
from fusion_psro.oracles.diversity import DiverseSnapshots, TabularDiversity, measure_for
from fusion_psro.oracles.dqn_vectorized import JobsTraining
from fusion_psro.oracles.network_oracle import NetworkOracle
from fusion_psro.oracles.networks import (
    MLP,
    adam,
    check_device,
    check_network_size,
    fit_network,
    greedy_policy,
    resolve_device,
    torch_threads,
)
from fusion_psro.policies import uniform_policy
from fusion_psro.registry import register_oracle

LOSSES = ("mse", "huber")


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Every hyperparameter of the DQN oracle (defaults: the Fusion-PSRO paper's).

    Attributes
    ----------
    hidden_sizes:
        Widths of the hidden layers of the ReLU MLP Q-network.
    learning_rate:
        Adam step size. A fresh Adam optimizer is built for every best response.
    replay_capacity:
        Transitions kept in the replay buffer (oldest overwritten first).
    batch_size:
        Transitions per gradient update, sampled uniformly without replacement.
    discount:
        Discount factor of the TD target.
    epsilon:
        Exploration rate, held constant for the whole run (no decay schedule): with
        probability ``epsilon`` a uniformly random legal action, else the greedy one.
    learn_every:
        One gradient update is attempted every ``learn_every`` agent steps (learner
        decisions plus one per finished episode), as in OpenSpiel; see the module
        docstring.
    target_update_every:
        The target network is synced to the online network every this many gradient
        updates.
    min_replay_before_learning:
        No update happens while the buffer holds fewer than ``max(batch_size, this)``
        transitions (OpenSpiel's ``min_buffer_size_to_learn``).
    episodes:
        Training episodes per best response (exactly this many are played).
    num_envs:
        Episodes played side by side.
    loss:
        ``"mse"`` (OpenSpiel's default) or ``"huber"`` (smooth L1 with ``huber_delta``).
    huber_delta:
        Transition point of the Huber loss.
    gradient_clipping:
        Max global gradient norm, or None for no clipping.
    device:
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    torch_threads:
        Intra-op CPU threads while the oracle runs (default 1); None: the number of CPUs
        this process may use. One thread is the default because updates of this size gain
        little from more, and on a machine whose cores are busy (parallel seeds, Ray
        workers) oversubscribed threads made updates 40-100x slower. The previous setting
        is restored afterwards.
    diversity_candidates:
        DPP- and BD&RD-PSRO: snapshots of the network, evenly spaced over training, among
        which the one with the best diversified objective is returned (module docstring).
    """

    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    learning_rate: float = 5e-3
    replay_capacity: int = 10_000
    batch_size: int = 512
    discount: float = 1.0
    epsilon: float = 0.05
    learn_every: int = 10
    target_update_every: int = 5
    min_replay_before_learning: int = 1000
    episodes: int = 20_000
    num_envs: int = 256
    loss: str = "mse"
    huber_delta: float = 1.0
    gradient_clipping: float | None = None
    device: str = "auto"
    torch_threads: int | None = 1
    diversity_candidates: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", options.int_tuple(self.hidden_sizes, "DQNConfig.hidden_sizes"))
        for name in ("replay_capacity", "batch_size", "learn_every", "target_update_every", "num_envs",
                     "diversity_candidates"):
            options.positive_int(getattr(self, name), f"DQNConfig.{name}")
        for name in ("episodes", "min_replay_before_learning"):
            options.non_negative_int(getattr(self, name), f"DQNConfig.{name}")
        if max(self.batch_size, self.min_replay_before_learning) > self.replay_capacity:
            raise ConfigError(
                "DQNConfig.batch_size and min_replay_before_learning cannot exceed replay_capacity "
                "(the buffer would never hold enough transitions to learn)"
            )
        options.probability(self.epsilon, "DQNConfig.epsilon")
        options.probability(self.discount, "DQNConfig.discount")
        options.non_negative_float(self.learning_rate, "DQNConfig.learning_rate")
        options.positive_float(self.huber_delta, "DQNConfig.huber_delta")
        options.positive_float(self.gradient_clipping, "DQNConfig.gradient_clipping", optional=True)
        options.choice(self.loss, "DQNConfig.loss", LOSSES)
        options.positive_int(self.torch_threads, "DQNConfig.torch_threads", optional=True)
        check_device(self.device, "DQNConfig")


@dataclasses.dataclass
class DQNMetrics(DiversityMetrics):
    """The DQN oracle's numbers for one best response.

    Attributes
    ----------
    mean_return_last_1000:
        Mean learner return of the last 1,000 training episodes (epsilon-greedy play of a
        moving policy; NaN without episodes).
    updates:
        Gradient updates made.
    train_s:
        Seconds of training: acting, replay and updates.
    learner_steps:
        Learner decisions made.
    agent_steps:
        OpenSpiel's agent steps: learner decisions plus one per finished episode (what
        ``learn_every`` counts; module docstring).
    updates_per_episode:
        ``updates`` per completed episode.
    mean_rows_per_update:
        Information states the online network evaluated per update (the distinct ones of
        the minibatch on the CPU, ``batch_size`` elsewhere).
    final_loss:
        Loss of the last update (NaN without updates).
    device:
        Where training ran (``"cpu"``, ``"cuda:0"``...).

    The fields of a diversity term follow (:class:`~fusion_psro.oracles.base.DiversityMetrics`).
    """

    mean_return_last_1000: float
    updates: int
    train_s: float
    learner_steps: int
    agent_steps: int
    updates_per_episode: float
    mean_rows_per_update: float
    final_loss: float
    device: str

    @property
    def training_return(self) -> float:
        """The training return of the response (the paper's Appendix C metric): :attr:`mean_return_last_1000`."""
        return self.mean_return_last_1000


class _Batch(NamedTuple):
    """A minibatch of transitions, on the device."""

    ids: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_ids: torch.Tensor
    done: torch.Tensor


class _Replay:
    """Ring buffer of transitions stored as information-state ids, preallocated on the device."""

    def __init__(self, capacity: int, device: torch.device) -> None:
        self.capacity = capacity
        self.info = torch.zeros(capacity, dtype=torch.long, device=device)
        self.action = torch.zeros(capacity, dtype=torch.long, device=device)
        self.next_info = torch.zeros(capacity, dtype=torch.long, device=device)
        self.reward = torch.zeros(capacity, dtype=torch.float32, device=device)
        self.done = torch.zeros(capacity, dtype=torch.bool, device=device)
        self.device = device
        self.size = 0
        self.position = 0

    def add(self, info, action, reward, next_info, done) -> None:
        count = len(info)
        if count > self.capacity:  # only the newest `capacity` survive anyway
            info, action, reward, next_info, done = (x[-self.capacity:] for x in (info, action, reward, next_info, done))
            count = self.capacity
        slots = torch.from_numpy((self.position + np.arange(count)) % self.capacity).to(self.device)
        ints = torch.from_numpy(np.stack([info, action, next_info]).astype(np.int64)).to(self.device)
        self.info.index_copy_(0, slots, ints[0])
        self.action.index_copy_(0, slots, ints[1])
        self.next_info.index_copy_(0, slots, ints[2])
        self.reward.index_copy_(0, slots, torch.from_numpy(np.asarray(reward, dtype=np.float32)).to(self.device))
        self.done.index_copy_(0, slots, torch.from_numpy(np.asarray(done, dtype=bool)).to(self.device))
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def batch(self, sample: torch.Tensor) -> _Batch:
        """The transitions at the slots ``sample``."""
        return _Batch(self.info[sample], self.action[sample], self.reward[sample], self.next_info[sample],
                      self.done[sample])


class _TargetNetwork:
    """The target network, and its cache of ``max_{a' legal} Q_target(s', a')``.

    The network is fixed between syncs, so where the player has at most
    ``target_update_every * batch_size`` information states (or, in sampled play, has
    seen so few) the maxima of all of them are computed once per sync and looked up
    (rows added since are tabulated when first needed); otherwise they are computed per
    minibatch, on the CPU on its distinct states only (module docstring).
    """

    def __init__(self, online: MLP, config: DQNConfig, table: DeviceTable) -> None:
        self.network = copy.deepcopy(online)
        self.network.requires_grad_(False)
        self.config, self.table = config, table
        self._distinct_rows_only = table.observations.device.type == "cpu"
        self._tabulated = self._few_states()
        self._max = self._maxima() if self._tabulated else None

    def _few_states(self) -> bool:
        return self.table.observations.shape[0] <= self.config.target_update_every * self.config.batch_size

    def sync(self, online: MLP) -> None:
        """Become a copy of the online network."""
        self.network.load_state_dict(online.state_dict())
        if self.table.grows:  # sampled play: tabulate while the states seen are few
            self._tabulated = self._few_states()
        if self._tabulated:
            self._max = self._maxima()

    def table_changed(self, renumbered: bool) -> None:
        """The information states' rows changed (sampled play); ``renumbered``: existing rows moved."""
        if self._tabulated and (renumbered or self._max is None):
            self._max = self._maxima()

    def max_q(self, next_ids: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """``max_{a' legal} Q_target(s', a')`` at ``next_ids`` (meaningless where ``done``)."""
        observations, legal = self.table.observations, self.table.legal
        if self._tabulated:
            if self._max.shape[0] < observations.shape[0]:  # rows added since the sync
                self._max = torch.cat([self._max, self._maxima(self._max.shape[0])])
            return self._max[next_ids]
        if self.table.grows and self._distinct_rows_only:
            # Sampled play: the target network on the distinct states that did not end an episode only.
            values = torch.zeros(next_ids.shape, dtype=torch.float32, device=next_ids.device)
            distinct, inverse = torch.unique(next_ids[~done], return_inverse=True)
            with torch.no_grad():
                q = self.network(observations[distinct]).masked_fill(~legal[distinct], torch.finfo(torch.float32).min)
            values[~done] = q.max(dim=1).values[inverse]
            return values
        with torch.no_grad():
            q = self.network(observations[next_ids]).masked_fill(~legal[next_ids], torch.finfo(torch.float32).min)
            return q.max(dim=1).values

    def _maxima(self, first: int = 0) -> torch.Tensor:
        observations, legal = self.table.observations[first:], self.table.legal[first:]
        with torch.no_grad():
            q = self.network(observations).masked_fill(~legal, torch.finfo(torch.float32).min)
            return q.max(dim=1).values


class _Learner:
    """The Q-network being trained, its target network and its optimizer.

    :meth:`update` makes one TD update towards :meth:`td_target` and syncs the target every
    ``target_update_every`` updates; the learner counts its updates, the network rows they
    evaluated and the last loss, for the metrics.
    """

    def __init__(self, network: MLP, config: DQNConfig, table: DeviceTable) -> None:
        self.network = network
        self.target = _TargetNetwork(network, config, table)
        self.optimizer = adam(network, config.learning_rate)
        self.config = config
        self.table = table
        self.observations = table.observations
        self.legal = table.legal
        self._distinct_rows_only = self.observations.device.type == "cpu"
        self.updates = 0
        self.forward_rows = 0
        self.last_loss: torch.Tensor | None = None

    def greedy_actions(self, ids: np.ndarray) -> np.ndarray:
        """The greedy legal action at each information state of ``ids`` (ties: lowest action)."""
        with torch.no_grad():
            ids_t = torch.from_numpy(ids).to(self.observations.device)
            q = self.network(self.observations[ids_t]).masked_fill(~self.legal[ids_t], -torch.inf)
            return q.argmax(dim=1).cpu().numpy()

    def greedy_policy(self) -> np.ndarray:
        """The one-hot greedy policy ``[I, A]`` of the online network."""
        return greedy_policy(self.network, self.observations, self.legal)

    def parameters(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the online network's parameters."""
        return {name: value.detach().cpu().clone() for name, value in self.network.state_dict().items()}

    def td_target(self, batch: _Batch) -> torch.Tensor:
        """``y = r + discount * max_{a' legal} Q_target(s', a')``, and ``y = r`` where the episode ended.

        The one place the target is written (OpenSpiel's DQN target; CleanRL's ``dqn.py``
        writes the same): a variant such as Double DQN changes this method only.
        ``self.target.max_q`` is the cached maximum; ``self.target.network`` is the network.
        """
        next_max = self.target.max_q(batch.next_ids, batch.done)
        return torch.where(batch.done, batch.rewards, batch.rewards + self.config.discount * next_max)

    def update(self, batch: _Batch) -> None:
        """One gradient step on the TD loss of ``batch``."""
        cfg = self.config
        targets = self.td_target(batch)
        loss = self._loss(self._q_values(batch.ids, batch.actions), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.gradient_clipping is not None:
            nn.utils.clip_grad_norm_(self.network.parameters(), cfg.gradient_clipping)
        self.optimizer.step()
        self.last_loss = loss.detach()
        self.updates += 1
        if self.updates % cfg.target_update_every == 0:
            self.sync_target()

    def sync_target(self) -> None:
        """Make the target network a copy of the online network."""
        self.target.sync(self.network)

    def table_changed(self) -> None:
        """Take the information states' new rows (sampled play: the table grew or was renumbered)."""
        renumbered = self.table.refresh()
        self.observations, self.legal = self.table.observations, self.table.legal
        self.target.table_changed(renumbered)

    def _loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "mse":
            return F.mse_loss(prediction, target)
        return F.smooth_l1_loss(prediction, target, beta=self.config.huber_delta)

    def _q_values(self, ids: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self._distinct_rows_only:
            distinct, inverse = torch.unique(ids, return_inverse=True)
            self.forward_rows += distinct.numel()
            return self.network(self.observations[distinct])[inverse, actions]
        self.forward_rows += self.config.batch_size
        return self.network(self.observations[ids]).gather(1, actions[:, None])[:, 0]


class _UpdateSchedule:
    """OpenSpiel's update counting applied to batched steps (module docstring)."""

    def __init__(self, learn_every: int, threshold: int, agent_steps: int) -> None:
        self.learn_every = learn_every
        #: Transitions the buffer must hold before updates start.
        self.threshold = threshold
        #: Learner decisions plus episode ends so far (episodes that ended before the
        #: learner's first decision included).
        self.agent_steps = agent_steps
        #: Transitions ever added to the buffer.
        self.stored = 0
        self._attempts_due = 0

    def attempts(self, decisions: int, episodes_ended: int) -> int:
        """Update attempts to make after a batched step that stored ``decisions`` transitions."""
        stored_before, self.stored = self.stored, self.stored + decisions
        self.agent_steps += decisions + episodes_ended
        due = self.agent_steps // self.learn_every
        attempts, self._attempts_due = due - self._attempts_due, due
        if stored_before < self.threshold:
            # Warm-up ends inside this batched step: OpenSpiel would make only the
            # attempts that come after its buffer reached the threshold.
            share = max(self.stored - self.threshold, 0) / (self.stored - stored_before)
            attempts = round(attempts * share)
        return attempts


class _DiversityBonus:
    """The per-decision part of a diversity term as a reward bonus ``weight * table[s, a]``.

    The table is that of the learner's epsilon-greedy policy; it is recomputed for the
    current policy once ``refresh_every`` updates have been made since the last time (at
    the target syncs).
    """

    def __init__(self, bonus_table: Callable[[np.ndarray], np.ndarray], weight: float,
                 exploring_policy: Callable[[], np.ndarray], refresh_every: int) -> None:
        self._bonus_table = bonus_table
        self._exploring_policy = exploring_policy
        self._weight = weight
        self._refresh_every = refresh_every
        self._table = bonus_table(exploring_policy())
        self._refreshed_at = 0
        self._total = 0.0
        self._count = 0

    def __call__(self, ids: np.ndarray, actions: np.ndarray, updates: int) -> np.ndarray:
        """The bonus of each decision ``(ids[n], actions[n])`` after ``updates`` updates."""
        if updates - self._refreshed_at >= self._refresh_every:
            self._table = self._bonus_table(self._exploring_policy())
            self._refreshed_at = updates
        bonus = self._weight * self._table[ids, actions]
        self._total += float(bonus.sum())
        self._count += bonus.size
        return bonus

    @property
    def mean(self) -> float:
        """Mean bonus per decision so far."""
        return self._total / max(self._count, 1)


def epsilon_greedy(compiled: CompiledGame, player: int, greedy: np.ndarray, epsilon: float) -> np.ndarray:
    """``(1 - epsilon) * greedy + epsilon * uniform``: the policy a learner acts by."""
    return (1.0 - epsilon) * greedy + epsilon * uniform_policy(compiled, player)


class _Training:
    """One best response's DQN training run; see the module docstring."""

    def __init__(self, oracle: DQNOracle, request: BestResponseRequest, device: torch.device) -> None:
        self.config = cfg = oracle.config
        self.compiled, self.request, self.device = oracle.compiled, request, device
        self.source = oracle.source
        self.player = request.player
        env_seed, agent_seed = np.random.SeedSequence(int(request.seed)).spawn(2)
        self.rng = np.random.default_rng(agent_seed)
        self.episodes = self.source.episodes(request, num_envs=cfg.num_envs, rng=np.random.default_rng(env_seed),
                                             max_episodes=cfg.episodes)
        #: The learner's information states: ``tensors`` and ``legal_mask`` by id.
        self.info = self.source.table(self.episodes, request.player)
        self.table = DeviceTable(self.info, device)
        self.learner = _Learner(oracle.initial_network(request).to(device), cfg, self.table)
        self.replay = _Replay(cfg.replay_capacity, device)
        #: Sampled play: compact the table of information states past this many rows.
        self._table_limit = 2 * (2 * cfg.replay_capacity + cfg.num_envs)
        self.diversity = self._tabular_diversity()
        self.bonus = self._diversity_bonus()
        selects = self.diversity is not None and self.diversity.score is not None
        self.snapshots = DiverseSnapshots(oracle.compiled, request, self.diversity, cfg.episodes,
                                          cfg.diversity_candidates) if selects else None
        self._actions = np.zeros(cfg.num_envs, dtype=np.int64)  # entries of inactive games are ignored
        self._checkpoints = list(request.checkpoints)  # budgets not reached yet, ascending
        self._hooks_s = 0.0

    # ------------------------------------------------------------------ diversity

    def _tabular_diversity(self) -> TabularDiversity | None:
        term = self.request.diversity
        if term is None or not term.weight > 0:
            return None
        return term.measure.for_tabular(self.compiled, self.player, term)

    def _diversity_bonus(self) -> _DiversityBonus | None:
        if self.diversity is None or self.diversity.bonus_table is None:
            return None
        return _DiversityBonus(self.diversity.bonus_table, self.request.diversity.weight,
                               lambda: self._exploring(self.learner.greedy_policy()), self.config.target_update_every)

    def _exploring(self, greedy: np.ndarray) -> np.ndarray:
        """The epsilon-greedy policy of a learner whose greedy policy is ``greedy``."""
        return epsilon_greedy(self.compiled, self.player, greedy, self.config.epsilon)

    # ------------------------------------------------------------------ the run

    def run(self) -> BestResponseResult:
        """Train for ``config.episodes`` episodes; the final (or best diversified) greedy policy."""
        cfg, episodes = self.config, self.episodes
        started = time.perf_counter()
        episodes.reset()
        if self.table.grows:
            self.learner.table_changed()
        self.returns = [episodes.last_returns]
        threshold = max(cfg.batch_size, cfg.min_replay_before_learning)
        self.schedule = _UpdateSchedule(cfg.learn_every, threshold, agent_steps=episodes.last_terminals.size)
        self._call_hooks(started, progress=False)
        while not episodes.finished:
            decisions, ended = self._collect()
            self._learn(self.schedule.attempts(decisions, ended))
            # The final network joins the snapshots after the loop.
            if self.snapshots is not None and not episodes.finished and self.snapshots.due(episodes.episodes_completed):
                self.snapshots.add(self.learner.greedy_policy(), self.learner.parameters())
            self._call_hooks(started, progress=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return self._result(time.perf_counter() - started - self._hooks_s)

    def _collect(self) -> tuple[int, int]:
        """One batched step; returns the learner decisions made and the episodes that ended."""
        episodes = self.episodes
        ids_all = episodes.infostates
        games = np.flatnonzero(ids_all >= 0)
        ids = ids_all[games]
        chosen = self._act(ids)
        self._actions[games] = chosen
        result = episodes.step(self._actions)
        done = result.done[games]
        next_ids = np.where(done, 0, episodes.infostates[games])
        rewards = result.rewards[games]
        if self.bonus is not None:
            rewards = rewards + self.bonus(ids, chosen, self.learner.updates)
        self.replay.add(ids, chosen, rewards, next_ids, done)
        self.returns.append(episodes.last_returns)
        if self.table.grows:
            if self.info.size > self._table_limit:
                self._compact()
            self.learner.table_changed()
        return games.size, episodes.last_terminals.size

    def _compact(self) -> None:
        """Sampled play: keep only the information states the replay buffer and the games refer to."""
        replay, episodes = self.replay, self.episodes
        stored = torch.cat([replay.info[: replay.size], replay.next_info[: replay.size]]).cpu().numpy()
        current = episodes.infostates
        mapping = self.info.compact(np.concatenate([stored, current[current >= 0], [0]]))
        remap = torch.from_numpy(mapping).to(self.device)
        replay.info[: replay.size] = remap[replay.info[: replay.size]]
        replay.next_info[: replay.size] = remap[replay.next_info[: replay.size]]
        episodes.ids = np.maximum(mapping[np.maximum(episodes.ids, 0)], 0)

    def _act(self, ids: np.ndarray) -> np.ndarray:
        """Epsilon-greedy legal actions at ``ids``: one uniform per game, then one per game and action."""
        mask = self.info.legal_mask[ids]
        greedy = self.learner.greedy_actions(ids)
        explore = self.rng.random(ids.size) < self.config.epsilon
        random_legal = np.argmax(np.where(mask, self.rng.random(mask.shape), -1.0), axis=1)
        return np.where(explore, random_legal, greedy)

    def _learn(self, attempts: int) -> None:
        """Draw the minibatches of ``attempts`` updates, then make the updates."""
        if not attempts:
            return
        size = self.config.batch_size
        samples = np.stack([self.rng.choice(self.replay.size, size, replace=False) for _ in range(attempts)])
        for sample in torch.from_numpy(samples).to(self.device):
            self.learner.update(self.replay.batch(sample))

    def _call_hooks(self, started: float, *, progress: bool) -> None:
        """The request's progress and checkpoint callbacks; their time is kept out of ``train_s``."""
        request, completed = self.request, self.episodes.episodes_completed
        hooks_started = time.perf_counter()
        if progress and request.on_progress is not None:
            request.on_progress(completed, self.config.episodes)
        while self._checkpoints and self._checkpoints[0] <= completed:
            request.on_checkpoint(self._checkpoints.pop(0), self._snapshot(hooks_started - started - self._hooks_s))
        self._hooks_s += time.perf_counter() - hooks_started

    # ------------------------------------------------------------------ results

    def _metrics(self, train_s: float) -> DQNMetrics:
        """The metrics of the run so far."""
        returns = np.concatenate(self.returns)
        learner, completed = self.learner, self.episodes.episodes_completed
        return DQNMetrics(
            mean_return_last_1000=float(returns[-1000:].mean()) if returns.size else float("nan"),
            updates=learner.updates,
            train_s=train_s,
            learner_steps=self.episodes.learner_steps,
            agent_steps=int(self.schedule.agent_steps),
            updates_per_episode=learner.updates / max(completed, 1),
            mean_rows_per_update=learner.forward_rows / max(learner.updates, 1),
            final_loss=float(learner.last_loss) if learner.last_loss is not None else float("nan"),
            device=str(self.device),
            diversity_bonus_mean=self.bonus.mean if self.bonus is not None else None,
        )

    def _snapshot(self, train_s: float) -> BestResponseResult:
        """The best response as it stands: its policy, a copy of the parameters, metrics so far."""
        parameters = self.learner.parameters()
        return BestResponseResult(policy=self.source.member_policy(self.learner.greedy_policy, parameters),
                                  parameters=parameters, episodes=self.episodes.episodes_completed,
                                  metrics=self._metrics(train_s))

    def _result(self, train_s: float) -> BestResponseResult:
        parameters = self.learner.parameters()
        policy = self.source.member_policy(self.learner.greedy_policy, parameters)
        metrics = self._metrics(train_s)
        if self.snapshots is not None:
            policy, parameters, metrics = self.snapshots.select(policy, parameters, metrics, self._exploring)
        return BestResponseResult(policy=policy, parameters=parameters, episodes=self.episodes.episodes_completed,
                                  metrics=metrics)


class DQNOracle(NetworkOracle):
    """Best responses by DQN on vectorized episodes; see the module docstring.

    Parameters
    ----------
    compiled:
        The game (must provide information-state tensors): a :class:`CompiledGame`
        (``tabular`` kind: episodes of the compiled game, members' policies are greedy
        tables), or a ``pyspiel.Game`` played from its states (``sampled`` kind,
        :class:`~fusion_psro.oracles.episode_sources.SampledSource`: members' policies are
        their networks, and the opponent population holds such policy vectors).
    config:
        Hyperparameters; default :class:`DQNConfig()`.
    """

    game_kinds = ("tabular", "sampled")
    optimizes_diversity = True
    settings_class = DQNConfig
    takes_checkpoints = True
    budget_setting = "episodes"
    distills = True
    network_kind = "Q-network"
    batches_responses = True

    def __init__(self, compiled: CompiledGame | pyspiel.Game, config: DQNConfig | None = None) -> None:
        self.config = config if config is not None else DQNConfig()
        if isinstance(compiled, pyspiel.Game):
            if not compiled.get_type().provides_information_state_tensor:
                load_sampled_game(str(compiled))  # raises: it names what is missing
            self.compiled = None
            self.source = SampledSource(compiled, lambda parameters: self.member_vector(self.config, parameters))
            self._check_network_sizes()
            return
        for p in range(2):
            if compiled.players[p].tensors is None:
                raise GameNotSupportedError(
                    f"{compiled.game_string} provides no information-state tensors; the DQN oracle needs them as "
                    "network inputs"
                )
        self.compiled = compiled
        self.source = CompiledSource(compiled)
        self._check_network_sizes()

    def _check_network_sizes(self) -> None:
        """Refuse, before any network is allocated, hidden sizes whose training would not fit in memory."""
        for p in range(2):
            check_network_size(self.source.input_size(p), self.config.hidden_sizes, self.source.num_actions(p),
                               "DQN oracle")

    @classmethod
    def from_space(cls, space, settings: DQNConfig | None) -> DQNOracle:
        # A space played by sampling offers its OpenSpiel game; a tabular one its compiled game.
        sampled = getattr(space, "sampled_game", None)
        return cls(sampled if sampled is not None else space.compiled, settings)

    def network_sizes(self, player: int) -> tuple[int, int]:
        return self.source.input_size(player), self.source.num_actions(player)

    def distill(self, player, parameters, population, weights, opponent_policies, opponent_weights, *, steps,
                learning_rate, sampled_games=None, seed=0) -> StateDict:
        """Q-values fitted (MSE) to the mixture's exact action values against the opponent mixture.

        At the information states chance and the opponent reach, ``Q(s, a)`` is fitted to
        ``E[return | s, a, then the mixture's behaviour]``; the other states have no
        condition to fit and keep their fresh values. With ``sampled_games``: to the mean
        return after each decision that many sampled games took (Monte Carlo returns), each
        weighted by how often it was taken; decisions never taken keep their fresh values.
        """
        if opponent_policies is None:
            raise OracleError("distilling a Q-network needs the opponent mixture it will face")
        compiled = self.compiled_game("distilling a Q-network to a mixture's action values")
        if sampled_games is None:
            behaviour = mixture_behaviour(compiled, player, population, weights)
            values = action_values(compiled, player, behaviour, mixture_plan(compiled, 1 - player, opponent_policies,
                                                                              opponent_weights))
            target, counts = torch.from_numpy(values.q).float(), None
            fitted = torch.from_numpy(compiled.players[player].legal_mask & (values.reach > 0)[:, None])
        else:
            play = sample_play(compiled, player, population, weights, opponent_policies, opponent_weights,
                               games=sampled_games, seed=seed)
            target, counts = torch.from_numpy(play.mean_returns()).float(), torch.from_numpy(play.action_counts).float()
            fitted = counts > 0

        def loss(q: torch.Tensor) -> torch.Tensor:
            if counts is not None:
                return (counts[fitted] * (q - target)[fitted] ** 2).sum() / counts[fitted].sum()
            return ((q - target)[fitted] ** 2).mean()

        with torch_threads(self.config.torch_threads):
            return fit_network(self.network(player, parameters), compiled.players[player].tensors, loss,
                               steps=steps, learning_rate=learning_rate)

    def greedy_policy(self, player: int, parameters: StateDict) -> np.ndarray:
        """Greedy tabular policy ``[I, A]`` of a Q-network with ``parameters``."""
        network = self.build_network(player)
        network.load_state_dict(parameters)
        info = self.compiled_game("a greedy table over every information state").players[player]
        return greedy_policy(network, torch.from_numpy(info.tensors), torch.from_numpy(info.legal_mask))

    def acting_policy(self, player: int, parameters: StateDict) -> np.ndarray | None:
        """The epsilon-greedy policy the Q-network acts by (None on sampled games, which have no table)."""
        if self.compiled is None:
            return None
        return epsilon_greedy(self.compiled, player, self.greedy_policy(player, parameters), self.config.epsilon)

    # ------------------------------------------------------------------ training

    def best_response(self, request: BestResponseRequest) -> BestResponseResult:
        """Train a Q-network against the opponent mixture; return its greedy policy.

        Starts from ``request.initial_parameters`` (the PSRO loop always passes them); if
        None, from ``scratch_parameters(player, "normal", request.seed)``. The target
        network starts as a copy of the initial network and the Adam optimizer is fresh.
        All randomness derives from ``request.seed``: on the CPU the same seed gives
        bit-identical parameters and policy.
        """
        if request.budget_spent:
            return self.spending(request.budget_spent).best_response(dataclasses.replace(request, budget_spent=0))
        cfg = self.config
        player = request.player
        if player not in (0, 1):
            raise OracleError(f"player must be 0 or 1, got {player!r}")
        if request.diversity is not None:
            measure_for(request.diversity, self.source.kind, "DQN")
        self.check_checkpoints(request, cfg.episodes)
        with torch_threads(cfg.torch_threads):
            return _Training(self, request, resolve_device(cfg.device)).run()

    def best_responses(self, requests: Sequence[BestResponseRequest], *,
                       device: str | None = None) -> list[BestResponseResult]:
        """The responses to many requests at once (the batched executor's call): the vectorized DQN.

        The requests train side by side as the jobs of one
        :class:`~fusion_psro.oracles.dqn_vectorized.JobsTraining` (those of both players
        together where the players' networks have the same shape; stacked networks, replay
        buffers and optimizer on the device; the update rule per job is
        :meth:`best_response`'s), each for its own budget (``episodes - budget_spent``),
        with its own opponent mixture, initial parameters, hooks and checkpoints. Not
        bit-identical to :meth:`best_response`: the random numbers are drawn for all jobs at
        once, so a result is a response of the same quality, not the same response.
        Requests with a diversity term, and every request of an oracle that plays sampled
        games, are trained one by one by :meth:`best_response`. ``device`` (``"cpu"``,
        ``"cuda"``, ``"auto"``) replaces the ``device`` setting for the vectorized training.
        Results come in the order of ``requests``.
        """
        if device is not None:
            check_device(device, "best_responses")
        results: list[BestResponseResult | None] = [None] * len(requests)
        groups: dict[tuple[int, int], list[int]] = {}
        for index, request in enumerate(requests):
            if self.compiled is None or request.diversity is not None:
                results[index] = self.best_response(request)
            else:
                groups.setdefault(self.network_sizes(self.check_player(request.player)), []).append(index)
        for indices in groups.values():
            for index, result in zip(indices, self._train_jobs([requests[i] for i in indices], device)):
                results[index] = result
        return results

    def _train_jobs(self, requests: list[BestResponseRequest], device: str | None) -> list[BestResponseResult]:
        """Requests whose networks have one shape, trained as the jobs of one vectorized training."""
        cfg = self.config
        budgets = []
        for request in requests:
            budget = self.spending(request.budget_spent).config.episodes
            self.check_checkpoints(request, budget)
            budgets.append(budget)
        initial = [self.initial_network(request).state_dict() for request in requests]
        with torch_threads(cfg.torch_threads):
            return JobsTraining(self.compiled, cfg, requests, initial, budgets, resolve_device(device or cfg.device),
                                DQNMetrics).run()


register_oracle("dqn", DQNOracle)
