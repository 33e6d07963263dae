"""The oracle interface: what PSRO asks of a best-response oracle, and what it gets back.

PSRO's data flow is one way: game -> oracle -> population -> meta-game -> meta-solver ->
next oracle call. An oracle receives the opponent's population and meta-strategy (as
tabular policies, exact and cheap to act from) and, for oracles that train a network, the
parameters to start from (chosen by the initialization strategy: scratch, inherit, fusion).
It returns the new policy as a tabular array (what the exact evaluation sees), for
network oracles the trained parameters (what fusion averages), and its numbers for the
run log as a typed :class:`OracleMetrics`. A request may also carry hooks that watch
training: progress, and snapshots of the response at episode budgets (checkpoints).
"""

from __future__ import annotations

import abc
import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fusion_psro.errors import ConfigError, OracleError
from fusion_psro.oracles.diversity import DiversityTerm

if TYPE_CHECKING:
    import torch

#: A network's parameters by name (PyTorch tensors; this module does not import PyTorch).
StateDict = Mapping[str, "torch.Tensor"]


@dataclasses.dataclass(frozen=True, eq=False)
class BestResponseRequest:
    """One best-response computation.

    Attributes
    ----------
    player:
        The responding player (0 or 1).
    opponent_population:
        ``float64[K, I_opp, A]`` tabular policies of the opponent's population.
    opponent_meta_strategy:
        ``float64[K]`` weights of those policies (a probability vector). The oracle responds
        to the mixture "draw a member per episode, then follow it".
    initial_parameters:
        Parameters to start training from (network oracles); None for oracles without
        parameters. Chosen by :mod:`fusion_psro.psro.initialization`.
    seed:
        Seed for every random draw of this computation (episodes, exploration, minibatches).
    diversity:
        For the diversity variants (DPP-, BD&RD-, PSD-PSRO): the term added to the
        best-response objective (:class:`~fusion_psro.oracles.diversity.DiversityTerm`).
        Oracles that cannot optimize it raise :class:`~fusion_psro.errors.OracleError`.
    on_progress:
        Called as ``on_progress(done, total)`` with the training episodes completed and the
        total as training advances (the DQN: after every batched step; a one-shot oracle:
        once, at the end); for a progress bar. Oracles that do not train never call it.
    checkpoints:
        Episode budgets (stored sorted, without repeats) at which to see the best response
        as training goes, within one training run: for each, ``on_checkpoint(budget,
        snapshot)`` is called once, ``snapshot`` being a :class:`BestResponseResult` of the
        moment the completed training episodes first reached the budget (budget 0: before
        training): the policy (the greedy one for the DQN), a copy of the parameters, the
        episodes completed (a batched oracle may be up to one batched step past the
        budget) and the metrics so far. The DQN calls it at that moment; the gradient
        oracle, whose whole ascent takes milliseconds, after the ascent. Only oracles with
        :attr:`Oracle.takes_checkpoints` accept them, and only budgets within their
        training budget.
    on_checkpoint:
        The callback of ``checkpoints``; required with them.
    budget_spent:
        Training budget (in the unit of the oracle's :attr:`Oracle.budget_setting`) already
        spent on this response's start, such as a distillation's supervised steps that count
        against the budget; the oracle trains for the rest (:meth:`Oracle.spending`).

    The hooks draw no random number and change no result; the time spent in them is not
    counted as training time.
    """

    player: int
    opponent_population: np.ndarray
    opponent_meta_strategy: np.ndarray
    initial_parameters: StateDict | None = None
    seed: int = 0
    diversity: DiversityTerm | None = None
    on_progress: Callable[[int, int], None] | None = None
    checkpoints: tuple[int, ...] = ()
    on_checkpoint: Callable[[int, BestResponseResult], None] | None = None
    budget_spent: int = 0

    def __post_init__(self) -> None:
        budgets = tuple(self.checkpoints)
        if any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 0 for b in budgets):
            raise OracleError(f"checkpoints must be non-negative episode counts, got {self.checkpoints!r}")
        if budgets and self.on_checkpoint is None:
            raise OracleError("checkpoints need an on_checkpoint callback to receive the snapshots")
        object.__setattr__(self, "checkpoints", tuple(sorted({int(b) for b in budgets})))


