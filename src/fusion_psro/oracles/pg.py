"""An exact policy-gradient best-response oracle for compiled games.

The learner is a softmax policy network over the game's information-state tensors (the
shared :class:`~fusion_psro.oracles.networks.MLP`, logits masked to the legal actions),
trained by Adam on its *exact* expected payoff against the opponent's meta-strategy
mixture. There is no sampling and no value estimate: each step differentiates the true
objective.

Differentiable sequence form
----------------------------
In sequence form (:mod:`fusion_psro.evaluation.sequence_form`) the expected payoff of
player ``p`` is bilinear in the two realization plans, ``v = x^T A_p y``, and a mixture of
opponent policies weighted by the meta-strategy ``sigma`` is the weighted sum of their
plans, ``y = sum_k sigma_k y_k``. The mixture is fixed while a best response is computed,
so ``g = A_p y`` (the value collected at each of ``p``'s sequences) is computed once, and
the objective is linear in the learner's plan: ``v(pi) = x(pi)^T g``.

The plan ``x(pi)`` of a behavioural policy ``pi`` is built in torch, level by level of the
player's information-state tree (``PlayerInfostates.infostates_by_level``): an
information state's reach is the plan value of its parent sequence, and its sequences get
``reach * pi(a | s)``. Every operation is a gather, a product or a scatter, so autograd
gives the exact gradient of ``v`` with respect to the logits, hence the parameters. The
plan is the one :func:`~fusion_psro.evaluation.sequence_form.realization_plans` computes,
so the training objective is the value the engine reports, not an approximation of it.

Entropy bonus, annealed
-----------------------
The exact gradient of the value with respect to the logits of a state is
``P(visit s) * pi(a | s) * (Q(s, a) - V(s))``: it vanishes with the probability of the
action. A network trained by Adam saturates its softmax within tens of steps, and shared
features push an action's logit down in every state at once (folding is bad in most
states, so it becomes unlikely in all of them); an action ruled out that way receives no
gradient when it later turns out best, and pure value ascent stalls at a gap (on Leduc,
0.1 against the uniform policy at every learning rate from 1e-4 to 3e-3). The oracle
therefore ascends ``v(pi) + tau_t * H_c(pi)``, with ``H_c`` the *causal* entropy of the
policy (the expected sum of the entropies of the decisions it makes in a game, computed
exactly from the plan and the opponent's reach, in payoff units) and ``tau_t`` decaying
linearly from ``entropy_coefficient`` to 0 over ``entropy_anneal_fraction`` of the steps;
the last steps ascend the exact value alone.

Cost per step: one forward and backward pass of the network over all ``I`` of the
player's information states, a masked softmax over ``I x A`` logits, one gather and one
scatter per level of the tree over ``I x A`` entries, and a dot product of length
``I x A + 1``. The network dominates. Computing ``g`` is one sparse product, once per best
response. A best response is a deterministic function of its starting parameters (the
seed only matters when the request brings none and a scratch network is drawn).

What joins the population is the network's greedy policy over the legal actions (ties to
the lowest action), as for the DQN oracle, or its softmax policy itself
(``population_policy``). Fusion averages the network's parameters, which carry the same
names as the DQN's (``layers.{k}.weight`` / ``layers.{k}.bias``).

Sampled play (``evaluation="sampled"``): the meta-game is estimated from sampled games and
the members are network vectors (:mod:`~fusion_psro.oracles.network_policy`, greedy or
softmax as ``population_policy`` says). The objective is still exact: the oracle tabulates
the opponents' vectors over the compiled game and ascends their mixture's exact value, so it
plays sampled games of any game that compiles; a game too large to compile is refused (the
DQN learns from sampled games alone).
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import torch

from fusion_psro import options
from fusion_psro.errors import ConfigError, OracleError
from fusion_psro.evaluation import mixture_plan
from fusion_psro.evaluation.behaviour import mixture_behaviour, opponent_reach
from fusion_psro.evaluation.sequence_form import best_response_to_plans, realization_plans, sequence_form
from fusion_psro.games.compiled import CompiledGame, PlayerInfostates
from fusion_psro.games.play_statistics import sample_play
from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, DiversityMetrics, StateDict
from fusion_psro.oracles.diversity import DiverseSnapshots, measure_for
from fusion_psro.oracles.network_oracle import NetworkOracle
from fusion_psro.oracles.episode_sources import tabulate_member
from fusion_psro.oracles.network_policy import GREEDY_Q, SOFTMAX, encode
from fusion_psro.oracles.networks import (
    MLP,
    masked_log_softmax,
    masked_softmax,
    softmax_policy,
    adam,
    check_device,
    check_network_size,
    check_steps,
    fit_network,
    greedy_policy,
    resolve_device,
    stacked_forward,
    stacked_parameters,
    torch_threads,
)
from fusion_psro.registry import register_oracle

#: What joins the population: the greedy policy of the network, or its softmax policy.
POPULATION_POLICIES = ("greedy", "stochastic")


@dataclasses.dataclass(frozen=True)
class PGConfig:
    """Every hyperparameter of the exact policy-gradient oracle.

    Defaults were chosen on Leduc poker (player 0, the default network, opponents: the
    uniform policy and Dirichlet-weighted mixtures of 5 random, resp. 5 random
    deterministic policies; ``benchmarks/bench_pg.py`` and ``benchmarks/results_pg.md``).

    Attributes
    ----------
    hidden_sizes:
        Widths of the hidden layers of the ReLU MLP policy network (the DQN oracle's
        default architecture, so that fusion and comparisons see the same network).
    learning_rate:
        Adam step size; a fresh Adam optimizer is built for every best response. 3e-3:
        with the default bonus it left gaps of at most 0.004 after 100 steps where 1e-3
        left up to 0.07 (both exact after 300); without the bonus, 1e-2 saturated the
        softmax within 10 steps and never left a gap of 0.87.
    steps:
        Adam steps per best response: the budget. Every step uses the exact gradient, so
        the budget alone decides how close to a best response the result is. 300: the
        smallest budget of {10, 30, 100, 300, 1000} at which every measured case (3
        opponent kinds x 3 seeds) returned an exact best response; 100 steps left gaps up
        to 0.04 and 30 steps 0.14-0.34 (payoffs of Leduc lie in [-13, 13]). A step costs
        about 9 ms on Leduc on one CPU thread, so a best response takes about 3 s.
    entropy_coefficient:
        Starting weight ``tau_0`` of the causal-entropy bonus, in payoff units; 0 is pure
        ascent of the exact value, which stalls (module docstring). 3: with 1 the gap
        stayed at 0.008-0.06 after 1,000 steps against two of the three opponents; 3 and
        10 were exact after 300, 3 closer at 100 steps.
    entropy_anneal_fraction:
        Share of ``steps`` over which the bonus decays linearly to 0; the steps after it
        ascend the exact value alone, so the objective at the end is the exact value.
        0.9: decaying over half the steps left larger gaps (0.06 instead of 0.008 against
        the random mixture at ``tau_0 = 1``).
    population_policy:
        ``"greedy"``: the network's greedy policy over the legal actions (ties to the
        lowest action) joins the population, as with the DQN oracle; ``"stochastic"``: its
        softmax policy, the policy that training optimized. At small budgets the greedy
        policy is the closer of the two to a best response.
    device:
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    torch_threads:
        Intra-op CPU threads while the oracle runs (default 1); None: the number of CPUs
        this process may use. The previous setting is restored afterwards.
    diversity_candidates:
        Diversity terms with a whole-policy score (DPP, RD): snapshots of the network,
        evenly spaced over the steps, among which the one with the best diversified
        objective is returned (as the DQN oracle does).
    """

    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    learning_rate: float = 3e-3
    steps: int = 300
    entropy_coefficient: float = 3.0
    entropy_anneal_fraction: float = 0.9
    population_policy: str = "greedy"
    device: str = "auto"
    torch_threads: int | None = 1
    diversity_candidates: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", options.int_tuple(self.hidden_sizes, "pg oracle: hidden_sizes"))
        options.positive_float(self.learning_rate, "pg oracle: learning_rate")
        check_steps(self.steps, "pg oracle")
        options.non_negative_float(self.entropy_coefficient, "pg oracle: entropy_coefficient")
        options.number(self.entropy_anneal_fraction, "pg oracle: entropy_anneal_fraction", low=0.0, high=1.0,
                       low_open=True)
        options.choice(self.population_policy, "pg oracle: population_policy", POPULATION_POLICIES)
        check_device(self.device, "pg oracle")
        options.positive_int(self.diversity_candidates, "pg oracle: diversity_candidates")
        options.positive_int(self.torch_threads, "pg oracle: torch_threads", optional=True)


class DifferentiablePlan:
    """Realization plan of one player's behavioural policy, built in torch (module docstring).

    ``plan(policy)`` maps a ``[I, A]`` tensor of action probabilities to the ``[S]``
    realization plan in the engine's sequence numbering (entry ``i * A + a``, the empty
    sequence last), differentiably.
    """

    def __init__(self, info: PlayerInfostates, device: torch.device) -> None:
        self.num_sequences = info.num_sequences
        self.empty_sequence = info.empty_sequence
        actions = np.arange(info.num_actions)
        self.levels = []
        for group in info.infostates_by_level:
            sequences = (group[:, None] * info.num_actions + actions[None, :]).reshape(-1)
            self.levels.append(tuple(
                torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(device)
                for a in (group, info.parent_sequence[group], sequences)
            ))

    def plan(self, policy: torch.Tensor) -> torch.Tensor:
        plan = torch.zeros(self.num_sequences, dtype=policy.dtype, device=policy.device)
        plan[self.empty_sequence] = 1.0
        for infostates, parents, sequences in self.levels:
            # Parents lie at shallower levels, so their plan values are final here; the
            # out-of-place index_put keeps every level's values in the autograd graph.
            reach = plan[parents]
            plan = plan.index_put((sequences,), (reach[:, None] * policy[infostates]).reshape(-1))
        return plan

    def stacked_plan(self, policy: torch.Tensor) -> torch.Tensor:
        """``[R, S]``: the plans of ``R`` policies (``[R, I, A]``) at once, each as :meth:`plan` builds it."""
        plan = torch.zeros(policy.shape[0], self.num_sequences, dtype=policy.dtype, device=policy.device)
        plan[:, self.empty_sequence] = 1.0
        for infostates, parents, sequences in self.levels:
            reach = plan[:, parents]
            values = (reach[:, :, None] * policy[:, infostates]).reshape(policy.shape[0], -1)
            plan = plan.index_copy(1, sequences, values)
        return plan


class SequenceFormObjective:
    """The exact value of one player's policy against a fixed opponent plan, in torch.

    ``value = x(pi)^T g`` with ``g = A_p y`` computed once. The entropy bonus is the
    *causal* entropy of the policy, the expected sum of the entropies of the decisions
    the player makes in a game, ``sum_s P(visit s) H(pi(. | s))``, also exact: the
    probability of visiting ``s`` is the player's own reach (the plan value of the parent
    sequence) times :func:`opponent_reach`. Both are in units of payoff.
    """

    def __init__(self, compiled: CompiledGame, player: int, opponent_plan: np.ndarray, device: torch.device) -> None:
        info = compiled.players[player]
        self.sequence_values_numpy = np.asarray(sequence_form(compiled).matrices[player] @ opponent_plan, dtype=np.float64)
        self.sequence_values = torch.from_numpy(self.sequence_values_numpy).to(device)
        self.opponent_reach = torch.from_numpy(opponent_reach(compiled, player, opponent_plan)).to(device)
        self.parent_sequence = torch.from_numpy(info.parent_sequence.astype(np.int64)).to(device)
        self.legal = torch.from_numpy(info.legal_mask).to(device)
        self.plans = DifferentiablePlan(info, device)

    def expected_decision_bonus(self, logits: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``sum_{s,a} P(visit s) pi(a|s) table[s, a]``: the expected sum of a per-decision bonus in a game.

        Differentiable through the policy's plan; ``table`` is held fixed, as a reward is.
        """
        plan = self.plans.plan(masked_log_softmax(logits, self.legal).exp())
        sequences = plan[: self.plans.empty_sequence].reshape(table.shape)
        return (sequences * self.opponent_reach[:, None] * table.masked_fill(~self.legal, 0.0)).sum()

    def __call__(self, logits: torch.Tensor, entropy_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(value + entropy_weight * causal entropy, value)`` of the softmax policy of ``logits``."""
        log_policy = masked_log_softmax(logits, self.legal)
        policy = log_policy.exp()
        plan = self.plans.plan(policy)
        value = plan @ self.sequence_values
        if entropy_weight == 0.0:
            return value, value
        entropy = -(policy * log_policy.masked_fill(~self.legal, 0.0)).sum(dim=1)
        visits = plan[self.parent_sequence] * self.opponent_reach
        return value + entropy_weight * (visits * entropy).sum(), value


class StackedObjective:
    """The objectives of ``R`` best responses of one player, each against its own opponent plan,
    computed at once: :class:`SequenceFormObjective` with a leading run axis.

    The runs share the plan's structure (the player's information-state tree) and differ in
    ``g = A_p y`` and the opponent's reach. Each run's value and entropy are the ones its
    own :class:`SequenceFormObjective` gives, summed in another order (float64).
    """

    def __init__(self, objectives: list[SequenceFormObjective]) -> None:
        first = objectives[0]
        self.sequence_values = torch.stack([o.sequence_values for o in objectives])
        self.opponent_reach = torch.stack([o.opponent_reach for o in objectives])
        self.parent_sequence, self.legal, self.plans = first.parent_sequence, first.legal, first.plans

    def __call__(self, logits: torch.Tensor, entropy_weight: float = 0.0) -> torch.Tensor:
        """``[R]``: each run's value plus ``entropy_weight`` times its causal entropy, for ``[R, I, A]`` logits."""
        log_policy = masked_log_softmax(logits, self.legal)
        policy = log_policy.exp()
        plan = self.plans.stacked_plan(policy)
        value = (plan * self.sequence_values).sum(dim=1)
        if entropy_weight == 0.0:
            return value
        entropy = -(policy * log_policy.masked_fill(~self.legal, 0.0)).sum(dim=2)
        visits = plan[:, self.parent_sequence] * self.opponent_reach
        return value + entropy_weight * (visits * entropy).sum(dim=1)


