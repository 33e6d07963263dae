"""The PSRO loop, written once for every variant, oracle and kind of game.

One iteration (Lanctot et al. 2017), for each best response the variant plans:

1. the oracle computes a best response to the opponent's meta-strategy mixture, starting
   from parameters chosen by the initialization strategy (scratch, inherit, Nash Policy
   Fusion, ...);
2. the response joins the population, and the meta-game gains a row or column;
3. the meta-game is solved by the meta-solver, and the exploitability of the new
   meta-strategy mixture is computed exactly.

The pieces are registered components (:mod:`fusion_psro.registry`): the variant
(:mod:`fusion_psro.psro.variants`) decides which best responses an iteration trains and
what joins the populations; the oracle (:mod:`fusion_psro.oracles`) computes them; the
initialization (:mod:`fusion_psro.psro.initialization`) chooses where each starts; the
policy space (:mod:`fusion_psro.psro.spaces`) supplies the game's policies, meta-game and
exact evaluation. Every random draw comes from a seed derived from (run seed, iteration,
player, slot), so a run restored from a checkpoint continues exactly.

Every population starts with the uniform random policy (which has no parameters and so
takes no part in fusion); on the mixture game, with a seeded random point near the origin.

In a symmetric population (``population="symmetric"``, symmetric games only) the run
computes player 0's best responses alone (:attr:`PSRO.players`) and every member that
joins player 0's list joins player 1's too (:meth:`PSRO.add`, :meth:`PSRO.replace`), so
the two lists hold the same members, the meta-game is antisymmetric and both players use
one symmetric meta-strategy. Variants plan for ``run.players``; the loop checks that they
do and that the lists stay equal.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fusion_psro.errors import ConfigError
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.meta.solvers import get_meta_solver, takes_seed
from fusion_psro.psro.config import PSROConfig
from fusion_psro.psro.executors import SerialExecutor
from fusion_psro.psro.initialization import StartContext
from fusion_psro.psro.meta_game import MetaGame
from fusion_psro.psro.oracle_factory import make_oracle
from fusion_psro.psro.population import Member, StateDict, stack_policies
from fusion_psro.psro.records import IterationRecord
from fusion_psro.psro.schedules import DIVERSITY_SCHEDULES
from fusion_psro.psro.spaces import make_space
from fusion_psro.psro.variants import ResponsePlan, Snapshot, frozen_weights
from fusion_psro.registry import INITS, VARIANTS

log = logging.getLogger(__name__)

#: Seed paths of the loop's own draws, beside the variants' (iteration, player, slot): a
#: seeded meta-solver's n-th call of an iteration draws from (iteration, _SOLVER_DRAWS, n),
#: player p's prior-code exploitability ascent from (iteration, _PRIOR_CODE_DRAWS, p).
_SOLVER_DRAWS = 101
_PRIOR_CODE_DRAWS = 102


@dataclasses.dataclass
class PSROState:
    """Everything the loop carries from one iteration to the next (the variant keeps its own)."""

    populations: list[list[Member]]
    meta_game: MetaGame
    meta_strategies: tuple[np.ndarray, np.ndarray]
    iteration: int = 0
    episodes: int = 0
    wall_s: float = 0.0
    #: Each player's latest best response (what ``inherit`` copies).
    last_best_response: list[Member | None] = dataclasses.field(default_factory=lambda: [None, None])


@dataclasses.dataclass(frozen=True, eq=False)
class Response:
    """A new member and how it was made (what the metrics row records of it)."""

    member: Member | None
    init: str | None
    fusion_s: float = 0.0
    episodes: int = 0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Distance of its start from the previous best response (:meth:`PSRO.start_distance`), or None.
    start_distance: dict[str, float] | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedResponse:
    """A plan made ready for an oracle (:meth:`PSRO.prepare`): the request and how its start was chosen."""

    plan: ResponsePlan
    #: The :class:`~fusion_psro.oracles.base.BestResponseRequest` to compute.
    request: Any
    #: The init that chose the starting parameters (``"continue"`` for a learner that keeps training), or None.
    init: str | None
    #: Seconds the init took to fuse.
    fusion_s: float = 0.0
    #: How far the start lies from the previous best response (:meth:`PSRO.start_distance`), or None.
    start_distance: dict[str, float] | None = None
    #: Training budget the start spent (counted with the response's episodes).
    budget_spent: int = 0


class PSRO:
    """A PSRO run: ``PSRO(config).run()``, or :meth:`step` one iteration at a time.

    ``oracle`` replaces the registered oracle ``config.oracle`` with an instance (its class's
    capabilities are validated instead); ``compiled`` supplies an already compiled game.
    """

    def __init__(self, config: PSROConfig, *, oracle=None, compiled: CompiledGame | None = None, executor=None):
        self.config = config.resolved(oracle=None if oracle is None else type(oracle))
        self.space = make_space(self.config, compiled=compiled)
        #: Where independent best responses (and sampled meta-game entries) are computed.
        self.executor = executor if executor is not None else SerialExecutor()
        self.space.set_executor(self.executor)
        #: The compiled OpenSpiel game (None for games of other kinds).
        self.compiled = self.space.compiled
        self.oracle = oracle if oracle is not None else make_oracle(self.config, self.space)
        self.meta_solver = get_meta_solver(self.config.meta_solver, **self.config.meta_solver_options)
        self._seeded_solver = takes_seed(self.meta_solver)
        self._solves = 0  # meta-solver calls in this iteration (each seeded solve draws afresh)
        variant_class = VARIANTS.get(self.config.variant)
        self.variant = variant_class(variant_class.settings_from(self.config.variant_options))
        self.init_settings = INITS.get(self.config.init).settings(self.config.init_options) if self.config.init else None
        #: The players whose best responses the run computes (player 0 alone in a symmetric population).
        self.players: tuple[int, ...] = (0,) if self.config.population == "symmetric" else (0, 1)
        self.state = self._initial_state()
        #: The populations and meta-game as the current round was planned (:meth:`snapshot`).
        self.planned: Snapshot = self.snapshot()
        self._responses: list[Response] = []
        #: Called as ``on_progress(done, total)`` while an oracle trains (training episodes of
        #: the current best response), for a progress display.
        self.on_progress: Callable[[int, int], None] | None = None

    def _initial_state(self) -> PSROState:
        meta_game = self.space.new_meta_game()
        populations: list[list[Member]] = [[], []]
        for player in range(2):
            if self.responder(player) != player:  # a mirrored list starts with the same member
                member = populations[self.responder(player)][0]
            else:
                member = Member(policy=self.space.initial_policy(player),
                                parameters=self.space.initial_parameters(player), origin="initial")
            populations[player].append(member)
            meta_game.add(player, member.policy)
        return PSROState(populations=populations, meta_game=meta_game, meta_strategies=(np.ones(1), np.ones(1)))

    def responder(self, player: int) -> int:
        """The player whose best responses fill ``player``'s population: itself, or player 0 when
        ``player``'s list repeats player 0's (a symmetric population)."""
        return player if player in self.players else self.players[0]

    # -- one iteration ----------------------------------------------------------------------
    def step(self) -> IterationRecord:
        """Run one PSRO iteration and return its metrics row."""
        state = self.state
        started = time.perf_counter()
        state.iteration += 1
        self._responses = []
        self._solves = 0
        # state.meta_strategies already solve the current meta-game (set below, or restored).
        round = 0
        while plans := self._plan(round):
            self._check_plans(plans)
            self.variant.take(self, plans, self.executor.respond(self, plans))
            self._check_mirrors()
            round += 1
        extra = self.variant.finish(self)
        self._check_mirrors()
        extra = {**extra, **state.meta_game.take_report()}  # a sampled meta-game: what this iteration sampled
        state.meta_strategies = self.solve(state.meta_game.matrix)
        evaluation = self.space.evaluate(state.meta_game, state.meta_strategies)
        if self.config.exploitability_prior_code:
            seeds = [self.seed(state.iteration, _PRIOR_CODE_DRAWS, player) for player in range(2)]
            estimate = self.space.prior_code_exploitability_of(state.meta_game, state.meta_strategies, seeds)
            extra = {**extra, "exploitability_prior_code": estimate}
        iteration_s = time.perf_counter() - started
        state.wall_s += iteration_s
        state.episodes += sum(r.episodes for r in self._responses)
        sigma0, sigma1 = state.meta_strategies
        distances = [r.start_distance for r in self._responses]
        if any(d is not None for d in distances):
            extra = {**extra, "start_distances": distances}
        return IterationRecord(
            iteration=state.iteration, exploitability=evaluation.exploitability, nash_conv=evaluation.nash_conv,
            wall_s=state.wall_s, iteration_s=iteration_s, episodes=state.episodes,
            fusion_s=sum(r.fusion_s for r in self._responses),
            population_sizes=[len(p) for p in state.populations],
            meta_game_value=float(sigma0 @ state.meta_game.matrix @ sigma1),
            meta_strategies=[sigma0.tolist(), sigma1.tolist()],
            inits=[r.init for r in self._responses], oracle=[r.metrics for r in self._responses], extra=extra,
        )

    def _plan(self, round: int) -> list[ResponsePlan]:
        """The variant's plans of ``round``, made with :attr:`planned` taken just before."""
        self.planned = self.snapshot()
        return self.variant.plan(self, round)

    def snapshot(self) -> Snapshot:
        """The populations (tuples), payoff matrix and meta-strategies now, frozen (:class:`Snapshot`)."""
        state = self.state
        matrix = np.array(state.meta_game.matrix)
        matrix.flags.writeable = False
        return Snapshot(iteration=state.iteration, populations=tuple(tuple(p) for p in state.populations),
                        meta_strategies=tuple(frozen_weights(s) for s in state.meta_strategies), matrix=matrix,
                        last_best_response=tuple(state.last_best_response))

    def run(self, callback: Callable[[IterationRecord], None] | None = None) -> list[IterationRecord]:
        """Run the remaining iterations; ``callback`` receives each metrics row.

        With ``config.target_exploitability``, the run stops after the first iteration whose
        exploitability is at or below it; that row records ``target_reached: true``.
        """
        records = []
        target = self.config.target_exploitability
        while self.state.iteration < self.config.iterations:
            record = self.step()
            reached = target is not None and record.exploitability <= target
            if reached:
                record.extra["target_reached"] = True
            records.append(record)
            if callback is not None:
                callback(record)
            if reached:
                break
        return records

    # -- what variants ask of the loop ------------------------------------------------------
    def seed(self, *path: int) -> int:
        """An independent, reproducible seed for one draw: (run seed, *path)."""
        return int(np.random.SeedSequence([self.config.seed, *path]).generate_state(1)[0])

    def solve(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Meta-strategies of a payoff matrix (symmetric ones for a shared or symmetric population).

        A meta-solver that takes a seed gets one from (run seed, iteration, call), so
        every call draws afresh and a run repeats exactly.
        """
        options = {}
        if self._seeded_solver:
            options["seed"] = self.seed(self.state.iteration, _SOLVER_DRAWS, self._solves)
        self._solves += 1
        if self.config.population != "per-player":
            # Agent i against agent j, seat drawn uniformly: (M[i, j] + c - M[j, i]) / 2. The
            # constant c / 2 changes no equilibrium, and the game is symmetric, so the
            # maximin strategy is a symmetric meta-Nash. (A symmetric population's meta-game
            # is antisymmetric already; this removes the round-off.)
            sigma = np.array(self.meta_solver(0.5 * (matrix - matrix.T), **options).strategies[0])
            return sigma, sigma.copy()
        solution = self.meta_solver(matrix, **options)
        return (np.array(solution.strategies[0]), np.array(solution.strategies[1]))

    def add(self, player: int, member: Member, *, best_response: bool = True) -> None:
        """Add ``member`` to ``player``'s population (and to the lists that repeat it) and the meta-game."""
        for seat in self._seats(player):
            self.state.populations[seat].append(member)
            self.state.meta_game.add(seat, member.policy)
            if best_response:
                self.state.last_best_response[seat] = member

    def replace(self, player: int, index: int, member: Member) -> None:
        """Replace member ``index`` of ``player``'s population (a learner that kept training)."""
        for seat in self._seats(player):
            self.state.populations[seat][index] = member
            self.state.meta_game.replace(seat, index, member.policy)

    def start(self, player: int, *, own: list[Member], own_weights: np.ndarray, previous: Member | None,
              seed: int, opponents: list[Member], opponent_weights: np.ndarray) -> StateDict | None:
        """Parameters for a new member chosen by the run's init (None if the oracle has none),
        for a member that will respond to ``opponents`` mixed by ``opponent_weights``.

        The choice is recorded in this iteration's metrics like a best response that trained
        no episodes.
        """
        plan = ResponsePlan(player=player, opponents=opponents, opponent_weights=opponent_weights, seed=seed, own=own,
                            own_weights=own_weights, previous=previous)
        choice = self._choose_start(plan)
        parameters = None if choice is None else choice.parameters
        self._responses.append(Response(None, choice and choice.strategy, choice.fusion_seconds if choice else 0.0,
                                        start_distance=self.start_distance(plan, parameters)))
        return parameters

    def start_distance(self, plan: ResponsePlan, start: StateDict | None) -> dict[str, float] | None:
        """How far ``start`` lies from the previous best response of ``plan`` (the member
        ``inherit`` would copy): ``l2``, the Euclidean distance of all parameters, and ``kl``,
        the KL divergence (nats) of the start's play from the previous response's against the
        opponent mixture of ``plan`` (:func:`~fusion_psro.evaluation.behaviour.play_kl` of the
        oracle's acting policies; only where the game is compiled). None without both.
        """
        previous = None if plan.previous is None else plan.previous.parameters
        if start is None or previous is None or self.compiled is None:
            return None
        distance = {"l2": _l2_distance(start, previous)}
        mine = self.oracle.acting_policy(plan.player, start)
        theirs = None if mine is None else self.oracle.acting_policy(plan.player, previous)
        if theirs is not None:
            from fusion_psro.evaluation import mixture_plan, play_kl  # noqa: PLC0415

            opponent = mixture_plan(self.compiled, 1 - plan.player, *_opponent_mixture(plan))
            distance["kl"] = play_kl(self.compiled, plan.player, mine, theirs, opponent)
        return distance

    def diversity_term(self, player: int, seed: int, *, own_count: int | None = None,
                       opponent_count: int | None = None, own_meta_strategy: np.ndarray | None = None):
        """The diversity term of ``player``'s next best response under the run's variant.

        It is measured against the whole populations and ``player``'s meta-strategy, or
        against the first ``own_count`` / ``opponent_count`` members with
        ``own_meta_strategy`` (a pipeline learner's view: the members below it).
        """
        from fusion_psro.oracles.diversity import DiversityTerm  # noqa: PLC0415 (diversity terms need PyTorch)

        state = self.state
        own = state.populations[player][:own_count]
        opponents = state.populations[1 - player][:opponent_count]
        payoff_factor, diversity_factor = DIVERSITY_SCHEDULES[self.config.diversity_schedule].factors(state.iteration)
        return DiversityTerm(
            kind=self.variant.diversity, weight=self.config.diversity_weight * diversity_factor,
            own_population=stack_policies(own),
            own_meta_strategy=state.meta_strategies[player] if own_meta_strategy is None else own_meta_strategy,
            own_payoffs=state.meta_game.payoffs(player)[: len(own), : len(opponents)],
            opponent_population=stack_policies(opponents), seed=seed, payoff_weight=payoff_factor,
        )

    # -- the symmetric population's checks --------------------------------------------------
    def _seats(self, player: int) -> tuple[int, ...]:
        """The lists a change of ``player``'s population goes to: its own and those repeating it."""
        if player not in self.players:
            raise ConfigError(
                f"the {self.config.variant} variant changed player {player}'s population, which repeats player "
                f"{self.responder(player)}'s in a {self.config.population} population; variants change the "
                "populations of run.players only"
            )
        return tuple(seat for seat in range(2) if self.responder(seat) == player)

    def _check_plans(self, plans: list[ResponsePlan]) -> None:
        strays = sorted({plan.player for plan in plans} - set(self.players))
        if strays:
            raise ConfigError(
                f"the {self.config.variant} variant planned best responses of player(s) {strays}, but a "
                f"{self.config.population} population computes those of players {list(self.players)} only"
            )

    def _check_mirrors(self) -> None:
        """Every list that repeats another holds the same members (by policy, as restored ones are copies)."""
        populations = self.state.populations
        for seat in range(2):
            source = populations[self.responder(seat)]
            if source is populations[seat]:
                continue
            if len(source) != len(populations[seat]) or not all(
                    a is b or np.array_equal(a.policy, b.policy) for a, b in zip(source, populations[seat])):
                raise ConfigError(f"player {seat}'s population no longer repeats player {self.responder(seat)}'s; "
                                  f"the {self.config.variant} variant changed it behind the loop's back")

    # -- one oracle call --------------------------------------------------------------------
    def _choose_start(self, plan: ResponsePlan):
        if not self.oracle.trains_parameters:
            return None
        opponent_policies, opponent_weights = _opponent_mixture(plan)
        return INITS.get(self.config.init).choose(StartContext(
            oracle=self.oracle, player=plan.player, iteration=self.state.iteration, seed=plan.seed,
            population_parameters=[m.parameters for m in plan.own], meta_strategy=plan.own_weights,
            previous_parameters=None if plan.previous is None else plan.previous.parameters,
            fusion_start=self.config.fusion_start, fusion_fallback=self.config.fusion_fallback,
            population_policies=[m.policy for m in plan.own],
            opponent_policies=opponent_policies, opponent_weights=opponent_weights, settings=self.init_settings,
            previous_index=_index_of(plan.previous, plan.own),
            newest_index=_index_of(self.planned.last_best_response[plan.player], plan.own),
        ))

    def respond(self, plan: ResponsePlan) -> Response:
        """The response to ``plan`` computed in this process: :meth:`prepare`, the oracle, :meth:`accept`."""
        prepared = self.prepare(plan)
        return self.accept(prepared, self.oracle.best_response(prepared.request))

    def prepare(self, plan: ResponsePlan) -> PreparedResponse:
        """The oracle request of ``plan``, with the init it starts from and the seconds fusion took.

        An executor may send ``prepared.request`` to an oracle elsewhere and hand the result
        to :meth:`accept`.
        """
        from fusion_psro.oracles.base import BestResponseRequest  # noqa: PLC0415

        init, fusion_s, start, spent = None, 0.0, plan.continue_from, 0
        if start is not None:
            init = "continue"
        else:
            choice = self._choose_start(plan)
            if choice is not None:
                start, init, fusion_s, spent = choice.parameters, choice.strategy, choice.fusion_seconds, choice.budget_spent
        opponent_population, opponent_meta_strategy = _opponent_mixture(plan)
        request = BestResponseRequest(
            player=plan.player, opponent_population=opponent_population, opponent_meta_strategy=opponent_meta_strategy,
            initial_parameters=start, seed=plan.seed, diversity=plan.diversity, on_progress=self.on_progress,
            budget_spent=spent,
        )
        return PreparedResponse(plan, request, init, fusion_s, self.start_distance(plan, start), spent)

    def accept(self, prepared: PreparedResponse, result) -> Response:
        """The response made of the oracle's ``result`` (a ``BestResponseResult``) to ``prepared``,
        recorded in this iteration's metrics."""
        member = Member(policy=result.policy, parameters=result.parameters, origin=f"iteration {self.state.iteration}")
        # The budget the start spent counts with the episodes (or steps) the response trained.
        response = Response(member, prepared.init, prepared.fusion_s, result.episodes + prepared.budget_spent,
                            result.metrics.to_json(), start_distance=prepared.start_distance)
        self._responses.append(response)
        return response


def _index_of(member: Member | None, population: Sequence[Member]) -> int | None:
    """The index of ``member`` (by identity) in ``population``, or None."""
    return next((k for k, m in enumerate(population) if m is member), None)


def _opponent_mixture(plan: ResponsePlan) -> tuple[np.ndarray, np.ndarray]:
    """The opponent members ``plan`` responds to with positive weight, stacked, and their weights renormalized."""
    keep = plan.opponent_weights > 0
    return (stack_policies([m for m, k in zip(plan.opponents, keep) if k]),
            plan.opponent_weights[keep] / plan.opponent_weights[keep].sum())


def _l2_distance(a: StateDict, b: StateDict) -> float:
    """Euclidean distance between two parameter sets over all their floating-point tensors."""
    total = sum(float(((a[name].double() - b[name].double()) ** 2).sum()) for name in sorted(a)
                if a[name].is_floating_point())
    return total ** 0.5


__all__ = ["PSRO", "PSROState", "PreparedResponse", "Response", "make_oracle"]
