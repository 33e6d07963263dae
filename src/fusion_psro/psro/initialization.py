"""Where a new best-response network starts: scratch, inherited, Nash Policy Fusion, and its variants.

Each strategy is an :class:`Initialization` registered by name in
:data:`fusion_psro.registry.INITS` (``--init``); it declares which oracles it applies to
(:meth:`Initialization.unsupported_by`) and whether it builds on the population
(:attr:`Initialization.builds_on_population`: then ``fusion_start`` and
``fusion_fallback`` apply to it, and it cannot itself be the fallback). The built-in ones:

* ``normal``, ``orthogonal``, ``kaiming``: fresh weights from that scheme (the oracle
  defines the exact distributions, see :meth:`fusion_psro.oracles.base.Oracle.scratch_parameters`).
* ``inherit``: a copy of the player's previous best response ("Inherited-BR").
* ``fusion``: Nash Policy Fusion (Lian, Huang et al., *Fusion-PSRO*, ECAI 2025): the
  meta-Nash-weighted average of the parameters of the player's own population,
  ``theta_new = sum_k sigma(k) theta_k``, every tensor of the network. The oracle copies
  it into its target network and starts a fresh optimizer. Fusion starts at iteration
  ``fusion_start``; before it, and whenever no member with positive weight has
  parameters, the ``fusion_fallback`` strategy is used (:func:`fall_back`). Its setting
  ``weights`` (:class:`FusionSettings`) replaces the meta-Nash by another weighting of the
  average (``uniform``, ``recent:K``, ``ema:B``, ``random``, ``argmax``;
  :func:`fusion_weights`), to separate averaging from Nash weighting.
* ``fusion-perturb``, ``fusion-inherit``, ``fusion-floor``: fusion, except when the player's
  newest best response entered the meta-Nash with weight 0 (where a deterministic oracle
  would rebuild the same start and return the same response): then the fused start shrunk
  and perturbed, ``inherit``'s start, or fusion with the newest response's weight raised to
  a floor (:class:`FusionRemedy`).
* ``shrink-perturb``: ``lambda * fused + (1 - lambda) * fresh`` (Ash and Adams 2020);
  ``fusion-reset-output``: the fused network with a freshly drawn output layer;
  ``nash-distill``: a fresh network fitted to the exact behaviour strategy of the
  player's meta-Nash mixture. These keep fusion's head start or its target without its
  warm-start problems; they follow fusion's start iteration and fallback. Their settings
  (``--init-option``) are :class:`ShrinkPerturbSettings` and :class:`DistillSettings`.

Members without parameters (the uniform policy that seeds every population) take no part
in fusion: the weights of the members that have parameters are renormalized. With the
exact oracle there is nothing to initialize and any ``--init`` is an error.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fusion_psro import options
from fusion_psro.errors import ConfigError, FusionPSROError
from fusion_psro.psro.population import StateDict
from fusion_psro.registry import INITS, component_settings, register_init

if TYPE_CHECKING:
    import torch

class FusionError(FusionPSROError, ValueError):
    """Parameters that cannot be fused (different architectures, bad weights)."""


def fuse_parameters(parameters: Sequence[StateDict], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Weighted average of state dicts: ``sum_k weights[k] * parameters[k]``, tensor by tensor.

    Members with zero weight are skipped. Every member must have the same tensor names and
    shapes; a mismatch is a :class:`FusionError` naming the tensor and the members.
    Floating-point tensors are averaged in float64 and cast back to their dtype; other
    tensors (integer buffers such as step counters) are copied from the heaviest member.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if len(parameters) != weights.shape[0] or weights.ndim != 1:
        raise FusionError(f"got {len(parameters)} parameter sets but weights of shape {weights.shape}")
    if len(parameters) == 0:
        raise FusionError("nothing to fuse: the population has no members with parameters")
    if not np.isfinite(weights).all() or (weights < 0).any() or abs(weights.sum() - 1.0) > 1e-6:
        raise FusionError(f"fusion weights must be a probability vector, got {weights.tolist()}")
    members = [k for k in range(len(parameters)) if weights[k] > 0]
    reference_index = members[int(np.argmax(weights[members]))]
    reference = parameters[reference_index]
    for k in members:
        if set(parameters[k]) != set(reference):
            raise FusionError(
                f"cannot fuse members {reference_index} and {k}: their networks have different tensors "
                f"({sorted(set(parameters[k]) ^ set(reference))}); fusion needs one architecture per population"
            )
        for name, tensor in parameters[k].items():
            if tensor.shape != reference[name].shape:
                raise FusionError(
                    f"cannot fuse members {reference_index} and {k}: tensor {name!r} has shape "
                    f"{tuple(reference[name].shape)} in one and {tuple(tensor.shape)} in the other; "
                    "fusion needs one architecture per population"
                )
    import torch  # noqa: PLC0415 (reading runs does not load PyTorch)

    member_weights = torch.tensor(weights[members], dtype=torch.float64)
    fused = {}
    # One thread: these are small memory-bound sums, and torch's default thread pool was
    # measured 100x slower (1.5 s instead of 17 ms for 15 Leduc networks) on busy cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, tensor in reference.items():
            if tensor.is_floating_point():
                stacked = torch.stack([parameters[k][name].detach().to(torch.float64) for k in members])
                fused[name] = torch.tensordot(member_weights, stacked, dims=1).to(tensor.dtype)
            else:
                fused[name] = tensor.detach().clone()
    finally:
        torch.set_num_threads(threads)
    return fused


@dataclasses.dataclass(frozen=True)
class InitializationChoice:
    """The parameters a new best response starts from, and how they were chosen."""

    parameters: StateDict | None
    strategy: str
    fusion_seconds: float = 0.0
    #: Training budget the start spent (in the unit of the oracle's ``budget_setting``), which
    #: the best response then lacks (a distillation charged to the budget).
    budget_spent: int = 0


@dataclasses.dataclass(frozen=True, eq=False)
class StartContext:
    """What an initialization may look at to choose a new best response's parameters.

    Attributes
    ----------
    oracle:
        The oracle that will train from them (its ``scratch_parameters`` draw fresh ones).
    player, iteration, seed:
        Whose response, at which PSRO iteration (the first is 1), and the seed of its draws.
    population_parameters:
        Parameters of each member of the player's own population (None for members without).
    meta_strategy:
        The player's meta-strategy over that population (the fusion weights).
    previous_parameters:
        Parameters of the player's previous best response (``inherit``), or None.
    fusion_start, fusion_fallback:
        First iteration that fuses, and the strategy used before it.
    population_policies:
        The tabular policies of the player's population (what its meta-strategy mixes).
    opponent_policies, opponent_weights:
        The opponent mixture the new response will be trained against.
    settings:
        The init's settings (an instance of its :attr:`Initialization.settings_class`), or None.
    previous_index:
        The previous best response's index in the population, or None when it is not a member.
        It is the start ``inherit`` copies: in PSRO the player's newest best response, in
        PSRO-rN the member the new response rectifies.
    newest_index:
        The index of the player's newest best response in the population (its weight in
        ``meta_strategy`` is 0 when it entered the meta-Nash with weight 0), or None when it is
        not a member; when not given, ``previous_index``.
    """

    oracle: Any
    player: int
    iteration: int
    seed: int
    population_parameters: Sequence[StateDict | None] = ()
    meta_strategy: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    previous_parameters: StateDict | None = None
    fusion_start: int = 1
    fusion_fallback: str = "normal"
    population_policies: Sequence[np.ndarray] = ()
    opponent_policies: np.ndarray | None = None
    opponent_weights: np.ndarray | None = None
    settings: Any = None
    previous_index: int | None = None
    newest_index: int | None = None

    @property
    def newest_response_index(self) -> int | None:
        """The population index of the player's newest best response (``newest_index``, else ``previous_index``)."""
        return self.previous_index if self.newest_index is None else self.newest_index

    @property
    def newest_unused(self) -> bool:
        """Whether the player's newest best response is a member with parameters and weight 0 in the
        meta-strategy (it entered the meta-Nash with weight 0), and there is a previous best response."""
        k = self.newest_response_index
        return (k is not None and self.previous_parameters is not None and k < len(self.meta_strategy)
                and self.population_parameters[k] is not None and float(self.meta_strategy[k]) <= 0)