@dataclasses.dataclass
class OracleMetrics:
    """An oracle's numbers for one best response: an entry of the ``oracle`` list of metrics.jsonl.

    Each oracle defines a dataclass of its own (:class:`~fusion_psro.oracles.exact.ExactMetrics`,
    :class:`~fusion_psro.oracles.dqn.DQNMetrics`,
    :class:`~fusion_psro.oracles.point_gradient.GradientMetrics`) whose documented fields are the
    schema of those entries. Field values are JSON values; a field left at None does not
    apply to the response and is left out of :meth:`to_json`. This base class has no
    fields (an oracle with nothing to report).
    """

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON object, without those that are None: in field order, the
        keyword-only fields a base class adds (:class:`DiversityMetrics`) last."""
        fields = sorted(dataclasses.fields(self), key=lambda f: f.kw_only)
        return {f.name: value for f in fields if (value := getattr(self, f.name)) is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OracleMetrics:
        """The metrics back from :meth:`to_json`'s object (a missing optional field is None)."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s) {unknown}; accepted: {', '.join(names) or 'none'}")
        return cls(**data)


def _unless_diversity() -> Any:
    return dataclasses.field(default=None, kw_only=True)


@dataclasses.dataclass
class DiversityMetrics(OracleMetrics):
    """The metrics of a diversity term, shared by the oracles that optimize one (keyword-only
    fields, after the oracle's own in :meth:`to_json`).

    Attributes
    ----------
    diversity_bonus_mean:
        Mean weighted diversity bonus added to a learner decision (the DQN: per reward; the
        pg oracle: the bonus a game collects in expectation, averaged over the steps); only
        for a term with a per-decision part and positive weight.
    diversity_candidate:
        Index of the returned training snapshot among :attr:`diversity_candidates`; only for
        a term with a whole-policy score and positive weight (as are the next three).
    diversity_candidates:
        Training snapshots compared (the last is the final network).
    selected_value:
        Exact value of the returned snapshot against the opponent mixture.
    diversity:
        Exact whole-policy diversity score (unweighted) of the returned snapshot.
    """

    diversity_bonus_mean: float | None = _unless_diversity()
    diversity_candidate: int | None = _unless_diversity()
    diversity_candidates: int | None = _unless_diversity()
    selected_value: float | None = _unless_diversity()
    diversity: float | None = _unless_diversity()


@dataclasses.dataclass(eq=False)
class BestResponseResult:
    """What an oracle returns.

    Attributes
    ----------
    policy:
        ``float64[I, A]`` tabular policy of the responding player (the network's greedy
        policy for network oracles).
    parameters:
        Trained parameters (network oracles) or None.
    episodes:
        Training episodes used (0 for the exact oracle).
    metrics:
        The oracle's numbers for the run log (its :class:`OracleMetrics` subclass).
    """

    policy: np.ndarray
    parameters: StateDict | None = None
    episodes: int = 0
    metrics: OracleMetrics = dataclasses.field(default_factory=OracleMetrics)


