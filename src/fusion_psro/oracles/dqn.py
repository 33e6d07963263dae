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

PSD-PSRO's diversity bonus (``request.diversity`` of kind ``"psd"``; Yao et al., NeurIPS
2023): the learner should maximize its return plus ``weight * min_{pi' in Hull} KL(pi ||
pi')``, the policy-space distance to the hull of its own population. The hull is
represented by its vertices and Dirichlet-weighted mixtures
(:func:`~fusion_psro.oracles.diversity.hull_weights`); each mixture's behaviour strategy
is exact, from the weighted sum of the members' realization plans, and is smoothed with
1% of the uniform legal policy so that every KL is finite. Whenever the target network
syncs, the oracle takes the learner's current epsilon-greedy policy ``pi``, finds the
hull sample closest to it in reach-weighted KL (``sum_s x_pi(s) KL(pi(.|s) || pi'(.|s))``,
``x_pi`` the learner's own reach probability), and until the next sync adds
``weight * log(pi(a|s) / pi'(a|s))`` to the reward of each learner decision ``(s, a)``;
its expectation under ``pi`` is the per-state KL, so Q-learning ascends return plus the
weighted distance.

BD&RD-PSRO (kind ``"bdrd"``; Liu et al., NeurIPS 2021). Behavioural diversity is a
divergence between the learner's occupancy measure and that of its population's
meta-Nash mixture. Against a fixed opponent, the KL between the trajectory distributions
of two policies is the expected sum of ``log(pi(a|s) / pi_sigma(a|s))`` over the
learner's decisions, so the reward of each decision gets ``weight * log(pi(a|s) /
pi_sigma(a|s))``, ``pi_sigma`` the exact behaviour strategy of the meta-Nash mixture
(smoothed as above), refreshed at every target sync like PSD's.
Response diversity (the distance of the new payoff vector to the hull of the population's)
and DPP-PSRO's diversity (kind ``"dpp"``; the expected cardinality of the DPP over payoff
vectors) are functions of the whole policy, not of single decisions, so they cannot be
shaped into the reward. For them the oracle keeps ``diversity_candidates`` snapshots of
the network taken at even intervals of training (the last one is the final network) and
returns the snapshot with the highest ``value + weight * diversity``, every term computed
exactly by the engine (payoff vectors against each opponent member in sequence form; for
BD&RD the behavioural term is the reach-weighted KL to the meta-Nash mixture). This
optimizes the diversified objective over the training path rather than by its gradient;
with weight 0 it returns the final network, as plain PSRO does.

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

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fusion_psro.errors import ConfigError, GameNotSupportedError, OracleError
from fusion_psro.evaluation.sequence_form import realization_plans, sequence_form
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.games.simulation import VectorizedEpisodes
from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, Oracle, OracleMetrics, StateDict
from fusion_psro.oracles.networks import (
    MLP,
    SCHEMES,
    adam,
    greedy_policy,
    initialize,
    resolve_device,
    torch_threads,
)
from fusion_psro.oracles.diversity import TabularDiversity, measure_for
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
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        positive = ("replay_capacity", "batch_size", "learn_every", "target_update_every", "num_envs",
                    "diversity_candidates")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ConfigError(f"DQNConfig.{name} must be a positive integer, got {value!r}")
        for name in ("episodes", "min_replay_before_learning"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise ConfigError(f"DQNConfig.{name} must be a non-negative integer, got {value!r}")
        if any(h <= 0 for h in self.hidden_sizes):
            raise ConfigError(f"DQNConfig.hidden_sizes must be positive, got {self.hidden_sizes}")
        if max(self.batch_size, self.min_replay_before_learning) > self.replay_capacity:
            raise ConfigError(
                "DQNConfig.batch_size and min_replay_before_learning cannot exceed replay_capacity "
                "(the buffer would never hold enough transitions to learn)"
            )
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError(f"DQNConfig.epsilon must lie in [0, 1], got {self.epsilon}")
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"DQNConfig.discount must lie in [0, 1], got {self.discount}")
        if self.learning_rate < 0:
            raise ConfigError(f"DQNConfig.learning_rate must be non-negative, got {self.learning_rate}")
        if self.loss not in LOSSES:
            raise ConfigError(f"DQNConfig.loss must be one of {LOSSES}, got {self.loss!r}")
        if self.torch_threads is not None and self.torch_threads <= 0:
            raise ConfigError(f"DQNConfig.torch_threads must be positive or None, got {self.torch_threads}")


@dataclasses.dataclass
class DQNMetrics(OracleMetrics):
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
    diversity_bonus_mean:
        Mean weighted diversity bonus added to a learner reward; only for a diversity term
        with a per-decision part and positive weight.
    diversity_candidate:
        Index of the returned training snapshot among :attr:`diversity_candidates`; only
        for a diversity term with a whole-policy score and positive weight (as are the
        next three).
    diversity_candidates:
        Training snapshots compared (the last is the final network).
    selected_value:
        Exact value of the returned snapshot against the opponent mixture.
    diversity:
        Exact whole-policy diversity score (unweighted) of the returned snapshot.
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
    diversity_bonus_mean: float | None = None
    diversity_candidate: int | None = None
    diversity_candidates: int | None = None
    selected_value: float | None = None
    diversity: float | None = None


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


class DQNOracle(Oracle):
    """Best responses by DQN on vectorized episodes; see the module docstring.

    Parameters
    ----------
    compiled:
        The game (must provide information-state tensors).
    config:
        Hyperparameters; default :class:`DQNConfig()`.
    """

    trains_parameters = True
    game_kinds = ("tabular",)
    optimizes_diversity = True
    scratch_schemes = SCHEMES
    settings_class = DQNConfig

    def __init__(self, compiled: CompiledGame, config: DQNConfig | None = None) -> None:
        for p in range(2):
            if compiled.players[p].tensors is None:
                raise GameNotSupportedError(
                    f"{compiled.game_string} provides no information-state tensors; the DQN oracle needs them as "
                    "network inputs"
                )
        self.compiled = compiled
        self.config = config if config is not None else DQNConfig()

    @classmethod
    def from_space(cls, space, settings: DQNConfig | None) -> DQNOracle:
        return cls(space.compiled, settings)

    # ------------------------------------------------------------------ networks

    def build_network(self, player: int) -> MLP:
        """A Q-network of ``player`` on the CPU, with arbitrary weights (load or initialize them).

        PyTorch's default layer initialization runs on a forked RNG state, so building a
        network leaves the global torch RNG untouched.
        """
        if player not in (0, 1):
            raise OracleError(f"player must be 0 or 1, got {player!r}")
        info = self.compiled.players[player]
        with torch.random.fork_rng(devices=[]):
            return MLP(info.tensors.shape[1], self.config.hidden_sizes, info.num_actions)

    def scratch_parameters(self, player: int, scheme: str, seed: int) -> StateDict:
        """Fresh parameters of ``player``'s Q-network (CPU tensors); see :func:`initialize`.

        Deterministic in ``seed`` (a private :class:`torch.Generator`; the global torch
        RNG is untouched). ``player`` only determines the shapes.
        """
        if scheme not in SCHEMES:
            raise OracleError(f"unknown initialization scheme {scheme!r}; accepted: {', '.join(SCHEMES)}")
        network = self.build_network(player)
        initialize(network, scheme, torch.Generator().manual_seed(int(seed)))
        return {name: value.detach().clone() for name, value in network.state_dict().items()}

    def greedy_policy(self, player: int, parameters: StateDict) -> np.ndarray:
        """Greedy tabular policy ``[I, A]`` of a Q-network with ``parameters``."""
        network = self.build_network(player)
        network.load_state_dict(parameters)
        info = self.compiled.players[player]
        return greedy_policy(network, torch.from_numpy(info.tensors), torch.from_numpy(info.legal_mask))

    # ------------------------------------------------------------------ training

    def best_response(self, request: BestResponseRequest) -> BestResponseResult:
        """Train a Q-network against the opponent mixture; return its greedy policy.

        Starts from ``request.initial_parameters`` (the PSRO loop always passes them); if
        None, from ``scratch_parameters(player, "normal", request.seed)``. The target
        network starts as a copy of the initial network and the Adam optimizer is fresh.
        All randomness derives from ``request.seed``: on the CPU the same seed gives
        bit-identical parameters and policy.
        """
        cfg = self.config
        player = request.player
        if player not in (0, 1):
            raise OracleError(f"player must be 0 or 1, got {player!r}")
        if request.diversity is not None:
            measure_for(request.diversity, "tabular", "DQN")
        with torch_threads(cfg.torch_threads):
            return self._train(request, resolve_device(cfg.device))

    def _exploring_policy(self, player: int, greedy: np.ndarray) -> np.ndarray:
        return (1.0 - self.config.epsilon) * greedy + self.config.epsilon * uniform_policy(self.compiled, player)

    def _select_diverse(self, request: BestResponseRequest, candidates: list[tuple[np.ndarray, dict]],
                        diversity: TabularDiversity) -> tuple[int, float, float]:
        """Index, value and diversity of the candidate with the best ``value + weight * diversity``."""
        term, player = request.diversity, request.player
        mixture = request.opponent_meta_strategy @ realization_plans(self.compiled, 1 - player, request.opponent_population)
        mixture_values = np.asarray(sequence_form(self.compiled).matrices[player] @ mixture)  # [S]
        best = (-1, -np.inf, 0.0, -np.inf)
        for index, (policy, _) in enumerate(candidates):
            value = float(realization_plans(self.compiled, player, policy) @ mixture_values)
            score = diversity.score(policy, self._exploring_policy(player, policy))
            total = value + term.weight * score
            if total > best[3]:
                best = (index, value, score, total)
        return best[0], best[1], best[2]

    def _train(self, request: BestResponseRequest, device: torch.device) -> BestResponseResult:
        cfg = self.config
        player = request.player
        info = self.compiled.players[player]
        num_infostates, num_actions = info.legal_mask.shape
        env_seed, agent_seed = np.random.SeedSequence(int(request.seed)).spawn(2)
        rng = np.random.default_rng(agent_seed)
        episodes = VectorizedEpisodes(
            self.compiled,
            player,
            request.opponent_population,
            request.opponent_meta_strategy,
            num_envs=cfg.num_envs,
            seed=np.random.default_rng(env_seed),
            max_episodes=cfg.episodes,
        )

        parameters = request.initial_parameters
        if parameters is None:
            parameters = self.scratch_parameters(player, "normal", request.seed)
        network = self.build_network(player)
        try:
            network.load_state_dict(parameters)
        except RuntimeError as exc:
            raise OracleError(f"initial_parameters do not fit player {player}'s Q-network: {exc}") from None
        network.to(device)
        target = copy.deepcopy(network)
        target.requires_grad_(False)
        optimizer = adam(network, cfg.learning_rate)
        if cfg.loss == "mse":
            loss_fn = F.mse_loss
        else:
            def loss_fn(prediction, target_values):
                return F.smooth_l1_loss(prediction, target_values, beta=cfg.huber_delta)

        observations = torch.from_numpy(info.tensors).to(device)
        legal = torch.from_numpy(info.legal_mask).to(device)
        replay = _Replay(cfg.replay_capacity, device)

        target_table = num_infostates <= cfg.target_update_every * cfg.batch_size
        dedupe = device.type == "cpu"
        target_max = None

        def refresh_target_table():
            with torch.no_grad():
                q = target(observations).masked_fill(~legal, torch.finfo(torch.float32).min)
                return q.max(dim=1).values

        if target_table:
            target_max = refresh_target_table()

        term = request.diversity
        diversity = None
        if term is not None and term.weight > 0:
            diversity = term.measure.for_tabular(self.compiled, player, term)

        def current_bonus_table():
            greedy = greedy_policy(network, observations, legal)
            return diversity.bonus_table(self._exploring_policy(player, greedy))

        bonus_table = None
        bonus_total, bonus_count = 0.0, 0
        if diversity is not None and diversity.bonus_table is not None:
            bonus_table = current_bonus_table()
        bonus_refreshed_at = 0
        # The whole-policy part of the term: snapshots to choose from after training.
        select = diversity is not None and diversity.score is not None
        snapshot_every = max(1, -(-cfg.episodes // cfg.diversity_candidates))
        candidates: list[tuple[np.ndarray, dict]] = []

        updates = 0
        forward_rows = 0
        last_loss = None

        def update(sample: torch.Tensor) -> None:
            nonlocal updates, target_max, last_loss, forward_rows
            ids = replay.info[sample]
            actions = replay.action[sample]
            rewards = replay.reward[sample]
            next_ids = replay.next_info[sample]
            done = replay.done[sample]
            if target_table:
                next_max = target_max[next_ids]
            else:
                with torch.no_grad():
                    next_q = target(observations[next_ids]).masked_fill(~legal[next_ids], torch.finfo(torch.float32).min)
                    next_max = next_q.max(dim=1).values
            targets = torch.where(done, rewards, rewards + cfg.discount * next_max)
            if dedupe:
                distinct, inverse = torch.unique(ids, return_inverse=True)
                q = network(observations[distinct])[inverse, actions]
                forward_rows += distinct.numel()
            else:
                forward_rows += cfg.batch_size
                q = network(observations[ids]).gather(1, actions[:, None])[:, 0]
            loss = loss_fn(q, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.gradient_clipping is not None:
                nn.utils.clip_grad_norm_(network.parameters(), cfg.gradient_clipping)
            optimizer.step()
            last_loss = loss.detach()
            updates += 1
            if updates % cfg.target_update_every == 0:
                target.load_state_dict(network.state_dict())
                if target_table:
                    target_max = refresh_target_table()

        threshold = max(cfg.batch_size, cfg.min_replay_before_learning)
        started = time.perf_counter()
        episodes.reset()
        returns = [episodes.last_returns]
        agent_steps = episodes.last_terminals.size  # episodes that ended before the learner acted
        learn_attempts = 0
        stored = 0  # transitions ever added to the buffer
        all_actions = np.zeros(cfg.num_envs, dtype=np.int64)
        while not episodes.finished:
            ids_all = episodes.infostates
            games = np.flatnonzero(ids_all >= 0)
            ids = ids_all[games]
            mask = info.legal_mask[ids]
            with torch.no_grad():
                ids_t = torch.from_numpy(ids).to(device)
                q = network(observations[ids_t]).masked_fill(~legal[ids_t], -torch.inf)
                greedy = q.argmax(dim=1).cpu().numpy()
            explore = rng.random(games.size) < cfg.epsilon
            random_legal = np.argmax(np.where(mask, rng.random(mask.shape), -1.0), axis=1)
            chosen = np.where(explore, random_legal, greedy)
            all_actions[games] = chosen
            result = episodes.step(all_actions)

            done = result.done[games]
            next_ids = np.where(done, 0, episodes.infostates[games])
            rewards = result.rewards[games]
            if bonus_table is not None:
                if updates - bonus_refreshed_at >= cfg.target_update_every:
                    bonus_table = current_bonus_table()
                    bonus_refreshed_at = updates
                bonus = term.weight * bonus_table[ids, chosen]
                rewards = rewards + bonus
                bonus_total += float(bonus.sum())
                bonus_count += bonus.size
            replay.add(ids, chosen, rewards, next_ids, done)
            returns.append(episodes.last_returns)
            stored_before, stored = stored, stored + games.size

            agent_steps += games.size + episodes.last_terminals.size
            due = agent_steps // cfg.learn_every
            attempts, learn_attempts = due - learn_attempts, due
            if stored_before < threshold:
                # Warm-up ends inside this batched step: OpenSpiel would make only the
                # attempts that come after its buffer reached the threshold.
                share = max(stored - threshold, 0) / (stored - stored_before)
                attempts = round(attempts * share)
            if attempts:
                samples = np.stack([rng.choice(replay.size, cfg.batch_size, replace=False) for _ in range(attempts)])
                samples = torch.from_numpy(samples).to(device)
                for row in range(attempts):
                    update(samples[row])
            if select and not episodes.finished and episodes.episodes_completed >= snapshot_every * (len(candidates) + 1):
                candidates.append((greedy_policy(network, observations, legal),
                                   {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_s = time.perf_counter() - started

        policy = greedy_policy(network, observations, legal)
        final = {name: value.detach().cpu().clone() for name, value in network.state_dict().items()}
        all_returns = np.concatenate(returns)
        metrics = DQNMetrics(
            mean_return_last_1000=float(all_returns[-1000:].mean()) if all_returns.size else float("nan"),
            updates=updates,
            train_s=train_s,
            learner_steps=episodes.learner_steps,
            agent_steps=int(agent_steps),
            updates_per_episode=updates / max(episodes.episodes_completed, 1),
            mean_rows_per_update=forward_rows / max(updates, 1),
            final_loss=float(last_loss) if last_loss is not None else float("nan"),
            device=str(device),
            diversity_bonus_mean=bonus_total / max(bonus_count, 1) if bonus_table is not None else None,
        )
        if select:
            candidates.append((policy, final))
            index, value, score = self._select_diverse(request, candidates, diversity)
            policy, final = candidates[index]
            metrics = dataclasses.replace(metrics, diversity_candidate=index, diversity_candidates=len(candidates),
                                          selected_value=value, diversity=score)
        return BestResponseResult(policy=policy, parameters=final, episodes=episodes.episodes_completed, metrics=metrics)


register_oracle("dqn", DQNOracle)