class Initialization(abc.ABC):
    """A way to choose where a new best response starts; register it with :func:`fusion_psro.register_init`."""

    #: Registered name (set when registered).
    name: str = ""
    #: Whether it builds on the player's population, as fusion does: ``fusion_start`` and
    #: ``fusion_fallback`` apply to it (it calls :func:`fall_back` until it has something to
    #: build on), and it cannot be a ``fusion_fallback`` itself. False: it needs no
    #: population, and can stand in for fusion before ``fusion_start``.
    builds_on_population: bool = False
    #: Frozen dataclass of its settings (``--init-option KEY=VALUE``), or None.
    settings_class: type | None = None

    def unsupported_by(self, oracle_class: type) -> str | None:
        """Why it cannot start ``oracle_class``'s best responses, or None if it can."""
        return None

    def unsupported_on(self, game_kind: type) -> str | None:
        """Why it cannot be used on games of ``game_kind`` (a policy space class), or None if it can."""
        return None

    def unsupported_with(self, settings: Any, oracle_class: type, budget: int) -> str | None:
        """Why its ``settings`` do not apply to ``oracle_class`` whose best responses have
        ``budget`` (in the unit of its ``budget_setting``), or None if they do."""
        return None

    def settings(self, options: dict[str, Any]) -> Any:
        """Its settings from ``options`` (a :class:`ConfigError` names unknown or bad ones)."""
        return component_settings(f"{self.name} init", self.settings_class, options)

    def settings_read(self) -> tuple[str, ...]:
        """The :class:`~fusion_psro.psro.PSROConfig` settings it reads besides its own: the fusion
        schedule, if it builds on the population."""
        return ("fusion_start", "fusion_fallback") if self.builds_on_population else ()

    @abc.abstractmethod
    def choose(self, context: StartContext) -> InitializationChoice:
        """The starting parameters for the best response ``context`` describes."""