class PolicyGradientOracle(NetworkOracle):
    """Best responses by Adam on the exact sequence-form value; see the module docstring.

    Parameters
    ----------
    compiled:
        The game (must provide information-state tensors).
    config:
        Hyperparameters; default :class:`PGConfig()`.
    """

    game_kinds = ("tabular", "sampled")
    optimizes_diversity = True
    batches_responses = True
    takes_checkpoints = True
    settings_class = PGConfig
    budget_setting = "steps"
    distills = True
    network_kind = "policy network"

    def __init__(self, compiled: CompiledGame, config: PGConfig | None = None, *, sampled: bool = False) -> None:
        #: Whether its members are network vectors (the ``sampled`` game kind; module docstring).
        self.sampled = sampled
        for p in range(2):
            if compiled.players[p].tensors is None:
                raise ConfigError(
                    f"{compiled.game_string} provides no information-state tensors; the pg oracle needs them as "
                    "network inputs"
                )
        self.compiled = compiled
        self.config = config if config is not None else PGConfig()
        for info in compiled.players:  # refused here, before any network is allocated
            check_network_size(info.tensors.shape[1], self.config.hidden_sizes, info.num_actions, "pg oracle")

    @classmethod
    def from_space(cls, space, settings: PGConfig | None) -> PolicyGradientOracle:
        if getattr(space, "sampled_game", None) is None:
            return cls(space.compiled, settings)
        # Sampled play: the exact objective needs the compiled game, which the space keeps where it compiles.
        if space.reference is None:
            raise ConfigError(f"the pg oracle ascends the exact value of the compiled game, and {space.game_string} "
                              "is too large to compile; use --oracle dqn, which learns from sampled games")
        return cls(space.reference, settings, sampled=True)

    @classmethod
    def member_vector(cls, settings: PGConfig | None, parameters: StateDict) -> np.ndarray:
        """Greedy or softmax, as ``population_policy`` says its members act."""
        stochastic = (settings or PGConfig()).population_policy == "stochastic"
        return encode(parameters, cls.member_hidden_sizes(settings), SOFTMAX if stochastic else GREEDY_Q)

    # ------------------------------------------------------------------ networks

    def network_sizes(self, player: int) -> tuple[int, int]:
        info = self.compiled.players[player]
        return info.tensors.shape[1], info.num_actions

    def tabular_policy(self, player: int, parameters: StateDict, kind: str | None = None) -> np.ndarray:
        """``float64[I, A]`` policy of a network with ``parameters``: greedy or softmax.

        ``kind`` is ``"greedy"`` or ``"stochastic"`` (default: ``config.population_policy``).
        """
        kind = kind or self.config.population_policy
        if kind not in POPULATION_POLICIES:
            raise OracleError(f"policy kind must be one of {', '.join(POPULATION_POLICIES)}, got {kind!r}")
        network = self.network(player, parameters)
        info = self.compiled.players[player]
        inputs = (torch.from_numpy(info.tensors), torch.from_numpy(info.legal_mask))
        with torch_threads(self.config.torch_threads):
            return self._policy_of(network, *inputs, kind)

    @staticmethod
    def _policy_of(network: MLP, observations: torch.Tensor, legal: torch.Tensor, kind: str) -> np.ndarray:
        if kind == "greedy":
            return greedy_policy(network, observations, legal)
        return softmax_policy(network, observations, legal)

    def acting_policy(self, player: int, parameters: StateDict) -> np.ndarray:
        """The network's softmax policy, the policy training optimizes."""
        return self.tabular_policy(player, parameters, "stochastic")

    def distill(self, player, parameters, population, weights, opponent_policies, opponent_weights, *, steps,
                learning_rate, sampled_games=None, seed=0) -> StateDict:
        """The softmax fitted by cross-entropy to the mixture's behaviour strategy, at every information state.

        With ``sampled_games``: to the empirical policy of that many sampled games, at the
        states they visited, each weighted by its visits.
        """
        info = self.compiled.players[player]
        if sampled_games is None:
            target, state_weights = torch.from_numpy(mixture_behaviour(self.compiled, player, population, weights)), None
        else:
            play = sample_play(self.compiled, player, population, weights, opponent_policies, opponent_weights,
                               games=sampled_games, seed=seed)
            target = torch.from_numpy(play.frequencies())
            state_weights = torch.from_numpy(play.visits / play.visits.sum())
        legal = torch.from_numpy(info.legal_mask)

        def loss(logits: torch.Tensor) -> torch.Tensor:
            log_policy = masked_log_softmax(logits, legal).masked_fill(~legal, 0.0)
            if state_weights is None:
                return -(target * log_policy).sum(dim=1).mean()
            return -(state_weights * (target * log_policy).sum(dim=1)).sum()

        with torch_threads(self.config.torch_threads):
            return fit_network(self.network(player, parameters), info.tensors, loss, steps=steps,
                               learning_rate=learning_rate)

    # ------------------------------------------------------------------ training

    def best_response(self, request: BestResponseRequest) -> BestResponseResult:
        """Train the policy network by Adam on its exact value against the opponent mixture.

        Starts from ``request.initial_parameters`` (if None, from
        ``scratch_parameters(player, "normal", request.seed)``) with a fresh Adam optimizer
        and makes ``config.steps`` steps. The result's policy is the network's greedy or
        softmax policy (``config.population_policy``); its metrics hold the exact values
        of that policy after (``value``) and before (``initial_value``) training, the
        exact best-response value and their ``gap``.

        A diversity term enters as the DQN's does: its per-decision part as a bonus
        ``weight * table[s, a]`` on every decision, in expectation under the current policy
        (the table refreshed every step), its whole-policy part by choosing among
        ``diversity_candidates`` snapshots.
        """
        if request.budget_spent:
            return self.spending(request.budget_spent).best_response(dataclasses.replace(request, budget_spent=0))
        self.check_player(request.player)
        self.check_checkpoints(request, self.config.steps)
        return self._sampled_response(request) if self.sampled else self._tabular_response(request)

    def best_responses(self, requests, *, device: str | None = None) -> list[BestResponseResult]:
        """The responses to ``requests``, those of a player trained together (:class:`_StackedTraining`).

        Requests of the same player and training budget, without a diversity term or
        checkpoints, on a tabular game, share one batched computation: their networks'
        parameters stacked on a leading run axis, one batched forward and backward pass per
        step over every run's exact objective (``baddbmm`` per layer), one fused Adam call
        over all the networks' tensors (each network's own update) and the same entropy
        schedule. Each result is what :meth:`best_response` returns for its request (its
        ``train_s`` aside: its share of the batch's training time): on the CPU bit for bit
        where PyTorch sends the per-run products to BLAS, as it does a single network's;
        where they are tiny (Kuhn with narrow networks) it computes batched ones with a loop
        of its own, and the numbers differ by float32 rounding. The other
        requests, and a group of one, go through :meth:`best_response`. ``device``
        replaces the ``device`` setting.
        """
        oracle = self if device is None else self._on_device(device)
        results: list[BestResponseResult | None] = [None] * len(requests)
        groups: dict[tuple[int, int], list[int]] = {}
        for k, request in enumerate(requests):
            if self.sampled or request.diversity is not None or request.checkpoints:
                results[k] = oracle.best_response(request)
            else:
                groups.setdefault((oracle.check_player(request.player), request.budget_spent), []).append(k)
        for (_, spent), indices in groups.items():
            group = [dataclasses.replace(requests[k], budget_spent=0) for k in indices]
            trained = oracle.spending(spent)._stacked_responses(group)
            for k, result in zip(indices, trained):
                results[k] = result
        return results

    def _on_device(self, device: str) -> PolicyGradientOracle:
        other = copy.copy(self)
        other.config = dataclasses.replace(self.config, device=device)
        return other

    def _stacked_responses(self, requests: list[BestResponseRequest]) -> list[BestResponseResult]:
        if len(requests) == 1:
            return [self.best_response(requests[0])]
        networks = [self.initial_network(request) for request in requests]
        with torch_threads(self.config.torch_threads):
            device = resolve_device(self.config.device)
            trainings = [_Training(self, request, network, device) for request, network in zip(requests, networks)]
            return _StackedTraining(trainings).run()

    def _tabular_response(self, request: BestResponseRequest) -> BestResponseResult:
        if request.diversity is not None:
            measure_for(request.diversity, "tabular", "pg")
        network = self.initial_network(request)
        with torch_threads(self.config.torch_threads):
            device = resolve_device(self.config.device)
            return _Training(self, request, network, device).run()

    def _sampled_response(self, request: BestResponseRequest) -> BestResponseResult:
        """Sampled play: the opponents are network vectors, tabulated over the compiled game; the
        response and its snapshots are written as vectors (:meth:`member_vector`)."""
        opponents = np.stack([tabulate_member(v, self.compiled, 1 - request.player) for v in request.opponent_population])

        def as_vector(result: BestResponseResult) -> BestResponseResult:
            return dataclasses.replace(result, policy=self.member_vector(self.config, result.parameters))

        on_checkpoint = request.on_checkpoint
        tabular = dataclasses.replace(
            request, opponent_population=opponents,
            on_checkpoint=None if on_checkpoint is None else lambda budget, snap: on_checkpoint(budget, as_vector(snap)))
        return as_vector(self._tabular_response(tabular))

    def entropy_weight(self, step: int) -> float:
        """Weight of the causal-entropy bonus at ``step`` (0-based): linear decay to 0.

        It reaches 0 after ``entropy_anneal_fraction * steps`` steps, and the remaining
        steps ascend the exact value alone.
        """
        cfg = self.config
        anneal_steps = cfg.entropy_anneal_fraction * cfg.steps
        return cfg.entropy_coefficient * max(0.0, 1.0 - step / anneal_steps)


