"""Many DQN best responses trained at once: one tensor program over a leading job axis.

A *job* is one best-response request (of one run of a sweep, or one seed of a benchmark).
:class:`JobsTraining` trains ``J`` jobs side by side on one device; jobs of both players
train together when their networks have the same shape (the players' compiled tables are
stacked into one table, a job's information-state ids offset to its player's rows):

* :class:`StackedMLP` -- the ``J`` Q-networks, parameters stacked on a leading job axis
  (``[J, out, in]`` weights, ``[J, out]`` biases), evaluated by one batched matrix product
  per layer (:func:`torch.baddbmm`); a job's parameters go in and out as the state dict of
  today's :class:`~fusion_psro.oracles.networks.MLP` (``layers.{k}.weight`` / ``.bias``), so
  members, fusion and inherit see the networks they always saw;
* :class:`StackedReplay` -- the ``J`` replay buffers, ``[J, capacity]`` tensors on the
  device, with per-job insertion (ring buffers) and per-job minibatches of distinct
  transitions;
* :func:`td_target` -- OpenSpiel's TD target, the same three lines as
  :meth:`fusion_psro.oracles.dqn._Learner.td_target`, over ``[J, B]``;
* :class:`StackedAdam` -- one Adam over the stacked tensors that steps only the jobs whose
  update attempt is due (per-job step counts and bias corrections: for each job exactly
  :class:`torch.optim.Adam`'s rule);
* target networks synced per job, every ``target_update_every`` of *its* updates;
* epsilon-greedy acting over the legal masks of every job's games in one forward pass.

The update rule per job is today's DQN oracle's (:mod:`fusion_psro.oracles.dqn`), with
its :class:`~fusion_psro.oracles.dqn.DQNConfig` and semantics: one update attempt per
``learn_every`` agent steps (the job's learner decisions plus one per episode end; no
update before the job's buffer holds ``max(batch_size, min_replay_before_learning)``
transitions, with the share rule at the end of warm-up), minibatches of ``batch_size``
distinct transitions of the job's own buffer of ``replay_capacity``, target sync every
``target_update_every`` updates, Adam at ``learning_rate``, constant ``epsilon``. A batched
step adds the transitions of every job, then makes each job's due attempts: round ``r``
updates the jobs that have more than ``r`` attempts due (the others are masked: no
gradient, no Adam step, no count).

Not bit-identical to today's DQN: random numbers are drawn for all jobs at once, from one
stream for the episodes and one for the learners (both seeded from every job's seed, in
the jobs' order), so the episodes, explorations and minibatches differ from a job's single
run and depend on the other jobs of the call: a job reproduces only with the same jobs in
the same order (the batched executor hands them in by the runs' order in the batch). The
rule and its counts are the same.

Episodes are :class:`~fusion_psro.games.tensor_episodes.TensorEpisodes`: every job's
``num_envs`` games are tensors on the same device, an opponent member drawn per episode
from the job's meta-strategy (:class:`TensorJobEpisodes` adds what the training counts).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch.optim.adam import adam as functional_adam
from torch.nn import functional as F

from fusion_psro.games.compiled import CompiledGame
from fusion_psro.games.tensor_episodes import EpisodeJob, TensorEpisodes
from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, StateDict

# ---------------------------------------------------------------------------- networks


class StackedMLP:
    """``J`` ReLU MLPs of equal shape, parameters stacked on a leading job axis.

    ``weights[k]`` is ``[J, out_k, in_k]`` and ``biases[k]`` ``[J, out_k]``: layer ``k`` of
    every job. :meth:`forward` maps ``[J, B, in]`` to ``[J, B, actions]``.
    """

    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> None:
        self.weights, self.biases = weights, biases

    @classmethod
    def from_state_dicts(cls, states: Sequence[StateDict], device: torch.device) -> StackedMLP:
        """The stack of ``states`` (MLP state dicts of equal shapes), as trainable leaves on ``device``."""
        layers = len([name for name in states[0] if name.endswith(".weight")])

        def stack(name: str) -> torch.Tensor:
            return torch.stack([s[name].detach().float() for s in states]).to(device).requires_grad_(True)

        return cls([stack(f"layers.{k}.weight") for k in range(layers)],
                   [stack(f"layers.{k}.bias") for k in range(layers)])

    @property
    def jobs(self) -> int:
        return self.weights[0].shape[0]

    def parameters(self) -> list[torch.Tensor]:
        """Every stacked tensor, weights and biases layer by layer."""
        return [t for pair in zip(self.weights, self.biases) for t in pair]

    def forward(self, x: torch.Tensor, jobs: torch.Tensor | None = None) -> torch.Tensor:
        """``[J, B, in] -> [J, B, actions]``; with ``jobs`` (indices), only those jobs' networks."""
        last = len(self.weights) - 1
        for k, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            if jobs is not None:
                weight, bias = weight[jobs], bias[jobs]
            x = torch.baddbmm(bias[:, None, :], x, weight.transpose(1, 2))
            if k < last:
                x = F.relu(x)
        return x

    __call__ = forward

    def state_dict(self, job: int) -> dict[str, torch.Tensor]:
        """A CPU copy of job ``job``'s parameters, named as today's :class:`MLP`'s."""
        out = {}
        for k, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            out[f"layers.{k}.weight"] = weight[job].detach().cpu().clone()
            out[f"layers.{k}.bias"] = bias[job].detach().cpu().clone()
        return out

    def detached_copy(self) -> StackedMLP:
        """A copy holding no gradient (a target network)."""
        return StackedMLP([w.detach().clone() for w in self.weights], [b.detach().clone() for b in self.biases])

    def copy_jobs_from(self, other: StackedMLP, jobs: torch.Tensor) -> None:
        """Become ``other`` at the job indices ``jobs`` (a target sync)."""
        with torch.no_grad():
            for mine, theirs in zip(self.parameters(), other.parameters()):
                mine[jobs] = theirs[jobs].detach()