class ScratchInit(Initialization):
    """Fresh parameters from one of the oracle's scratch schemes."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    def unsupported_by(self, oracle_class: type) -> str | None:
        if self.scheme not in oracle_class.scratch_schemes:
            return f"its scratch schemes are: {', '.join(oracle_class.scratch_schemes) or 'none'}"
        return None

    def choose(self, context: StartContext) -> InitializationChoice:
        parameters = context.oracle.scratch_parameters(context.player, self.scheme, context.seed)
        return InitializationChoice(parameters, self.scheme)


class InheritInit(Initialization):
    """A copy of the player's previous best response ("Inherited-BR"); the first one starts from ``normal``."""

    def choose(self, context: StartContext) -> InitializationChoice:
        if context.previous_parameters is None:  # the first best response has nobody to inherit from
            return INITS.get("normal").choose(context)
        copied = {k: v.detach().clone() for k, v in context.previous_parameters.items()}
        return InitializationChoice(copied, "inherit")


#: The weightings of ``--init fusion --init-option weights=W`` (``K`` and ``B`` stand for numbers).
WEIGHTINGS = ("nash", "uniform", "recent:K", "ema:B", "random", "argmax")
_WEIGHTINGS_TEXT = ("nash, uniform, recent:K (K an integer >= 1), ema:B (B a number in [0, 1)), random or argmax")
#: Seed path of the ``random`` weighting's Dirichlet draw, beside the start's own seed.
_RANDOM_WEIGHTS_DRAW = 1