@dataclasses.dataclass
class PGMetrics(DiversityMetrics):
    """The pg oracle's numbers for one best response (all values exact, against the opponent mixture).

    Attributes
    ----------
    value:
        Value of the returned policy (``population_policy``).
    initial_value:
        Value of the starting network's policy of the same kind, before training.
    best_response_value:
        Value of an exact best response.
    gap:
        ``best_response_value - value`` (>= 0 up to rounding).
    softmax_value:
        Value of the network's softmax policy, the policy training optimizes.
    steps:
        Adam steps made.
    train_s:
        Seconds of training (trained in a batch, :meth:`PolicyGradientOracle.best_responses`: its
        share of the batch's training time).
    device:
        Where training ran.

    The fields of a diversity term follow (:class:`~fusion_psro.oracles.base.DiversityMetrics`).
    """

    value: float
    initial_value: float
    best_response_value: float
    gap: float
    softmax_value: float
    steps: int
    train_s: float
    device: str

    @property
    def training_return(self) -> float:
        """The training return: the exact value of the softmax policy that training optimizes."""
        return self.softmax_value


class _Training:
    """One best response's run of Adam steps; see :meth:`PolicyGradientOracle.best_response`."""

    def __init__(self, oracle: PolicyGradientOracle, request: BestResponseRequest, network: MLP,
                 device: torch.device) -> None:
        self.oracle, self.config, self.request = oracle, oracle.config, request
        self.player, self.device = request.player, device
        info = oracle.compiled.players[request.player]
        opponent_plan = mixture_plan(oracle.compiled, 1 - self.player, request.opponent_population,
                                     request.opponent_meta_strategy)
        self.objective = SequenceFormObjective(oracle.compiled, self.player, opponent_plan, device)
        self.network = network.to(device)
        self.observations = torch.from_numpy(info.tensors).to(device)
        self.best_value = float(best_response_to_plans(oracle.compiled, self.player, opponent_plan).value)
        term = request.diversity
        self.diversity = term.measure.for_tabular(oracle.compiled, self.player, term) if term and term.weight > 0 else None
        self.bonus_total = self.bonus_count = 0.0
        selects = self.diversity is not None and self.diversity.score is not None
        self.snapshots = DiverseSnapshots(oracle.compiled, request, self.diversity, self.config.steps,
                                          self.config.diversity_candidates) if selects else None
        self._checkpoints = list(request.checkpoints)
        self._hooks_s = 0.0

    def policy(self, kind: str | None = None) -> np.ndarray:
        kind = kind or self.config.population_policy
        return PolicyGradientOracle._policy_of(self.network, self.observations, self.objective.legal, kind)

    def value(self, policy: np.ndarray) -> float:
        return float(realization_plans(self.oracle.compiled, self.player, policy) @ self.objective.sequence_values_numpy)

    def run(self) -> BestResponseResult:
        self.initial_value = self.value(self.policy())
        optimizer = adam(self.network, self.config.learning_rate)
        started = time.perf_counter()
        for step in range(self.config.steps):
            self._call_hooks(step, started)
            optimizer.zero_grad(set_to_none=True)
            (-self._objective(step)).backward()
            optimizer.step()
            if self.snapshots is not None and step + 1 < self.config.steps and self.snapshots.due(step + 1):
                self.snapshots.add(self.policy(), self.parameters())
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._call_hooks(self.config.steps, started)
        return self._result(time.perf_counter() - started - self._hooks_s)

    def _objective(self, step: int) -> torch.Tensor:
        logits = self.network(self.observations)
        regularized, _ = self.objective(logits, self.oracle.entropy_weight(step))
        if self.diversity is None or self.diversity.bonus_table is None:
            return regularized
        with torch.no_grad():
            policy = masked_softmax(logits, self.objective.legal).double().cpu().numpy()
        policy /= policy.sum(axis=1, keepdims=True)
        table = self.request.diversity.weight * self.diversity.bonus_table(policy)
        bonus = self.objective.expected_decision_bonus(logits, torch.from_numpy(table).to(self.device))
        self.bonus_total += float(bonus.detach())
        self.bonus_count += 1
        return regularized + bonus

    def _call_hooks(self, completed: int, started: float) -> None:
        request, hooks_started = self.request, time.perf_counter()
        if request.on_progress is not None and completed > 0:
            request.on_progress(completed, self.config.steps)
        while self._checkpoints and self._checkpoints[0] <= completed:
            snapshot = BestResponseResult(policy=self.policy(), parameters=self.parameters(), episodes=completed,
                                          metrics=self._metrics(completed, hooks_started - started - self._hooks_s))
            request.on_checkpoint(self._checkpoints.pop(0), snapshot)
        self._hooks_s += time.perf_counter() - hooks_started

    def parameters(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().cpu().clone() for name, tensor in self.network.state_dict().items()}

    def _metrics(self, steps: int, train_s: float) -> PGMetrics:
        value = self.value(self.policy())
        return PGMetrics(
            value=value, initial_value=self.initial_value, best_response_value=self.best_value,
            gap=self.best_value - value, softmax_value=self.value(self.policy("stochastic")), steps=steps,
            train_s=train_s, device=str(self.device),
            diversity_bonus_mean=self.bonus_total / max(self.bonus_count, 1) if self.bonus_count else None,
        )

    def _result(self, train_s: float) -> BestResponseResult:
        policy, parameters = self.policy(), self.parameters()
        metrics = self._metrics(self.config.steps, train_s)
        if self.snapshots is not None:
            policy, parameters, metrics = self.snapshots.select(policy, parameters, metrics, lambda chosen: chosen)
        return BestResponseResult(policy=policy, parameters=parameters, episodes=self.config.steps, metrics=metrics)


