"""PSRO variants: which best responses an iteration trains, and what joins the populations.

A variant is a :class:`Variant` subclass registered by name in
:data:`fusion_psro.registry.VARIANTS` (``--variant``). The loop drives it in rounds: it
asks :meth:`Variant.plan` for the best responses to compute next (independent of each
other, so they could run in parallel), computes them, hands them to :meth:`Variant.take`,
and repeats until ``plan`` returns none; :meth:`Variant.finish` then closes the iteration
and returns the variant's own numbers for the metrics row. A variant's settings
(``--variant-option KEY=VALUE``) are an instance of its :attr:`Variant.settings_class`, its
:attr:`Variant.settings`. A variant that keeps state between iterations saves it with
:meth:`Variant.state_dict` (JSON values; members are referred to by their index in the
populations) and restores it with :meth:`Variant.load_state_dict`, so checkpoints need
not know its fields.

A variant plans best responses for the players in ``run.players`` and changes only their
populations (through ``run.add`` and ``run.replace``). That is both players, except in a
symmetric population, where it is player 0 alone and the loop repeats player 0's members
in player 1's list; ``run.responder(p)`` names the player whose responses fill ``p``'s list.

Built-in variants:

* ``psro``: one best response per player per iteration (Lanctot et al. 2017).
* ``psro-rn``: rectified Nash (Balduzzi et al., *Open-ended learning in symmetric zero-sum
  games*, ICML 2019). The ``learners`` members with the largest meta-Nash weight each
  get a best response to the opponents they beat or tie (meta-game payoff >= half the
  utility sum, i.e. >= 0 in zero-sum games), weighted by the opponent's meta-Nash. A
  member that beats nobody trains against the full meta-Nash. With ``init=inherit`` a
  rectified learner starts from the member it improves on, as in the paper.
* ``p-psro``: pipeline PSRO (McAleer et al., NeurIPS 2020). Each player keeps
  ``learners`` active learners above a fixed population; learner ``j`` trains
  against the meta-Nash of the fixed population plus the learners below it, continuing
  from its own parameters. The lowest learner is frozen into the fixed population when its
  exact value against its opponent mixture improves by less than ``plateau`` in
  an iteration (the plateau test) or after ``max_iterations`` iterations (the
  budget), and a new learner starts at the top. Exploitability is that of the meta-Nash
  over all policies, fixed and active. Learners train one after the other, each against
  the populations as the learners before it left them; with ``parallel`` all of
  them train in one round, each against the populations as the iteration began (the
  paper's parallel pipeline), so that they can run as parallel tasks.
* ``dpp``, ``bdrd``, ``psd``: the diversity variants (DPP-PSRO, Perez-Nieves et al. 2021;
  BD&RD-PSRO, Liu et al. 2021; PSD-PSRO, Yao et al. 2023): ``psro`` with each best
  response trained on ``payoff + diversity_weight * diversity``, the term named by the
  variant's :attr:`Variant.diversity` (formulas in :mod:`fusion_psro.oracles.diversity`).
  The prior code runs them on top of its pipeline of learners; here they extend the plain
  loop, so that a comparison with ``psro`` isolates the diversity term.
* ``p-dpp``, ``p-bdrd``, ``p-psd``: the same terms on the ``p-psro`` pipeline, as the
  mixture-game code of DPP- and PSD-PSRO runs them: each learner's term is measured
  against the members below it and their meta-strategy, the population it responds to.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fusion_psro.psro.population import Member, StateDict
from fusion_psro.errors import ConfigError
from fusion_psro.registry import component_settings, register_variant

if TYPE_CHECKING:
    from fusion_psro.psro.loop import PSRO, Response


def frozen_weights(weights: Any) -> np.ndarray:
    """A read-only float copy of ``weights`` (a meta-strategy that later solves cannot change)."""
    array = np.array(weights, dtype=np.float64)
    array.flags.writeable = False
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class ResponsePlan:
    """One best response a variant asks the loop to compute; frozen when made.

    The member lists become tuples and the weights read-only copies, so a plan describes
    the populations and meta-strategies as they were when it was planned, also inside
    :meth:`Variant.take`, after ``run.add`` has grown the populations.

    Attributes
    ----------
    player:
        The responding player.
    opponents, opponent_weights:
        The opponent members and the mixture over them to respond to.
    seed:
        Seed of the oracle call and of the initialization's draws.
    own, own_weights:
        The population (and its meta-strategy) that initializations such as fusion draw on.
    previous:
        The member ``inherit`` copies (None: the player's last best response).
    continue_from:
        Parameters to keep training (no initialization is chosen), or None.
    diversity:
        The diversity term of the objective (:class:`fusion_psro.oracles.diversity.DiversityTerm`), or None.
    """

    player: int
    opponents: tuple[Member, ...]
    opponent_weights: np.ndarray
    seed: int
    own: tuple[Member, ...] = ()
    own_weights: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    previous: Member | None = None
    continue_from: StateDict | None = None
    diversity: Any = None

    def __post_init__(self) -> None:
        for name in ("opponents", "own"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("opponent_weights", "own_weights"):
            object.__setattr__(self, name, frozen_weights(getattr(self, name)))

    @property
    def opponent_count(self) -> int:
        """How many opponent members the plan responds to (a prefix of the opponent's population)."""
        return len(self.opponents)

    @property
    def own_count(self) -> int:
        """How many of the player's own members the plan draws on."""
        return len(self.own)


@dataclasses.dataclass(frozen=True, eq=False)
class Snapshot:
    """The populations and meta-game as a round of an iteration was planned (:meth:`PSRO.snapshot`).

    Populations are tuples, the meta-strategies (the iteration's: they solve the meta-game
    as it was when the iteration began) and the payoff matrix read-only copies; nothing a
    variant or the loop does later changes them.
    """

    iteration: int
    populations: tuple[tuple[Member, ...], tuple[Member, ...]]
    meta_strategies: tuple[np.ndarray, np.ndarray]
    matrix: np.ndarray
    last_best_response: tuple[Member | None, Member | None]

    @property
    def sizes(self) -> tuple[int, int]:
        """Population sizes (the counts of ``populations``)."""
        return len(self.populations[0]), len(self.populations[1])


class Variant(abc.ABC):
    """A PSRO variant; see the module docstring. One instance serves one run.

    What :meth:`take` is given is frozen: each :class:`ResponsePlan` holds its members as
    tuples and its weights as read-only copies, made when it was planned, and
    ``run.planned`` is the :class:`Snapshot` of the populations (tuples, with their sizes),
    the payoff matrix and the iteration's meta-strategies taken just before :meth:`plan`
    was called for the round. So ``take`` sees the round as it was planned even after
    ``run.add`` has grown the live populations (``run.state``), whose meta-strategies are
    solved again only when the iteration ends.
    """

    #: Registered name (set when registered).
    name: str = ""
    #: Its name in reports and figures, e.g. ``"PSRO-rN"``.
    label: str = ""
    #: The diversity term its best responses carry (a name in ``DIVERSITY_TERMS``), or None.
    diversity: str | None = None
    #: Whether members never change once they joined (so the populations after iteration k
    #: are the first members of the final ones).
    appends_members: bool = True
    #: Whether each best response trains against the opponent's whole meta-strategy of the
    #: iteration before (so its value can be compared with the meta-game value, as the trap
    #: report of :mod:`fusion_psro.experiments.traps` does).
    responds_to_meta_strategy: bool = True
    #: Frozen dataclass of its settings (``--variant-option KEY=VALUE``), or None; an instance
    #: is :attr:`settings`.
    settings_class: type | None = None
    #: Names that ``config.json`` files written before variants had settings gave its
    #: settings (a flat ``PSROConfig`` field -> the setting), so those runs still load.
    legacy_settings: ClassVar[dict[str, str]] = {}

    def __init__(self, settings: Any = None) -> None:
        #: Its settings (an instance of :attr:`settings_class`, defaults if none were given), or None.
        self.settings = self.settings_from({}) if settings is None else settings

    @classmethod
    def settings_from(cls, options: dict[str, Any]) -> Any:
        """Its settings from ``options`` by name (a :class:`ConfigError` names unknown or bad ones)."""
        return component_settings(f"{cls.name or cls.__name__} variant", cls.settings_class, options)

    @classmethod
    def settings_read(cls) -> tuple[str, ...]:
        """The :class:`~fusion_psro.psro.PSROConfig` settings it reads besides its own: the
        diversity weight, if its best responses carry a diversity term."""
        return ("diversity_weight",) if cls.diversity else ()

    @abc.abstractmethod
    def plan(self, run: PSRO, round: int) -> list[ResponsePlan]:
        """The best responses of round ``round`` (0, 1, ...) of this iteration; [] ends it."""

    @abc.abstractmethod
    def take(self, run: PSRO, plans: list[ResponsePlan], responses: list[Response]) -> None:
        """Integrate the responses to ``plans`` (same order; both frozen) into the populations."""

    def finish(self, run: PSRO) -> dict[str, Any]:
        """Close the iteration; returns the variant's own numbers for the metrics row."""
        return {}

    def state_dict(self, run: PSRO) -> dict[str, Any]:
        """The variant's state between iterations, as JSON values."""
        return {}

    def load_state_dict(self, run: PSRO, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the populations are already restored)."""


class PSROVariant(Variant):
    """One best response per player per iteration, both against the same meta-game."""

    label = "PSRO"

    def plan(self, run: PSRO, round: int) -> list[ResponsePlan]:
        if round > 0:
            return []
        planned, sigma = run.planned, run.planned.meta_strategies
        plans = []
        for player in run.players:
            seed = run.seed(planned.iteration, player)
            plans.append(ResponsePlan(
                player=player, opponents=planned.populations[1 - player], opponent_weights=sigma[1 - player],
                seed=seed, own=planned.populations[player], own_weights=sigma[player],
                previous=planned.last_best_response[player],
                diversity=run.diversity_term(player, seed) if self.diversity else None,
            ))
        return plans

    def take(self, run: PSRO, plans: list[ResponsePlan], responses: list[Response]) -> None:
        for plan, response in zip(plans, responses):  # both responded to the same meta-game
            run.add(plan.player, response.member)


def _check_integer(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class RectifiedNashSettings:
    """Settings of ``psro-rn`` (:class:`RectifiedNash`)."""

    #: Members (the heaviest in the meta-Nash) that get a rectified best response, per player per iteration.
    learners: int = 1

    def __post_init__(self) -> None:
        _check_integer("learners", self.learners, 1)


class RectifiedNash(Variant):
    """PSRO-rN: best responses of the heaviest members to the opponents they beat or tie."""

    label = "PSRO-rN"
    settings_class = RectifiedNashSettings
    legacy_settings: ClassVar[dict[str, str]] = {"rn_learners": "learners"}
    responds_to_meta_strategy = False

    def plan(self, run: PSRO, round: int) -> list[ResponsePlan]:
        if round > 0:
            return []
        state, sigma = run.state, run.state.meta_strategies
        threshold = run.space.utility_sum / 2
        plans = []
        for player in run.players:
            payoffs = state.meta_game.payoffs(player)
            support = np.flatnonzero(sigma[player] > 0)
            # The heaviest members first; ties to the lower index.
            chosen = support[np.argsort(-sigma[player][support], kind="stable")][: self.settings.learners]
            for slot, learner in enumerate(chosen):
                weights = sigma[1 - player] * (payoffs[learner] >= threshold - 1e-12)
                if weights.sum() <= 0:
                    weights = sigma[1 - player]
                plans.append(ResponsePlan(
                    player=player, opponents=state.populations[1 - player], opponent_weights=weights,
                    seed=run.seed(state.iteration, player, slot), own=state.populations[player],
                    own_weights=sigma[player], previous=state.populations[player][learner],
                ))
        return plans

    def take(self, run: PSRO, plans: list[ResponsePlan], responses: list[Response]) -> None:
        for plan, response in zip(plans, responses):
            run.add(plan.player, response.member)


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    """Settings of ``p-psro`` and the other pipeline variants (:class:`Pipeline`)."""

    #: Active learners per player.
    learners: int = 4
    #: Iterations a learner trains before it is frozen (the budget).
    max_iterations: int = 5
    #: Freeze the lowest learner when its exact value improves by less than this in an iteration.
    plateau: float = 1e-3
    #: Train every active learner in one round, each against the populations as the iteration
    #: began (parallel tasks with ``--workers``), instead of one after the other.
    parallel: bool = False

    def __post_init__(self) -> None:
        _check_integer("learners", self.learners, 1)
        _check_integer("max_iterations", self.max_iterations, 1)
        if isinstance(self.plateau, bool) or not isinstance(self.plateau, (int, float)) \
                or not math.isfinite(self.plateau) or self.plateau < 0:
            raise ConfigError(f"plateau must be a finite number >= 0, got {self.plateau!r}")
        if not isinstance(self.parallel, bool):
            raise ConfigError(f"parallel must be true or false, got {self.parallel!r}")


@dataclasses.dataclass
class _Learner:
    """A P-PSRO learner still in training."""

    member: Member
    iterations_trained: int = 0
    last_value: float = -np.inf


class Pipeline(Variant):
    """P-PSRO: a pipeline of active learners above a fixed population; see the module docstring."""

    label = "P-PSRO"
    appends_members = False
    settings_class = PipelineSettings
    legacy_settings: ClassVar[dict[str, str]] = {
        "pipeline_learners": "learners", "pipeline_max_iterations": "max_iterations",
        "pipeline_plateau": "plateau", "pipeline_parallel": "parallel",
    }
    responds_to_meta_strategy = False

    def __init__(self, settings: PipelineSettings | None = None) -> None:
        super().__init__(settings)
        #: Active learners per player; they are also the last members of the populations.
        self.active: list[list[_Learner]] = [[], []]
        #: The (player, slot) of the learners of the round being trained.
        self._training: list[tuple[int, int]] = []

    def plan(self, run: PSRO, round: int) -> list[ResponsePlan]:
        if round == 0:
            self._fill(run)
        slots = [(p, s) for p in run.players for s in range(len(self.active[p]))]
        if self.settings.parallel:
            # Every learner at once, each against the populations as the iteration began.
            self._training = slots if round == 0 else []
        else:
            # One learner a round: each trains against the populations the learners before it left.
            self._training = slots[round: round + 1]
        return [self._plan(run, player, slot) for player, slot in self._training]

    def _plan(self, run: PSRO, player: int, slot: int) -> ResponsePlan:
        opponents, weights, own_weights = self._target(run, player, slot)
        learner = self.active[player][slot]
        seed = run.seed(run.state.iteration, player, slot)
        diversity = None
        if self.diversity:  # measured against the members below the learner, as it responds to them
            diversity = run.diversity_term(player, seed, own_count=len(own_weights), opponent_count=len(opponents),
                                           own_meta_strategy=own_weights)
        return ResponsePlan(
            player=player, opponents=opponents, opponent_weights=weights, seed=seed,
            continue_from=learner.member.parameters if run.oracle.trains_parameters else None, diversity=diversity,
        )

    def take(self, run: PSRO, plans: list[ResponsePlan], responses: list[Response]) -> None:
        for (player, slot), response in zip(self._training, responses):
            learner, member = self.active[player][slot], response.member
            member.origin = learner.member.origin
            run.replace(player, self._index(run, player, slot), member)
            learner.member = member
            learner.iterations_trained += 1

    def finish(self, run: PSRO) -> dict[str, Any]:
        """Freeze the lowest learner on a plateau or when its budget is spent.

        In a shared population the two seats of an agent freeze together, when both do.
        """
        decisions = []
        for player in run.players:
            lowest = self.active[player][0]
            opponents, weights, _ = self._target(run, player, 0)
            value = run.space.value_against(run.state.meta_game, player, lowest.member.policy, len(opponents), weights)
            plateau = value - lowest.last_value < self.settings.plateau
            lowest.last_value = value
            decisions.append(plateau or lowest.iterations_trained >= self.settings.max_iterations)
        if run.config.population == "shared":
            decisions = [all(decisions)] * len(decisions)
        frozen = []
        for player, decision in zip(run.players, decisions):
            if decision:
                run.state.last_best_response[player] = self.active[player].pop(0).member
                frozen.append(player)
        return {"active_learners": [len(a) for a in self.active], "frozen": frozen}

    def state_dict(self, run: PSRO) -> dict[str, Any]:
        return {"active": [
            [{"index": self._index(run, p, slot), "iterations_trained": a.iterations_trained, "last_value": a.last_value}
             for slot, a in enumerate(self.active[p])]
            for p in range(2)
        ]}

    def load_state_dict(self, run: PSRO, state: dict[str, Any]) -> None:
        populations = run.state.populations
        self.active = [
            [_Learner(populations[p][a["index"]], a["iterations_trained"], a["last_value"]) for a in state["active"][p]]
            for p in range(2)
        ]

    def _fill(self, run: PSRO) -> None:
        """Start new learners above the fixed population, from the init of the run.

        Fusion draws on the fixed population and its meta-Nash. A new learner is a uniform
        placeholder until its first training.
        """
        state = run.state
        for player in run.players:
            while len(self.active[player]) < self.settings.learners:
                slot = len(self.active[player])
                fixed = self._fixed(run, player)
                member = Member(policy=run.space.initial_policy(player), origin=f"iteration {state.iteration}")
                sigma = self._fixed_solution(run)
                opponents = self._fixed(run, 1 - player)
                member.parameters = run.start(
                    player, own=fixed, own_weights=sigma[player], previous=state.last_best_response[player],
                    seed=run.seed(state.iteration, player, 1000 + slot), opponents=opponents,
                    opponent_weights=sigma[1 - player],
                )
                self.active[player].append(_Learner(member))
                run.add(player, member, best_response=False)

    def _index(self, run: PSRO, player: int, slot: int) -> int:
        return len(run.state.populations[player]) - len(self.active[player]) + slot

    def _fixed(self, run: PSRO, player: int) -> list[Member]:
        """``player``'s fixed population (the members below its active learners; a list that repeats
        another's has that player's learners on top)."""
        population = run.state.populations[player]
        return population[: len(population) - len(self.active[run.responder(player)])]

    def _fixed_solution(self, run: PSRO) -> tuple[np.ndarray, np.ndarray]:
        """The meta-Nash of the fixed populations (what fusion weighs and a new learner starts out against)."""
        sizes = [len(self._fixed(run, p)) for p in range(2)]
        return run.solve(run.state.meta_game.matrix[: sizes[0], : sizes[1]])

    def _target(self, run: PSRO, player: int, slot: int) -> tuple[list[Member], np.ndarray, np.ndarray]:
        """Opponents of learner ``slot`` (the fixed policies plus the learners below ``slot``),
        their meta-strategy, and the meta-strategy of the learner's own members below it."""
        counts = [len(self._fixed(run, p)) + slot for p in range(2)]
        sigma = run.solve(run.state.meta_game.matrix[: counts[0], : counts[1]])
        return run.state.populations[1 - player][: counts[1 - player]], sigma[1 - player], sigma[player]


class DPPPSRO(PSROVariant):
    """DPP-PSRO: PSRO whose best responses add the expected cardinality of the DPP over payoff vectors."""

    label, diversity = "DPP-PSRO", "dpp"


class BDRDPSRO(PSROVariant):
    """BD&RD-PSRO: PSRO whose best responses add response diversity plus behavioural diversity."""

    label, diversity = "BD&RD-PSRO", "bdrd"


class PSDPSRO(PSROVariant):
    """PSD-PSRO: PSRO whose best responses add the KL distance to the hull of the population."""

    label, diversity = "PSD-PSRO", "psd"


class PipelineDPP(Pipeline):
    """DPP-PSRO on the P-PSRO pipeline (the DPP- and PSD-PSRO mixture-game code's form)."""

    label, diversity = "DPP-PSRO (pipeline)", "dpp"


class PipelineBDRD(Pipeline):
    """BD&RD-PSRO on the P-PSRO pipeline."""

    label, diversity = "BD&RD-PSRO (pipeline)", "bdrd"


class PipelinePSD(Pipeline):
    """PSD-PSRO on the P-PSRO pipeline."""

    label, diversity = "PSD-PSRO (pipeline)", "psd"


register_variant("psro", PSROVariant)
register_variant("psro-rn", RectifiedNash)
register_variant("p-psro", Pipeline)
register_variant("dpp", DPPPSRO)
register_variant("bdrd", BDRDPSRO)
register_variant("psd", PSDPSRO)
register_variant("p-dpp", PipelineDPP)
register_variant("p-bdrd", PipelineBDRD)
register_variant("p-psd", PipelinePSD)

__all__ = ["BDRDPSRO", "DPPPSRO", "PSDPSRO", "Pipeline", "PipelineBDRD", "PipelineDPP", "PipelinePSD", "PSROVariant",
           "PipelineSettings", "RectifiedNash", "RectifiedNashSettings", "ResponsePlan", "Snapshot", "Variant",
           "frozen_weights"]