def parse_weighting(text: object) -> tuple[str, float | int | None]:
    """``"recent:5"`` -> ``("recent", 5)``, ``"nash"`` -> ``("nash", None)``; a :class:`ConfigError` names a bad one."""
    kind, colon, argument = text.partition(":") if isinstance(text, str) else ("", "", "")
    try:
        if kind in ("nash", "uniform", "random", "argmax") and not colon:
            return kind, None
        if kind == "recent" and argument.strip().isdigit() and int(argument) >= 1:
            return kind, int(argument)
        if kind == "ema" and 0 <= float(argument) < 1:
            return kind, float(argument)
    except ValueError:
        pass
    raise ConfigError(f"weights must be one of {_WEIGHTINGS_TEXT}; got {text!r}")


@dataclasses.dataclass(frozen=True)
class FusionSettings:
    """Settings of :class:`FusionInit`."""

    #: How the members are weighted in the average (:func:`fusion_weights`): ``nash`` (the
    #: paper's, the meta-Nash), ``uniform``, ``recent:K``, ``ema:B``, ``random``, ``argmax``.
    weights: str = "nash"

    def __post_init__(self) -> None:
        parse_weighting(self.weights)


def fusion_weights(weighting: str, meta_strategy: np.ndarray, has_parameters: Sequence[bool],
                   seed: int = 0) -> np.ndarray | None:
    """The fusion weights of the members that have parameters, in population order (a
    probability vector), or None when the weighting puts no weight on any of them.

    ``nash``: the meta-strategy, renormalized; ``uniform``: equal weights; ``recent:K``:
    equal weights on the last ``K``; ``ema:B``: the exponential moving average of the members
    in order, ``e_1 = theta_1``, ``e_k = B e_(k-1) + (1 - B) theta_k`` (weights ``B^(n-1)``
    for the first, ``(1 - B) B^(n-k)`` for member ``k > 1``); ``random``: a flat Dirichlet
    draw on the members in the meta-strategy's support, seeded by ``seed``; ``argmax``: all
    on the heaviest member of the meta-strategy (ties to the earliest).
    """
    kind, argument = parse_weighting(weighting)
    index = np.flatnonzero(np.asarray(has_parameters, dtype=bool))
    sigma = np.asarray(meta_strategy, dtype=np.float64)[index] if index.size else np.zeros(0)
    n = index.size
    if kind == "nash":
        weights = sigma
    elif kind == "uniform":
        weights = np.ones(n)
    elif kind == "recent":
        weights = (np.arange(n) >= n - argument).astype(np.float64)
    elif kind == "ema":
        weights = (1 - argument) * argument ** (n - 1 - np.arange(n, dtype=np.float64))
        weights[:1] = argument ** (n - 1)
    elif kind == "random":
        support = sigma > 0
        weights = np.zeros(n)
        rng = np.random.default_rng(np.random.SeedSequence([seed, _RANDOM_WEIGHTS_DRAW]))
        weights[support] = rng.dirichlet(np.ones(int(support.sum()))) if support.any() else 0.0
    else:  # argmax
        weights = np.zeros(n)
        if n and sigma.max() > 0:
            weights[int(np.argmax(sigma))] = 1.0
    if n == 0 or weights.sum() <= 0:
        return None
    return weights / weights.sum()


class FusionInit(Initialization):
    """Nash Policy Fusion: the meta-Nash-weighted average of the population's parameters
    (or another weighting of the average, :class:`FusionSettings`)."""

    settings_class = FusionSettings

    builds_on_population = True

    def choose(self, context: StartContext) -> InitializationChoice:
        weighting = context.settings.weights if isinstance(context.settings, FusionSettings) else "nash"
        fused = fused_population(context, weighting)
        return fall_back(context) if fused is None else fused


def fused_population(context: StartContext, weighting: str = "nash") -> InitializationChoice | None:
    """The fused start of ``context``, or None before ``fusion_start`` or with nothing to fuse.

    Members without parameters take no part; the weights of the others
    (:func:`fusion_weights` of ``weighting``) are renormalized.
    """
    has_parameters = [p is not None for p in context.population_parameters]
    weights = fusion_weights(weighting, context.meta_strategy, has_parameters, context.seed)
    if context.iteration < context.fusion_start or weights is None:
        return None
    started = time.perf_counter()
    members = [p for p in context.population_parameters if p is not None]
    fused = fuse_parameters(members, weights)
    return InitializationChoice(fused, "fusion", time.perf_counter() - started)