class Oracle(abc.ABC):
    """A best-response oracle, registered by name with :func:`fusion_psro.register_oracle`.

    Its class attributes declare what it can do; the PSRO settings are validated by asking
    them (never by the oracle's name).
    """

    #: Name on the command line and in run configs (set when the class is registered).
    name: str = ""
    #: Whether the oracle trains parameters (and so whether initialization strategies apply).
    trains_parameters: bool = False
    #: Game kinds (:data:`fusion_psro.registry.GAME_KINDS`) whose policy spaces it serves.
    game_kinds: tuple[str, ...] = ()
    #: Whether it can add a diversity term (through the term's hooks for the game kind).
    optimizes_diversity: bool = False
    #: Whether it also weighs the payoff by the term's ``payoff_weight`` (diversity schedules
    #: such as ``prior-code`` that scale both parts of the objective).
    weighs_payoff: bool = False
    #: Whether one response can play both seats (a shared population of two-seat agents).
    shared_population: bool = False
    #: Whether it honours ``request.checkpoints`` (snapshots of one training run at budgets).
    takes_checkpoints: bool = False
    #: Schemes :meth:`scratch_parameters` accepts (the scratch initializations that apply).
    scratch_schemes: tuple[str, ...] = ()
    #: Frozen dataclass of the oracle's settings (``--oracle-option KEY=VALUE``), or None.
    settings_class: type | None = None
    #: The setting that is a best response's training budget (``"episodes"``, ``"steps"``),
    #: in which ``checkpoints`` count; None for oracles that do not train. A run's
    #: ``--episodes`` feeds an ``"episodes"`` budget.
    budget_setting: str | None = None
    #: Whether its parameters end in an output layer it can name (:meth:`output_layer_names`).
    has_output_layer: bool = False
    #: Whether it can fit its network to a mixture's behaviour strategy (:meth:`distill`).
    distills: bool = False
    #: Whether :meth:`best_responses` trains many requests through one batched computation
    #: (faster than one after the other); every oracle answers :meth:`best_responses`.
    batches_responses: bool = False

    @classmethod
    def from_space(cls, space, settings) -> Oracle:
        """The oracle for a policy space (:mod:`fusion_psro.psro.spaces`) and its settings."""
        raise NotImplementedError(f"{cls.__name__} does not say how to build itself for a policy space")

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """Names of the settings ``--oracle-option`` accepts."""
        return tuple(f.name for f in dataclasses.fields(cls.settings_class)) if cls.settings_class else ()

    @classmethod
    def settings(cls, options: Mapping[str, object]) -> Any:
        """``options`` validated into :attr:`settings_class` (None for an oracle without settings)."""
        unknown = sorted(set(options) - set(cls.option_names()))
        if unknown:
            accepted = ", ".join(sorted(cls.option_names())) or "none (it has no settings)"
            raise ConfigError(f"unknown {cls.name or cls.__name__} oracle option(s) {unknown}; accepted: {accepted}")
        try:
            return cls.settings_class(**options) if cls.settings_class else None
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def create(cls, space, options: Mapping[str, object]) -> Oracle:
        """Validate ``options`` against :attr:`settings_class` and build the oracle for ``space``."""
        return cls.from_space(space, cls.settings(options))

    # What a policy space needs to know of the oracle before building it; ``settings`` is
    # what :meth:`settings` returns.

    @classmethod
    def member_hidden_sizes(cls, settings: Any) -> tuple[int, ...] | None:
        """Hidden widths of the MLP each of its members is (sampled play writes members as network
        vectors, :mod:`~fusion_psro.oracles.network_policy`); None: its members are no such networks."""
        return None

    @classmethod
    def member_vector(cls, settings: Any, parameters: StateDict) -> np.ndarray:
        """The policy vector of the member with ``parameters``, as the oracle's members act (sampled play:
        :mod:`~fusion_psro.oracles.network_policy`); oracles whose members are no networks raise."""
        raise OracleError(f"the {cls.name or cls.__name__} oracle's members are no networks that play sampled games")

    @classmethod
    def start_point_scale(cls, settings: Any) -> float | None:
        """On the mixture game, the scale of the random start point of every population; None: the space's default."""
        return None

    @abc.abstractmethod
    def best_response(self, request: BestResponseRequest) -> BestResponseResult:
        """Compute a best response to the opponent's meta-strategy mixture."""

    def best_responses(self, requests: Sequence[BestResponseRequest], *,
                       device: str | None = None) -> list[BestResponseResult]:
        """The responses to ``requests`` (independent best responses, possibly of several runs that
        share this oracle's game and settings), in order.

        Each result is the one :meth:`best_response` returns for its request, up to the
        rounding of a batched computation, except where an oracle says otherwise (the DQN's
        batched training draws its samples for all requests at once: the same rule, other
        samples; :meth:`~fusion_psro.oracles.dqn.DQNOracle.best_responses`). This default
        computes them one after the other;
        oracles with :attr:`batches_responses` train them together. ``device`` (``"cpu"``,
        ``"cuda"``, ``"auto"``) replaces the oracle's own device setting for a batched
        computation; it is ignored here.
        """
        return [self.best_response(request) for request in requests]

    def check_checkpoints(self, request: BestResponseRequest, training_episodes: int) -> None:
        """:class:`OracleError` unless every checkpoint of ``request`` lies within ``training_episodes``."""
        if not request.checkpoints:
            return
        if not self.takes_checkpoints:
            raise OracleError(f"the {self.name or type(self).__name__} oracle takes no checkpoints")
        beyond = [budget for budget in request.checkpoints if budget > training_episodes]
        if beyond:
            raise OracleError(
                f"checkpoints {beyond} lie beyond the {training_episodes} training episodes of a best response"
            )

    def output_layer_names(self, player: int) -> tuple[str, ...]:
        """Names of the output layer's tensors in ``player``'s parameters (oracles with :attr:`has_output_layer`)."""
        raise OracleError(f"the {self.name or type(self).__name__} oracle's policies have no output layer")

    def distill(self, player: int, parameters: StateDict, population: np.ndarray, weights: np.ndarray,
                opponent_policies: np.ndarray | None, opponent_weights: np.ndarray | None, *, steps: int,
                learning_rate: float, sampled_games: int | None = None, seed: int = 0) -> StateDict:
        """``parameters`` fitted by ``steps`` supervised Adam steps to the behaviour strategy of the
        mixture ``weights @ population`` of ``player``'s policies (oracles with :attr:`distills`).

        With ``sampled_games``, the fit sees only that many games of the mixture against the
        opponent mixture, sampled from ``seed``
        (:func:`~fusion_psro.games.play_statistics.sample_play`), nothing computed exactly.
        """
        raise OracleError(f"the {self.name or type(self).__name__} oracle cannot fit its network to a policy")

    def network(self, player: int, parameters: StateDict) -> Any:
        """``player``'s policy with ``parameters`` as a torch module (oracles whose members are networks)."""
        raise OracleError(f"the {self.name or type(self).__name__} oracle's members are not networks")

    def spending(self, spent: int) -> Oracle:
        """This oracle with ``spent`` taken off its training budget (itself when ``spent`` is 0).

        For oracles whose settings (``self.config``, a dataclass) hold the budget named by
        :attr:`budget_setting`; a copy shares everything else. Spending the whole budget or
        more is an :class:`~fusion_psro.errors.OracleError`.
        """
        if not spent:
            return self
        budget = getattr(self.config, self.budget_setting) if self.budget_setting else 0
        if spent >= budget:
            raise OracleError(f"the start spent {spent} of the {budget} {self.budget_setting or 'budget'} of a best "
                              "response, leaving none to train")
        other = copy.copy(self)
        other.config = dataclasses.replace(self.config, **{self.budget_setting: budget - spent})
        return other

    def acting_policy(self, player: int, parameters: StateDict) -> np.ndarray | None:
        """The stochastic ``float64[I, A]`` policy a network with ``parameters`` plays (what the
        loop's start distance in policy compares); None for oracles without tabular policies."""
        return None

    def diagnostics(self, player: int, parameters: StateDict | None) -> dict[str, Any]:
        """Numbers that describe a response's parameters (a network's dead units, norm, ...); none by default."""
        return {}

    def scratch_parameters(self, player: int, scheme: str, seed: int) -> StateDict:
        """Fresh parameters for ``player``'s network initialized with ``scheme``.

        ``scheme`` is one of :attr:`scratch_schemes`. Oracles without parameters raise
        :class:`~fusion_psro.errors.OracleError`.
        """
        raise OracleError(f"the {self.name or type(self).__name__} oracle has no parameters to initialize")