def _job_shape(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


class StackedAdam:
    """Adam (PyTorch's update rule and defaults) over stacked tensors, stepping only chosen jobs.

    Each job has its own step count, so it is stepped exactly as a :class:`torch.optim.Adam`
    of its own network would be; a job not stepped keeps its moments, step count and
    parameters. Two kernels, same rule:

    * ``per_job=True`` (the default on the CPU): every job's slice of a stacked tensor
      (``p[j]``, a view) is one parameter of PyTorch's fused functional Adam
      (:func:`torch.optim.adam.adam`), one call for all stepped jobs: a single pass over
      memory, but Python work per job and tensor;
    * ``per_job=False`` (the default elsewhere): a few element-wise operations on the stacked
      tensors with per-job scalars (a job not stepped gets moment weights and a step size of
      0): a number of kernels that does not grow with the jobs.
    """

    def __init__(self, parameters: list[torch.Tensor], learning_rate: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, per_job: bool | None = None) -> None:
        self.parameters = parameters
        self.learning_rate, self.betas, self.eps = learning_rate, betas, eps
        jobs, device = parameters[0].shape[0], parameters[0].device
        self.per_job = device.type == "cpu" if per_job is None else per_job
        self.m = [torch.zeros_like(p) for p in parameters]
        self.v = [torch.zeros_like(p) for p in parameters]
        self.steps = torch.zeros(jobs, dtype=torch.float64, device=device)
        if self.per_job:
            self._views = [[t[j] for t in parameters] for j in range(jobs)]
            self._m_views = [[t[j] for t in self.m] for j in range(jobs)]
            self._v_views = [[t[j] for t in self.v] for j in range(jobs)]
            self._job_steps = [[torch.zeros((), device=device) for _ in parameters] for _ in range(jobs)]

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], stepping: np.ndarray) -> None:
        """One Adam step with the stacked ``grads`` for the jobs where ``stepping`` (``bool[J]``)."""
        jobs = np.flatnonzero(stepping)
        if not jobs.size:
            return
        if self.per_job:
            self._step_per_job(grads, jobs)
        else:
            self._step_stacked(grads, torch.from_numpy(np.asarray(stepping)).to(self.steps.device))

    def _step_per_job(self, grads: list[torch.Tensor], jobs: np.ndarray) -> None:
        def pick(lists):
            return [x for j in jobs for x in lists[j]]

        grads = [g.contiguous() for g in grads]  # the fused kernel reads a gradient as laid out like its parameter
        job_grads = {j: [g[j] for g in grads] for j in jobs}
        functional_adam(pick(self._views), pick(job_grads), pick(self._m_views), pick(self._v_views), [],
                        pick(self._job_steps), fused=True, foreach=False, amsgrad=False, beta1=self.betas[0],
                        beta2=self.betas[1], lr=self.learning_rate, weight_decay=0.0, eps=self.eps, maximize=False)

    def _step_stacked(self, grads: list[torch.Tensor], stepping: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        on = stepping.to(torch.float64)
        self.steps += on
        t = self.steps.clamp(min=1)
        step_size = (-self.learning_rate / (1 - beta1 ** t) * on).float()
        root_correction = torch.sqrt(1 - beta2 ** t).float()
        m_weight, v_weight = ((1 - beta1) * on).float(), ((1 - beta2) * on).float()
        for p, g, m, v in zip(self.parameters, grads, self.m, self.v):
            m.lerp_(g, _job_shape(m_weight, p))
            v.mul_(_job_shape(1 - v_weight, p)).addcmul_(g * _job_shape(v_weight, p), g)
            denom = v.sqrt().div_(_job_shape(root_correction, p)).add_(self.eps)
            p.addcdiv_(m * _job_shape(step_size, p), denom)


def clip_job_gradients(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Each job's gradients scaled to a global norm of at most ``max_norm`` (as :func:`torch.nn.utils.clip_grad_norm_`)."""
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(dim=1) for g in grads))
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    return [g * _job_shape(scale, g) for g in grads]