def _fresh(context: StartContext) -> StateDict:
    """A fresh ``normal`` draw for the same network (the noise the fusion variants below add)."""
    return context.oracle.scratch_parameters(context.player, "normal", context.seed)


def _needs_normal(oracle_class: type) -> str | None:
    return None if "normal" in oracle_class.scratch_schemes else "it has no normal scratch scheme to draw fresh weights"


@dataclasses.dataclass(frozen=True)
class ShrinkPerturbSettings:
    """Settings of :class:`ShrinkPerturbInit`."""

    #: Weight ``lambda`` of the fused parameters; ``1 - lambda`` goes to the fresh draw.
    shrink: float = 0.5

    def __post_init__(self) -> None:
        options.probability(self.shrink, "shrink")


class ShrinkPerturbInit(Initialization):
    """Shrink and perturb applied to fusion: ``lambda * fused + (1 - lambda) * fresh``.

    Ash and Adams (NeurIPS 2020, *On warm-starting neural network training*) found that a
    warm-started network trains worse than a fresh one, and that shrinking its weights
    and adding fresh noise restores what it lost. Here the warm start is the fused
    network and the noise a fresh ``normal`` draw; before ``fusion_start``, or with
    nothing to fuse, the fallback init is used as for fusion.
    """

    settings_class = ShrinkPerturbSettings
    builds_on_population = True

    def unsupported_by(self, oracle_class: type) -> str | None:
        return _needs_normal(oracle_class)

    def choose(self, context: StartContext) -> InitializationChoice:
        fused = fused_population(context)
        if fused is None:
            return fall_back(context)
        shrink = (context.settings or ShrinkPerturbSettings()).shrink
        return InitializationChoice(shrink_and_perturb(fused.parameters, _fresh(context), shrink), self.name,
                                    fused.fusion_seconds)


def shrink_and_perturb(parameters: StateDict, fresh: StateDict, shrink: float) -> dict[str, torch.Tensor]:
    """``shrink * parameters + (1 - shrink) * fresh``, tensor by tensor (non-float tensors kept)."""
    return {name: (shrink * tensor.double() + (1 - shrink) * fresh[name].double()).to(tensor.dtype)
            if tensor.is_floating_point() else tensor for name, tensor in parameters.items()}


class FusionResetOutputInit(Initialization):
    """Fusion with the output layer drawn afresh: the fused features, a new head.

    A fused Q-network keeps the averaged scale of its members' outputs; its last layer,
    drawn fresh (``normal``), starts from small outputs while the hidden layers keep what
    the population learned.
    """

    builds_on_population = True

    def unsupported_by(self, oracle_class: type) -> str | None:
        if not getattr(oracle_class, "has_output_layer", False):
            return "its policies have no output layer"
        return _needs_normal(oracle_class)

    def choose(self, context: StartContext) -> InitializationChoice:
        fused = fused_population(context)
        if fused is None:
            return fall_back(context)
        fresh = _fresh(context)
        head = set(context.oracle.output_layer_names(context.player))
        parameters = {name: fresh[name] if name in head else tensor for name, tensor in fused.parameters.items()}
        return InitializationChoice(parameters, self.name, fused.fusion_seconds)


class FusionRemedy(Initialization):
    """Fusion that acts differently when the player's newest best response entered the meta-Nash with weight 0.

    With a deterministic oracle such as pg, a fused start is a function of the population and
    its meta-Nash; once a response enters with weight 0, the next fused start is the same, and
    so is the response: the run adds the same member at every later iteration. A remedy
    changes the start in exactly that case (:meth:`remedy`) and is plain fusion otherwise
    (recorded under its own name either way). The case is read off the newest response
    (:attr:`StartContext.newest_unused`), not off the member ``inherit`` would copy: in
    PSRO-rN that member is the one being rectified, always in the support.
    """

    builds_on_population = True

    def choose(self, context: StartContext) -> InitializationChoice:
        fused = fused_population(context)
        if fused is None:
            return fall_back(context)
        if context.newest_unused:
            return self.remedy(context, fused)
        return dataclasses.replace(fused, strategy=self.name)

    @abc.abstractmethod
    def remedy(self, context: StartContext, fused: InitializationChoice) -> InitializationChoice:
        """The start when the newest best response has weight 0 (``fused``: plain fusion's)."""