class _StackedTraining:
    """Best responses of one player trained together; see :meth:`PolicyGradientOracle.best_responses`.

    Each :class:`_Training` keeps its request's network, objective, values and metrics; each
    step stacks the networks' parameters (:func:`~fusion_psro.oracles.networks.stacked_parameters`),
    runs them through one batched forward and backward pass, and one fused Adam call steps
    every network's own tensors, so each network makes the update it makes alone.
    """

    def __init__(self, trainings: list[_Training]) -> None:
        self.trainings = trainings
        self.oracle, self.device = trainings[0].oracle, trainings[0].device
        self.objective = StackedObjective([t.objective for t in trainings])
        self.observations = trainings[0].observations

    def run(self) -> list[BestResponseResult]:
        steps = self.oracle.config.steps
        for training in self.trainings:
            training.initial_value = training.value(training.policy())
        networks = [t.network for t in self.trainings]
        optimizer = adam([tensor for network in networks for tensor in network.parameters()],
                         self.oracle.config.learning_rate)
        started = time.perf_counter()
        for step in range(steps):
            for training in self.trainings:
                training._call_hooks(step, started)
            optimizer.zero_grad(set_to_none=True)
            logits = stacked_forward(stacked_parameters(networks), self.observations)
            (-self.objective(logits, self.oracle.entropy_weight(step)).sum()).backward()
            optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        for training in self.trainings:
            training._call_hooks(steps, started)
        hooks_s = sum(t._hooks_s for t in self.trainings)
        share = (time.perf_counter() - started - hooks_s) / len(self.trainings)
        return [training._result(share) for training in self.trainings]


register_oracle("pg", PolicyGradientOracle)