# ---------------------------------------------------------------------------- replay


@dataclasses.dataclass(frozen=True)
class JobBatch:
    """Minibatches of every job, ``[J, B]`` tensors on the device (as :class:`~fusion_psro.oracles.dqn._Batch` per job)."""

    ids: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_ids: torch.Tensor
    done: torch.Tensor


class StackedReplay:
    """``J`` ring buffers of transitions (information-state ids), ``[J, capacity]`` tensors on the device."""

    def __init__(self, jobs: int, capacity: int, device: torch.device) -> None:
        self.jobs, self.capacity, self.device = jobs, capacity, device
        self.info = torch.zeros(jobs, capacity, dtype=torch.long, device=device)
        self.action = torch.zeros_like(self.info)
        self.next_info = torch.zeros_like(self.info)
        self.reward = torch.zeros(jobs, capacity, dtype=torch.float32, device=device)
        self.done = torch.zeros(jobs, capacity, dtype=torch.bool, device=device)
        #: ``int64[J]``: transitions held, and the slot the next one goes to.
        self.size = torch.zeros(jobs, dtype=torch.long, device=device)
        self.position = torch.zeros(jobs, dtype=torch.long, device=device)

    def add(self, info, action, reward, next_info, done, valid: torch.Tensor) -> None:
        """Add the ``[J, N]`` transitions where ``valid``, in order, each to its job's buffer."""
        rank = torch.cumsum(valid.long(), dim=1) - 1
        count = valid.long().sum(dim=1)
        keep = valid & (rank >= (count - self.capacity)[:, None])  # more than fit: the newest survive
        slot = (self.position[:, None] + rank) % self.capacity
        rows = torch.arange(self.jobs, device=self.device)[:, None].expand_as(slot)
        where = (rows[keep], slot[keep])
        self.info.index_put_(where, info[keep])
        self.action.index_put_(where, action[keep])
        self.next_info.index_put_(where, next_info[keep])
        self.reward.index_put_(where, reward[keep].float())
        self.done.index_put_(where, done[keep])
        self.position = (self.position + count) % self.capacity
        self.size = torch.clamp(self.size + count, max=self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """``int64[J, batch_size]``: per job, distinct slots drawn uniformly among the ones it holds.

        A job holding fewer than ``batch_size`` transitions gets slots it does not hold too
        (such a job does not learn yet).
        """
        keys = torch.rand(self.jobs, self.capacity, generator=generator, device=self.device)
        keys.masked_fill_(torch.arange(self.capacity, device=self.device)[None, :] >= self.size[:, None], -1.0)
        return keys.topk(batch_size, dim=1, sorted=False).indices

    def batch(self, slots: torch.Tensor) -> JobBatch:
        """The transitions at ``slots`` (``[J, B]``)."""
        return JobBatch(*(t.gather(1, slots) for t in (self.info, self.action, self.reward, self.next_info,
                                                       self.done)))


def td_target(batch: JobBatch, next_max: torch.Tensor, discount: float) -> torch.Tensor:
    """``y = r + discount * max_{a' legal} Q_target(s', a')``, and ``y = r`` where the episode ended.

    The batched form of :meth:`fusion_psro.oracles.dqn._Learner.td_target`, over ``[J, B]``;
    ``next_max`` is the target networks' maximum at ``batch.next_ids``.
    """
    return torch.where(batch.done, batch.rewards, batch.rewards + discount * next_max)


# ---------------------------------------------------------------------------- episodes


@dataclasses.dataclass(frozen=True, eq=False)
class JobStep:
    """Outcome of one :meth:`TensorJobEpisodes.step` over ``J`` jobs of ``E`` games.

    ``done`` / ``rewards``: ``[J, E]`` tensors on the device (the learner's return where the
    episode ended after its action, else 0); ``ended``: ``int64[J]`` episodes each job
    completed in the call (episodes without a learner decision included); ``returns``: per
    job, the learner returns of those episodes.
    """

    done: torch.Tensor
    rewards: torch.Tensor
    ended: np.ndarray
    returns: list[np.ndarray]


class TensorJobEpisodes:
    """``J`` jobs' episodes (:class:`~fusion_psro.games.tensor_episodes.TensorEpisodes` on
    ``device``, seeded by ``seed``), each job with its opponent mixture and episode budget,
    stepped to :class:`JobStep` s.

    The protocol::

        episodes.reset()                       # every job's games at a learner decision
        ids = episodes.infostates              # int64[J, E] on the device, -1: inactive game
        step = episodes.step(actions)          # actions int64[J, E]: a JobStep
        episodes.episodes_completed            # int64[J]; episodes.finished: no job has an active game
    """

    def __init__(self, compiled: CompiledGame, requests: Sequence[BestResponseRequest],
                 budgets: Sequence[int], num_envs: int, seed: int, device: torch.device) -> None:
        jobs = [EpisodeJob(r.player, r.opponent_population, r.opponent_meta_strategy, budget)
                for r, budget in zip(requests, budgets)]
        self.games = TensorEpisodes(compiled, jobs, num_envs=num_envs, device=device, seed=seed)

    def reset(self) -> JobStep:
        self.games.reset()
        zeros = torch.zeros(self.games.active.shape, device=self.games.device)
        return self._step_of(zeros.bool(), zeros)

    @property
    def infostates(self) -> torch.Tensor:
        return self.games.infostates

    def step(self, actions: torch.Tensor) -> JobStep:
        result = self.games.step(actions)
        return self._step_of(result.done, result.rewards)

    def _step_of(self, done: torch.Tensor, rewards: torch.Tensor) -> JobStep:
        return JobStep(done=done, rewards=rewards, ended=self.games.last_completed.cpu().numpy(),
                       returns=self.games.last_returns_by_job())

    @property
    def episodes_completed(self) -> np.ndarray:
        return self.games.episodes_completed.cpu().numpy()

    @property
    def learner_steps(self) -> np.ndarray:
        return self.games.learner_steps.cpu().numpy()

    @property
    def finished(self) -> bool:
        return self.games.finished


# ---------------------------------------------------------------------------- schedule


class JobSchedule:
    """Today's update counting (:class:`fusion_psro.oracles.dqn._UpdateSchedule`), per job, over ``int64[J]`` counts."""

    def __init__(self, learn_every: int, threshold: int, agent_steps: np.ndarray) -> None:
        self.learn_every, self.threshold = learn_every, threshold
        self.agent_steps = agent_steps.astype(np.int64)
        self.stored = np.zeros_like(self.agent_steps)
        self._due = np.zeros_like(self.agent_steps)

    def attempts(self, decisions: np.ndarray, episodes_ended: np.ndarray) -> np.ndarray:
        """``int64[J]`` update attempts of each job after a batched step that stored ``decisions`` transitions."""
        stored_before, self.stored = self.stored, self.stored + decisions
        self.agent_steps = self.agent_steps + decisions + episodes_ended
        due = self.agent_steps // self.learn_every
        attempts, self._due = due - self._due, due
        share = np.maximum(self.stored - self.threshold, 0) / np.maximum(self.stored - stored_before, 1)
        warming = stored_before < self.threshold
        return np.where(warming, np.round(attempts * share), attempts).astype(np.int64)


# ---------------------------------------------------------------------------- learner


def _distinct_per_job(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's distinct values ``[J, D]`` (padded with 0), where each entry of ``ids`` sits
    among them (``[J, N]``), and each row's count of distinct values (``[J]``)."""
    ordered, order = ids.sort(dim=1)
    first = torch.ones_like(ordered, dtype=torch.bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    position = first.long().cumsum(dim=1) - 1
    counts = position[:, -1] + 1
    distinct = torch.zeros(ids.shape[0], int(counts.max()), dtype=ids.dtype, device=ids.device)
    distinct.scatter_(1, position, ordered)
    return distinct, torch.empty_like(position).scatter_(1, order, position), counts


class StackedLearner:
    """The ``J`` online networks, their targets (with the tabulated maxima) and the optimizer.

    ``observations`` / ``legal`` are the information-state tensors ``[I, T]`` and legal masks
    ``[I, A]`` of every job's states (the players' compiled tables stacked), on the device.
    """

    def __init__(self, online: StackedMLP, config, observations: torch.Tensor, legal: torch.Tensor) -> None:
        self.online, self.target = online, online.detached_copy()
        self.config, self.observations, self.legal = config, observations, legal
        self.optimizer = StackedAdam(online.parameters(), config.learning_rate)
        jobs, device = online.jobs, observations.device
        #: ``int64[J]`` gradient updates made (on the host: target syncs are decided without
        #: waiting for the device).
        self.updates = np.zeros(jobs, dtype=np.int64)
        self.forward_rows = torch.zeros(jobs, dtype=torch.long, device=device)
        self.last_loss = torch.full((jobs,), float("nan"), device=device)
        self.tabulated = observations.shape[0] <= config.target_update_every * config.batch_size
        self.target_max = self._maxima(torch.arange(jobs, device=device)) if self.tabulated else None

    @property
    def states(self) -> int:
        return self.observations.shape[0]

    def q_at(self, network: StackedMLP, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[J, N, A]`` outputs of ``network`` at ``ids`` (``[J, N]``), and the rows each job evaluated.

        Same values, fewer rows: on the CPU each job evaluates the distinct states of its
        ``ids`` (as today's DQN does; jobs with fewer are padded with state 0); elsewhere,
        where the player has at most ``N`` information states, every job evaluates all of
        them once and the rows are gathered, else all ``N`` rows.
        """
        jobs, count = ids.shape
        if self.observations.device.type == "cpu":
            distinct, inverse, rows = _distinct_per_job(ids)
            full = network(self.observations[distinct])
            ids = inverse
        elif self.states <= count:
            full = network(self.observations.expand(jobs, -1, -1))
            rows = torch.full((jobs,), self.states, device=ids.device)
        else:
            return network(self.observations[ids]), torch.full((jobs,), count, device=ids.device)
        return full.gather(1, ids[..., None].expand(-1, -1, full.shape[2])), rows

    def _maxima(self, jobs: torch.Tensor) -> torch.Tensor:
        """``[len(jobs), I]``: ``max_{a' legal} Q_target(s', a')`` of those jobs' targets at every state."""
        with torch.no_grad():
            q = self.target(self.observations.expand(len(jobs), -1, -1), jobs)
            return q.masked_fill(~self.legal, torch.finfo(q.dtype).min).amax(dim=2)

    def max_target(self, next_ids: torch.Tensor) -> torch.Tensor:
        """``[J, B]`` target maxima at ``next_ids`` (meaningless where the episode ended)."""
        if self.tabulated:
            return self.target_max.gather(1, next_ids)
        with torch.no_grad():
            q = self.target(self.observations[next_ids])
            return q.masked_fill(~self.legal[next_ids], torch.finfo(q.dtype).min).amax(dim=2)

    def greedy_actions(self, ids: torch.Tensor) -> torch.Tensor:
        """``[J, N]`` greedy legal actions at ``ids`` (ties: lowest action)."""
        with torch.no_grad():
            q, _ = self.q_at(self.online, ids)
            return q.masked_fill(~self.legal[ids], -torch.inf).argmax(dim=2)

    def greedy_policies(self) -> np.ndarray:
        """``float64[J, I, A]`` one-hot greedy policies of the online networks over every state."""
        jobs = self.online.jobs
        best = self.greedy_actions(torch.arange(self.states, device=self.observations.device).expand(jobs, -1))
        policies = np.zeros((jobs, *self.legal.shape), dtype=np.float64)
        np.put_along_axis(policies, best.cpu().numpy()[..., None], 1.0, axis=2)
        return policies

    def _loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[J]`` per-job mean loss."""
        if self.config.loss == "mse":
            return F.mse_loss(prediction, target, reduction="none").mean(dim=1)
        return F.smooth_l1_loss(prediction, target, reduction="none", beta=self.config.huber_delta).mean(dim=1)

    def update(self, batch: JobBatch, stepping_jobs: np.ndarray) -> None:
        """One gradient step on the TD loss of its minibatch for each job where ``stepping_jobs``
        (``bool[J]``); target syncs where due."""
        cfg = self.config
        stepping = torch.from_numpy(stepping_jobs).to(self.observations.device)
        targets = td_target(batch, self.max_target(batch.next_ids), cfg.discount)
        q, rows = self.q_at(self.online, batch.ids)
        per_job = self._loss(q.gather(2, batch.actions[..., None])[..., 0], targets)
        total = torch.where(stepping, per_job, torch.zeros_like(per_job)).sum()
        grads = list(torch.autograd.grad(total, self.online.parameters()))
        if cfg.gradient_clipping is not None:
            grads = clip_job_gradients(grads, cfg.gradient_clipping)
        self.optimizer.step(grads, stepping_jobs)
        self.updates += stepping_jobs
        self.forward_rows += rows * stepping
        self.last_loss = torch.where(stepping, per_job.detach(), self.last_loss)
        self.sync_targets(np.flatnonzero(stepping_jobs & (self.updates % cfg.target_update_every == 0)))

    def sync_targets(self, syncing: np.ndarray) -> None:
        """Copy the online networks of the jobs ``syncing`` (indices) into their targets."""
        if syncing.size:
            jobs = torch.from_numpy(syncing).to(self.observations.device)
            self.target.copy_jobs_from(self.online, jobs)
            if self.tabulated:
                self.target_max[jobs] = self._maxima(jobs)


# ---------------------------------------------------------------------------- training


def job_seed(seeds: Sequence[int], stream: int) -> int:
    """A 63-bit seed of random stream ``stream`` (0: episodes, 1: learners) drawn from every job's seed."""
    state = np.random.SeedSequence([int(s) for s in seeds] + [len(seeds), stream]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def job_generator(seeds: Sequence[int], device: torch.device) -> torch.Generator:
    """The learners' one random stream (explorations, minibatches), seeded from every job's seed."""
    return torch.Generator(device=device).manual_seed(job_seed(seeds, 1))


class JobsTraining:
    """``J`` best responses trained side by side; see the module docstring.

    ``initial`` holds each job's starting state dict; ``budgets`` each job's training
    episodes; ``metrics_class`` builds a job's metrics from the numbers of
    :meth:`_metrics` (the DQN oracle's :class:`~fusion_psro.oracles.dqn.DQNMetrics`).
    """

    def __init__(self, compiled: CompiledGame, config, requests: Sequence[BestResponseRequest],
                 initial: Sequence[StateDict], budgets: Sequence[int], device: torch.device, metrics_class) -> None:
        self.config, self.requests, self.device = config, list(requests), device
        self.budgets, self.metrics_class = list(budgets), metrics_class
        players = sorted({r.player for r in self.requests})
        first_row = dict(zip(players, np.cumsum([0] + [compiled.players[p].num_infostates for p in players])))
        #: ``[J]``: where each job's player's rows start in the stacked table, and its player's row count.
        self.offsets = torch.tensor([int(first_row[r.player]) for r in self.requests], device=device)
        self.rows = [compiled.players[r.player].num_infostates for r in self.requests]
        self.generator = job_generator([r.seed for r in self.requests], device)
        self.episodes = TensorJobEpisodes(compiled, self.requests, self.budgets, config.num_envs,
                                          job_seed([r.seed for r in self.requests], 0), device)
        tables = [compiled.players[p] for p in players]
        self.learner = StackedLearner(StackedMLP.from_state_dicts(initial, device), config,
                                      torch.from_numpy(np.concatenate([t.tensors for t in tables])).to(device),
                                      torch.from_numpy(np.concatenate([t.legal_mask for t in tables])).to(device))
        self.replay = StackedReplay(len(self.requests), config.replay_capacity, device)
        self.returns: list[list[np.ndarray]] = [[] for _ in self.requests]
        self._checkpoints = [list(r.checkpoints) for r in self.requests]
        self._hooks_s = 0.0

    def run(self) -> list[BestResponseResult]:
        """Train every job to its budget; each job's final greedy policy, parameters and metrics."""
        cfg, started = self.config, time.perf_counter()
        first = self.episodes.reset()
        self._keep_returns(first.returns)
        self.schedule = JobSchedule(cfg.learn_every, max(cfg.batch_size, cfg.min_replay_before_learning), first.ended)
        self._call_hooks(started, progress=False)
        while not self.episodes.finished:
            decisions, ended = self._collect()
            self._learn(self.schedule.attempts(decisions, ended))
            self._call_hooks(started, progress=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        train_s = time.perf_counter() - started - self._hooks_s
        policies = self.learner.greedy_policies()
        return [self._result(j, policies, train_s) for j in range(len(self.requests))]

    def _collect(self) -> tuple[np.ndarray, np.ndarray]:
        """One batched step of every job; the learner decisions and episode ends of each."""
        ids = self.episodes.infostates
        valid = ids >= 0
        safe = ids.clamp(min=0) + self.offsets[:, None]
        actions = self._act(safe)
        step = self.episodes.step(actions)
        next_ids = self.episodes.infostates.clamp(min=0) + self.offsets[:, None]
        next_ids = torch.where(step.done, self.offsets[:, None], next_ids)
        self.replay.add(safe, actions, step.rewards, next_ids, step.done, valid)
        self._keep_returns(step.returns)
        return valid.sum(dim=1).cpu().numpy(), step.ended

    def _act(self, ids: torch.Tensor) -> torch.Tensor:
        """Epsilon-greedy legal actions at ``ids`` (``[J, E]``): explore with probability epsilon,
        then a uniformly random legal action."""
        mask = self.learner.legal[ids]
        greedy = self.learner.greedy_actions(ids)
        explore = torch.rand(ids.shape, generator=self.generator, device=self.device) < self.config.epsilon
        noise = torch.rand(mask.shape, generator=self.generator, device=self.device)
        random_legal = torch.where(mask, noise, -1.0).argmax(dim=2)
        return torch.where(explore, random_legal, greedy)

    def _learn(self, attempts: np.ndarray) -> None:
        """Each job's ``attempts`` updates: round ``r`` steps the jobs with more than ``r`` due."""
        for round_ in range(int(attempts.max(initial=0))):
            slots = self.replay.sample(self.config.batch_size, self.generator)
            self.learner.update(self.replay.batch(slots), attempts > round_)

    def _keep_returns(self, returns: list[np.ndarray]) -> None:
        for kept, new in zip(self.returns, returns):
            if new.size:
                kept.append(new)
                if sum(a.size for a in kept) > 2000:  # only the last 1,000 are reported
                    kept[:] = [np.concatenate(kept)[-1000:]]

    def _call_hooks(self, started: float, *, progress: bool) -> None:
        """Each request's progress and checkpoint callbacks; their time is kept out of ``train_s``."""
        hooks_started = time.perf_counter()
        completed = self.episodes.episodes_completed
        policies = None  # every job's greedy policy, computed once for the checkpoints of this step
        for j, request in enumerate(self.requests):
            if progress and request.on_progress is not None:
                request.on_progress(int(completed[j]), self.budgets[j])
            pending = self._checkpoints[j]
            while pending and pending[0] <= completed[j]:
                if policies is None:
                    policies = self.learner.greedy_policies()
                request.on_checkpoint(pending.pop(0), self._result(j, policies, hooks_started - started - self._hooks_s))
        self._hooks_s += time.perf_counter() - hooks_started

    def _metrics(self, job: int, train_s: float):
        returns = np.concatenate(self.returns[job]) if self.returns[job] else np.zeros(0)
        learner, completed = self.learner, int(self.episodes.episodes_completed[job])
        updates = int(learner.updates[job])
        loss = float(learner.last_loss[job])
        return self.metrics_class(
            mean_return_last_1000=float(returns[-1000:].mean()) if returns.size else float("nan"),
            updates=updates, train_s=train_s, learner_steps=int(self.episodes.learner_steps[job]),
            agent_steps=int(self.schedule.agent_steps[job]), updates_per_episode=updates / max(completed, 1),
            mean_rows_per_update=int(learner.forward_rows[job]) / max(updates, 1), final_loss=loss,
            device=str(self.device))

    def _result(self, job: int, policies: np.ndarray, train_s: float) -> BestResponseResult:
        """Job ``job``'s response; ``policies``: every job's greedy policy over the stacked table."""
        first = int(self.offsets[job])
        return BestResponseResult(policy=policies[job, first:first + self.rows[job]].copy(),
                                  parameters=self.learner.online.state_dict(job),
                                  episodes=int(self.episodes.episodes_completed[job]),
                                  metrics=self._metrics(job, train_s))


__all__ = ["JobBatch", "JobSchedule", "JobStep", "JobsTraining", "TensorJobEpisodes", "StackedAdam", "StackedLearner",
           "StackedMLP", "StackedReplay", "clip_job_gradients", "job_generator", "job_seed", "td_target"]