class FusionPerturbInit(FusionRemedy):
    """Remedy (a): shrink and perturb the fused start, ``shrink * fused + (1 - shrink) * fresh``
    (:class:`ShrinkPerturbSettings`), the fresh draw seeded by the start's seed."""

    settings_class = ShrinkPerturbSettings

    def unsupported_by(self, oracle_class: type) -> str | None:
        return _needs_normal(oracle_class)

    def remedy(self, context: StartContext, fused: InitializationChoice) -> InitializationChoice:
        shrink = (context.settings or ShrinkPerturbSettings()).shrink
        return InitializationChoice(shrink_and_perturb(fused.parameters, _fresh(context), shrink), self.name,
                                    fused.fusion_seconds)


class FusionInheritInit(FusionRemedy):
    """Remedy (b): a copy of the previous best response (``inherit``) instead of the fused start."""

    def remedy(self, context: StartContext, fused: InitializationChoice) -> InitializationChoice:
        copied = {k: v.detach().clone() for k, v in context.previous_parameters.items()}
        return InitializationChoice(copied, self.name, fused.fusion_seconds)


@dataclasses.dataclass(frozen=True)
class FloorSettings:
    """Settings of :class:`FusionFloorInit`."""

    #: The weight the newest best response gets in the average; the meta-Nash weights of
    #: the other members share ``1 - floor``.
    floor: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.floor, bool) or not isinstance(self.floor, (int, float)) or not 0 < self.floor <= 1:
            raise ConfigError(f"floor must be a number in (0, 1], got {self.floor!r}")


class FusionFloorInit(FusionRemedy):
    """Remedy (c): fusion with the newest best response's weight raised to ``floor``
    (:class:`FloorSettings`), the other members' meta-Nash weights scaled to ``1 - floor``."""

    settings_class = FloorSettings

    def remedy(self, context: StartContext, fused: InitializationChoice) -> InitializationChoice:
        floor = (context.settings or FloorSettings()).floor
        has_parameters = [p is not None for p in context.population_parameters]
        weights = (1 - floor) * fusion_weights("nash", context.meta_strategy, has_parameters)
        weights[sum(has_parameters[: context.newest_response_index])] = floor
        started = time.perf_counter()
        parameters = fuse_parameters([p for p in context.population_parameters if p is not None], weights)
        return InitializationChoice(parameters, self.name, time.perf_counter() - started)


#: What Nash distillation fits: the engine's exact targets, or only sampled games.
DISTILL_TARGETS = ("exact", "sampled")


@dataclasses.dataclass(frozen=True)
class DistillSettings:
    """Settings of :class:`NashDistillInit`."""

    #: Full-batch Adam steps of the supervised fit.
    steps: int = 500
    #: Adam step size of the fit.
    learning_rate: float = 1e-3
    #: ``exact``: the mixture's exact behaviour strategy (pg) or action values (DQN);
    #: ``sampled``: only what ``games`` sampled games of the mixture show (its empirical
    #: policy; the DQN: the Monte Carlo returns of its decisions).
    target: str = "exact"
    #: Games sampled with ``target="sampled"``.
    games: int = 1000
    #: Whether the fit counts against the best response's training budget: the supervised
    #: ``steps`` against a budget of gradient steps (pg), the sampled ``games`` against a
    #: budget of episodes (DQN, with ``target="sampled"``).
    charge: bool = False

    def __post_init__(self) -> None:
        options.positive_int(self.steps, "steps")
        options.positive_int(self.games, "games")
        options.positive_float(self.learning_rate, "learning_rate")
        if self.target not in DISTILL_TARGETS:
            raise ConfigError(f"target must be one of {', '.join(DISTILL_TARGETS)}, got {self.target!r}")
        if not isinstance(self.charge, bool):
            raise ConfigError(f"charge must be true or false, got {self.charge!r}")

    def cost(self, budget_setting: str | None) -> int | None:
        """What the fit spends of a budget counted in ``budget_setting`` (None: nothing it can count)."""
        if budget_setting == "steps":
            return self.steps
        if budget_setting == "episodes" and self.target == "sampled":
            return self.games
        return None


class NashDistillInit(Initialization):
    """A fresh network fitted to the player's meta-Nash mixture: its policy, not its parameters' average.

    The mixture "draw a member by its meta-Nash weight, then follow it" is one behaviour
    strategy, which the engine computes exactly from the weighted realization plans (every
    member counts, the parameter-less first one too). A fresh ``normal`` network is fitted
    to it by supervised full-batch steps, as the oracle defines the fit
    (:meth:`distill`: the pg oracle fits its softmax by cross-entropy; the DQN fits its
    Q-values to the mixture's exact action values against the opponent mixture, so its
    values are the mixture's and its greedy policy the mixture's one-step improvement).
    """

    settings_class = DistillSettings
    builds_on_population = True

    def unsupported_by(self, oracle_class: type) -> str | None:
        if not getattr(oracle_class, "distills", False):
            return "it cannot fit its network to a policy"
        return _needs_normal(oracle_class)

    def unsupported_on(self, game_kind: type) -> str | None:
        if not getattr(game_kind, "exact", True):
            return f"the mixture's exact behaviour strategy it fits is not computed on {game_kind.description}"
        return None

    def unsupported_with(self, settings: Any, oracle_class: type, budget: int) -> str | None:
        if settings is None or not settings.charge:
            return None
        cost = settings.cost(oracle_class.budget_setting)
        if cost is None:
            return (f"charge=true counts the fit against the budget, but the oracle's budget is "
                    f"{oracle_class.budget_setting or 'none'}: steps count gradient steps (pg), episodes count "
                    "sampled games (give target=sampled)")
        if cost >= budget:
            return f"charge=true spends {cost} of the {budget} {oracle_class.budget_setting} of a best response"
        return None

    def choose(self, context: StartContext) -> InitializationChoice:
        weights = np.asarray(context.meta_strategy, dtype=np.float64)
        if context.iteration < context.fusion_start or not len(context.population_policies) or weights.sum() <= 0:
            return fall_back(context)
        settings = context.settings or DistillSettings()
        sampled = settings.target == "sampled"
        started = time.perf_counter()
        parameters = context.oracle.distill(
            context.player, _fresh(context), np.stack(context.population_policies), weights / weights.sum(),
            context.opponent_policies, context.opponent_weights, steps=settings.steps,
            learning_rate=settings.learning_rate, **({"sampled_games": settings.games, "seed": context.seed}
                                                     if sampled else {}),
        )
        spent = (settings.cost(context.oracle.budget_setting) or 0) if settings.charge else 0
        return InitializationChoice(parameters, self.name, time.perf_counter() - started, budget_spent=spent)


def fall_back(context: StartContext) -> InitializationChoice:
    """The start chosen by ``context.fusion_fallback``: what an init that builds on the population
    (:attr:`Initialization.builds_on_population`) returns before ``fusion_start`` or while it
    has nothing to build on."""
    return INITS.get(context.fusion_fallback).choose(
        dataclasses.replace(context, fusion_fallback="normal", settings=None))


for _scheme in ("normal", "orthogonal", "kaiming"):
    register_init(_scheme, ScratchInit(_scheme))
register_init("inherit", InheritInit())
register_init("fusion", FusionInit())
register_init("shrink-perturb", ShrinkPerturbInit())
register_init("fusion-reset-output", FusionResetOutputInit())
register_init("nash-distill", NashDistillInit())
register_init("fusion-perturb", FusionPerturbInit())
register_init("fusion-inherit", FusionInheritInit())
register_init("fusion-floor", FusionFloorInit())
