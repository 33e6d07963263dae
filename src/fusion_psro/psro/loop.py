"""The PSRO loop and its variants, with every setting in one dataclass.

One iteration, for each player (Lanctot et al. 2017):

1. the meta-game (exact payoffs between the populations) is solved by the meta-solver;
2. the oracle computes a best response to the opponent's meta-strategy mixture, starting
   from parameters chosen by the initialization strategy (scratch, inherit, or Nash Policy
   Fusion);
3. the response joins the population, the meta-game gains a row or column, and the
   exploitability of the new meta-strategy mixture is computed exactly.

Variants (``variant``):

* ``psro``: one best response per player per iteration.
* ``psro-rn``: rectified Nash (Balduzzi et al., *Open-ended learning in symmetric zero-sum
  games*, ICML 2019). The ``rn_learners`` members with the largest meta-Nash weight each
  get a best response to the opponents they beat or tie (meta-game payoff >= half the
  utility sum, i.e. >= 0 in zero-sum games), weighted by the opponent's meta-Nash. A
  member that beats nobody trains against the full meta-Nash. With ``init=inherit`` a
  rectified learner starts from the member it improves on, as in the paper.
* ``p-psro``: pipeline PSRO (McAleer et al., NeurIPS 2020). Each player keeps
  ``pipeline_learners`` active learners above a fixed population; learner ``j`` trains
  against the meta-Nash of the fixed population plus the learners below it, continuing
  from its own parameters. The lowest learner is frozen into the fixed population when its
  exact value against its opponent mixture improves by less than ``pipeline_plateau`` in
  an iteration (the plateau test) or after ``pipeline_max_iterations`` iterations (the
  budget), and a new learner starts at the top. Exploitability is that of the meta-Nash
  over all policies, fixed and active.

* ``dpp``, ``bdrd``, ``psd``: the diversity variants (DPP-PSRO, Perez-Nieves et al. 2021;
  BD&RD-PSRO, Liu et al. 2021; PSD-PSRO, Yao et al. 2023). One best response per player
  per iteration, as ``psro``, each trained on ``payoff + diversity_weight * diversity``
  (formulas and sources in :mod:`fusion_psro.oracles.diversity`). The prior code runs
  them on top of its pipeline of learners; here they extend the plain loop so that a
  comparison with ``psro`` isolates the diversity term. They need an oracle that can
  optimize the term: ``gradient`` on the mixture game, ``dqn`` on the OpenSpiel games
  (PSD's and BD's terms as reward bonuses, DPP's and RD's by choosing among training
  snapshots; see :mod:`fusion_psro.oracles.dqn`).

Games: any OpenSpiel game the engine can compile (policies are tabular), or the
non-transitive mixture game (``game="mixture"``; policies are points, the oracle is
``gradient``); see :mod:`fusion_psro.psro.spaces`.

Every population starts with the uniform random policy (which has no parameters and so
takes no part in fusion); on the mixture game, with a seeded random point near the origin.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fusion_psro.games.compiled import CompiledGame
from fusion_psro.meta import META_SOLVERS, get_meta_solver
from fusion_psro.oracles.base import BestResponseRequest, Oracle, StateDict
from fusion_psro.oracles.diversity import (
    DEFAULT_DIVERSITY_WEIGHT,
    DIVERSITY_VARIANTS,
    DiversityTerm,
)
from fusion_psro.psro.initialization import (
    INIT_STRATEGIES,
    SCRATCH_SCHEMES,
    initial_parameters,
)
from fusion_psro.psro.spaces import MIXTURE_GAMES, PolicySpace, make_space

log = logging.getLogger(__name__)

VARIANTS = ("psro", "psro-rn", "p-psro", *DIVERSITY_VARIANTS)
ORACLES = ("exact", "dqn", "gradient")
#: Diversity terms each oracle can optimize.
ORACLE_DIVERSITY = {"exact": (), "dqn": DIVERSITY_VARIANTS, "gradient": DIVERSITY_VARIANTS}
POPULATION_MODES = ("per-player", "shared")


class ConfigError(ValueError):
    """A PSRO setting is invalid; the message names it and what is accepted."""


@dataclasses.dataclass
class PSROConfig:
    """Everything a PSRO run depends on. Same config and seed, same results."""

    #: An OpenSpiel game string, or ``mixture`` (the non-transitive mixture game;
    #: ``mixture_dpp_code`` lists its humps in the DPP-PSRO code's order).
    game: str = "leduc_poker"
    #: ``exact`` or ``dqn`` on OpenSpiel games, ``gradient`` on the mixture game. None: the
    #: game's default (``exact``; ``gradient`` for the mixture game).
    oracle: str | None = None
    #: Initialization of each new best-response network: normal, orthogonal, kaiming,
    #: inherit or fusion. Must be None with the exact oracle; defaults to normal otherwise.
    init: str | None = None
    variant: str = "psro"
    meta_solver: str = "nash"
    iterations: int = 20
    seed: int = 0
    #: First iteration that uses fusion (``init=fusion``); earlier ones use ``fusion_fallback``.
    fusion_start: int = 1
    fusion_fallback: str = "normal"
    #: Training episodes per best response (learned oracles).
    episodes: int = 20_000
    rn_learners: int = 1
    pipeline_learners: int = 4
    pipeline_max_iterations: int = 5
    pipeline_plateau: float = 1e-3
    #: ``per-player``: one population per player. ``shared``: one population of agents,
    #: each playing both seats (member k of both players' lists is agent k); the meta-game
    #: is the symmetrized agent-vs-agent game with the seat drawn uniformly, and both
    #: players use its symmetric meta-Nash.
    population: str = "per-player"
    #: Weight of the diversity term (variants dpp, bdrd, psd only; None: their default, 0.1).
    diversity_weight: float | None = None
    #: Extra settings of the learned oracle (DQN hyperparameters; the gradient oracle's
    #: steps, lr, start_scale), by name.
    oracle_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def resolved(self) -> PSROConfig:
        """A validated copy with defaults filled in; raises :class:`ConfigError`."""
        config = dataclasses.replace(self, oracle_options=dict(self.oracle_options))
        mixture = config.game in MIXTURE_GAMES
        if config.oracle is None:
            config.oracle = "gradient" if mixture else "exact"
        if config.oracle not in ORACLES:
            raise ConfigError(f"unknown oracle {config.oracle!r}; accepted: {', '.join(ORACLES)}")
        if mixture and config.oracle != "gradient":
            raise ConfigError(
                f"--oracle {config.oracle} does not apply to the mixture game, whose policies are points; "
                "accepted: gradient"
            )
        if not mixture and config.oracle == "gradient":
            raise ConfigError(
                f"the gradient oracle moves points of the mixture game; for {config.game!r} use exact or dqn"
            )
        if config.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {config.variant!r}; accepted: {', '.join(VARIANTS)}")
        if config.variant in DIVERSITY_VARIANTS:
            compatible = ORACLE_DIVERSITY[config.oracle]
            if config.variant not in compatible:
                game_oracles = ("gradient",) if mixture else ("exact", "dqn")
                with_it = [o for o in game_oracles if config.variant in ORACLE_DIVERSITY[o]]
                raise ConfigError(
                    f"--variant {config.variant} needs an oracle that can optimize its diversity term; the "
                    f"{config.oracle} oracle " + (f"supports: {', '.join(compatible)}" if compatible else "supports none")
                    + f". Use --oracle {' or '.join(with_it)}"
                )
            if config.diversity_weight is None:
                config.diversity_weight = DEFAULT_DIVERSITY_WEIGHT
            weight = config.diversity_weight
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not np.isfinite(weight) or weight < 0:
                raise ConfigError(f"diversity_weight must be a non-negative number, got {weight!r}")
            config.diversity_weight = float(weight)
        elif config.diversity_weight is not None:
            raise ConfigError(
                f"--diversity-weight applies to the diversity variants ({', '.join(DIVERSITY_VARIANTS)}), "
                f"not to --variant {config.variant}"
            )
        if config.population not in POPULATION_MODES:
            raise ConfigError(f"unknown population mode {config.population!r}; accepted: {', '.join(POPULATION_MODES)}")
        if config.population == "shared" and config.oracle != "exact":
            raise ConfigError(
                f"a shared population needs one learner that plays both seats; the {config.oracle} oracle trains "
                f"one per player. Use --population per-player with --oracle {config.oracle}"
                + ("" if mixture else ", or the exact oracle")
            )
        if config.meta_solver not in META_SOLVERS:
            raise ConfigError(f"unknown meta-solver {config.meta_solver!r}; accepted: {', '.join(META_SOLVERS)}")
        if config.oracle == "exact":
            if config.init is not None:
                raise ConfigError(
                    f"--init {config.init} does not apply to the exact oracle: an exact best response "
                    "is computed, not trained, so it has no starting point to choose. Drop --init, "
                    "or use a learned oracle (--oracle dqn)"
                )
        else:
            config.init = config.init or "normal"
            if config.init not in INIT_STRATEGIES:
                raise ConfigError(f"unknown init {config.init!r}; accepted: {', '.join(INIT_STRATEGIES)}")
        if config.fusion_fallback not in (*SCRATCH_SCHEMES, "inherit"):
            raise ConfigError(
                f"unknown fusion fallback {config.fusion_fallback!r}; accepted: {', '.join((*SCRATCH_SCHEMES, 'inherit'))}"
            )
        if mixture:
            point_inits = ("normal", "inherit", "fusion")
            for name in ("init", "fusion_fallback"):
                if getattr(config, name) not in point_inits:
                    raise ConfigError(
                        f"{name} {getattr(config, name)!r} does not apply to the mixture game, whose policies are "
                        f"2-D points (no layers); accepted: {', '.join(point_inits)}"
                    )
        for name, minimum in (("iterations", 1), ("fusion_start", 1), ("episodes", 1), ("rn_learners", 1),
                              ("pipeline_learners", 1), ("pipeline_max_iterations", 1)):
            value = getattr(config, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if not isinstance(config.seed, (int, np.integer)) or config.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {config.seed!r}")
        if not np.isfinite(config.pipeline_plateau) or config.pipeline_plateau < 0:
            raise ConfigError(f"pipeline_plateau must be >= 0, got {config.pipeline_plateau!r}")
        return config


def resolved_settings(recorded: Any) -> dict[str, Any] | None:
    """The ``psro`` settings of a run's ``config.json``, resolved with today's defaults.

    A record written before a setting existed gets that setting's default, so runs written
    by different versions compare and group by what they ran. Returned as JSON values
    (tuples become lists); None if the record is not a valid config.
    """
    if not isinstance(recorded, dict):
        return None
    try:
        resolved = PSROConfig(**recorded).resolved()
    except (TypeError, ValueError):  # ConfigError is a ValueError
        return None
    return json.loads(json.dumps(dataclasses.asdict(resolved)))


@dataclasses.dataclass
class Member:
    """A population member: its tabular policy and, for learned oracles, its parameters."""

    policy: np.ndarray
    parameters: StateDict | None = None
    origin: str = ""


@dataclasses.dataclass
class ActiveLearner:
    """A P-PSRO learner still in training."""

    member: Member
    iterations_trained: int = 0
    last_value: float = -np.inf


@dataclasses.dataclass
class PSROState:
    """Everything the loop carries from one iteration to the next."""

    populations: list[list[Member]]
    #: :class:`~fusion_psro.psro.meta_game.MetaGame` or :class:`~fusion_psro.psro.spaces.MixtureMetaGame`.
    meta_game: Any
    meta_strategies: tuple[np.ndarray, np.ndarray]
    iteration: int = 0
    episodes: int = 0
    wall_s: float = 0.0
    #: P-PSRO only: active learners per player (they are also the last members of
    #: ``populations`` and of the meta-game).
    active: list[list[ActiveLearner]] = dataclasses.field(default_factory=lambda: [[], []])
    last_best_response: list[Member | None] = dataclasses.field(default_factory=lambda: [None, None])


def make_oracle(config: PSROConfig, space: PolicySpace) -> Oracle:
    """The oracle named by ``config.oracle`` (a resolved config) for the game of ``space``."""
    if config.oracle == "exact":
        from fusion_psro.oracles.exact import ExactOracle

        return ExactOracle(space.compiled)
    if config.oracle == "gradient":
        from fusion_psro.oracles.gradient import GradientConfig, GradientOracle

        settings_class, name = GradientConfig, "gradient-oracle"
    else:
        from fusion_psro.oracles.dqn import DQNConfig, DQNOracle

        settings_class, name = DQNConfig, "DQN"
    known = {field.name for field in dataclasses.fields(settings_class)}
    unknown = sorted(set(config.oracle_options) - known)
    if unknown:
        raise ConfigError(f"unknown {name} option(s) {unknown}; accepted: {', '.join(sorted(known))}")
    try:
        if config.oracle == "gradient":
            return GradientOracle(space.game, GradientConfig(**config.oracle_options))
        return DQNOracle(space.compiled, DQNConfig(**{**config.oracle_options, "episodes": config.episodes}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _seed(config: PSROConfig, *path: int) -> int:
    """An independent, reproducible seed for one oracle call."""
    return int(np.random.SeedSequence([config.seed, *path]).generate_state(1)[0])


class PSRO:
    """A PSRO run: ``PSRO(config).run()``, or :meth:`step` one iteration at a time."""

    def __init__(self, config: PSROConfig, *, oracle: Oracle | None = None, compiled: CompiledGame | None = None):
        self.config = config.resolved()
        self.space = make_space(self.config.game, compiled=compiled, seed=self.config.seed,
                                start_scale=self.config.oracle_options.get("start_scale", 0.1))
        #: The compiled OpenSpiel game (None for the mixture game).
        self.compiled = getattr(self.space, "compiled", None)
        self.oracle = oracle if oracle is not None else make_oracle(self.config, self.space)
        self.solve = get_meta_solver(self.config.meta_solver)
        self.state = self._initial_state()

    # -- set-up ---------------------------------------------------------------------------
    def _initial_state(self) -> PSROState:
        meta_game = self.space.new_meta_game()
        populations: list[list[Member]] = [[], []]
        for player in range(2):
            member = Member(policy=self.space.initial_policy(player),
                            parameters=self.space.initial_parameters(player), origin="initial")
            populations[player].append(member)
            meta_game.add(player, member.policy)
        state = PSROState(populations=populations, meta_game=meta_game, meta_strategies=(np.ones(1), np.ones(1)))
        return state

    # -- one iteration ----------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """Run one PSRO iteration and return its metrics row."""
        state = self.state
        started = time.perf_counter()
        state.iteration += 1
        # state.meta_strategies already solve the current meta-game (set below, or restored).
        variant_step = {"psro-rn": self._step_rectified, "p-psro": self._step_pipeline}
        report = variant_step.get(self.config.variant, self._step_psro)()
        state.meta_strategies = self._solve(state.meta_game.matrix)
        evaluation = self._evaluate(state.meta_strategies)
        iteration_s = time.perf_counter() - started
        state.wall_s += iteration_s
        state.episodes += report["episodes"]
        row = {
            "iteration": state.iteration,
            "exploitability": evaluation.exploitability,
            "nash_conv": evaluation.nash_conv,
            "wall_s": state.wall_s,
            "iteration_s": iteration_s,
            "episodes": state.episodes,
            "fusion_s": report["fusion_s"],
            "population_sizes": [len(p) for p in state.populations],
            "meta_game_value": float(state.meta_strategies[0] @ state.meta_game.matrix @ state.meta_strategies[1]),
            "meta_strategies": [s.tolist() for s in state.meta_strategies],
            "inits": report["inits"],
            "oracle": report["oracle"],
        }
        if self.config.variant == "p-psro":
            row["active_learners"] = [len(a) for a in state.active]
            row["frozen"] = report["frozen"]
        return row

    def run(self, callback: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Run the remaining iterations; ``callback`` receives each metrics row."""
        rows = []
        while self.state.iteration < self.config.iterations:
            row = self.step()
            rows.append(row)
            if callback is not None:
                callback(row)
        return rows

    # -- pieces shared by the variants -----------------------------------------------------
    def _solve(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.config.population == "shared":
            # Agent i against agent j, seat drawn uniformly: (M[i, j] + c - M[j, i]) / 2. The
            # constant c / 2 changes no equilibrium, and the game is symmetric, so the
            # maximin strategy is a symmetric meta-Nash.
            sigma = np.array(self.solve(0.5 * (matrix - matrix.T)).strategies[0])
            return sigma, sigma.copy()
        solution = self.solve(matrix)
        return (np.array(solution.strategies[0]), np.array(solution.strategies[1]))

    def _evaluate(self, meta_strategies):
        return self.space.evaluate(self.state.meta_game, meta_strategies)

    def _diversity_term(self, player: int, seed: int) -> DiversityTerm | None:
        """The diversity term of ``player``'s next best response (diversity variants only)."""
        if self.config.variant not in DIVERSITY_VARIANTS:
            return None
        state = self.state
        return DiversityTerm(
            kind=self.config.variant,
            weight=self.config.diversity_weight,
            own_population=np.stack([m.policy for m in state.populations[player]]),
            own_meta_strategy=state.meta_strategies[player],
            own_payoffs=state.meta_game.payoffs(player),
            opponent_population=np.stack([m.policy for m in state.populations[1 - player]]),
            seed=seed,
        )

    def _best_response(
        self, player: int, opponents: list[Member], opponent_weights: np.ndarray, *,
        own: list[Member], own_weights: np.ndarray, previous: Member | None, seed: int,
        continue_from: StateDict | None = None, diversity: DiversityTerm | None = None,
    ) -> tuple[Member, dict[str, Any]]:
        """One oracle call, with the initialization strategy applied."""
        fusion_s, init_used, start = 0.0, None, None
        if self.oracle.trains_parameters:
            if continue_from is not None:
                start, init_used = continue_from, "continue"
            else:
                choice = initial_parameters(
                    strategy=self.config.init, oracle=self.oracle, player=player,
                    iteration=self.state.iteration,
                    population_parameters=[m.parameters for m in own], meta_strategy=own_weights,
                    previous_parameters=None if previous is None else previous.parameters,
                    fusion_start=self.config.fusion_start, fusion_fallback=self.config.fusion_fallback,
                    seed=seed,
                )
                start, init_used, fusion_s = choice.parameters, choice.strategy, choice.fusion_seconds
        keep = opponent_weights > 0
        request = BestResponseRequest(
            player=player,
            opponent_population=np.stack([m.policy for m, k in zip(opponents, keep) if k]),
            opponent_meta_strategy=opponent_weights[keep] / opponent_weights[keep].sum(),
            initial_parameters=start,
            seed=seed,
            diversity=diversity,
        )
        result = self.oracle.best_response(request)
        member = Member(policy=result.policy, parameters=result.parameters, origin=f"iteration {self.state.iteration}")
        info = {"init": init_used, "fusion_s": fusion_s, "episodes": result.episodes, "metrics": result.metrics.to_json()}
        return member, info

    @staticmethod
    def _report(infos: list[dict[str, Any]], **extra) -> dict[str, Any]:
        return {
            "episodes": sum(i["episodes"] for i in infos),
            "fusion_s": sum(i["fusion_s"] for i in infos),
            "inits": [i["init"] for i in infos],
            "oracle": [i["metrics"] for i in infos],
            **extra,
        }

    def _add(self, player: int, member: Member, *, best_response: bool = True) -> None:
        self.state.populations[player].append(member)
        self.state.meta_game.add(player, member.policy)
        if best_response:
            self.state.last_best_response[player] = member

    # -- variants ------------------------------------------------------------------------
    def _step_psro(self) -> dict[str, Any]:
        state, sigma = self.state, self.state.meta_strategies
        new, infos = [], []
        for player in range(2):
            seed = _seed(self.config, state.iteration, player)
            member, info = self._best_response(
                player, state.populations[1 - player], sigma[1 - player],
                own=state.populations[player], own_weights=sigma[player],
                previous=state.last_best_response[player], seed=seed,
                diversity=self._diversity_term(player, seed),
            )
            new.append(member)
            infos.append(info)
        for player in range(2):  # both respond to the same meta-game before either joins
            self._add(player, new[player])
        return self._report(infos)

    def _step_rectified(self) -> dict[str, Any]:
        state, sigma = self.state, self.state.meta_strategies
        threshold = self.space.utility_sum / 2
        new: list[list[Member]] = [[], []]
        infos = []
        for player in range(2):
            payoffs = state.meta_game.payoffs(player)
            support = np.flatnonzero(sigma[player] > 0)
            # The heaviest members first; ties to the lower index.
            chosen = support[np.argsort(-sigma[player][support], kind="stable")][: self.config.rn_learners]
            for slot, learner in enumerate(chosen):
                beaten = payoffs[learner] >= threshold - 1e-12
                weights = sigma[1 - player] * beaten
                if weights.sum() <= 0:
                    weights = sigma[1 - player]
                member, info = self._best_response(
                    player, state.populations[1 - player], weights,
                    own=state.populations[player], own_weights=sigma[player],
                    previous=state.populations[player][learner],
                    seed=_seed(self.config, state.iteration, player, slot),
                )
                new[player].append(member)
                infos.append(info)
        for player in range(2):
            for member in new[player]:
                self._add(player, member)
        return self._report(infos)

    def _step_pipeline(self) -> dict[str, Any]:
        state, config = self.state, self.config
        infos: list[dict[str, Any]] = []
        # Fill the pipeline: a new learner starts above the fixed population, from parameters
        # chosen by the initialization strategy (fusion: over the fixed population, with its
        # meta-Nash), as a uniform placeholder until its first training below.
        for player in range(2):
            while len(state.active[player]) < config.pipeline_learners:
                slot = len(state.active[player])
                fixed = state.populations[player][: len(state.populations[player]) - slot]
                member = Member(policy=self.space.initial_policy(player), origin=f"iteration {state.iteration}")
                info = {"init": None, "fusion_s": 0.0, "episodes": 0, "metrics": {}}
                if self.oracle.trains_parameters:
                    choice = initial_parameters(
                        strategy=config.init, oracle=self.oracle, player=player, iteration=state.iteration,
                        population_parameters=[m.parameters for m in fixed],
                        meta_strategy=self._fixed_meta_strategy(player),
                        previous_parameters=None if state.last_best_response[player] is None
                        else state.last_best_response[player].parameters,
                        fusion_start=config.fusion_start, fusion_fallback=config.fusion_fallback,
                        seed=_seed(config, state.iteration, player, 1000 + slot),
                    )
                    member.parameters = choice.parameters
                    info.update(init=choice.strategy, fusion_s=choice.fusion_seconds)
                state.active[player].append(ActiveLearner(member))
                self._add(player, member, best_response=False)  # a placeholder until trained
                infos.append(info)
        # Train every active learner against the fixed population plus the learners below it.
        for player in range(2):
            for slot, learner in enumerate(state.active[player]):
                opponents, opponent_weights = self._pipeline_target(player, slot)
                member, info = self._best_response(
                    player, opponents, opponent_weights,
                    own=[], own_weights=np.zeros(0), previous=None,
                    seed=_seed(config, state.iteration, player, slot),
                    continue_from=learner.member.parameters if self.oracle.trains_parameters else None,
                )
                member.origin = learner.member.origin
                index = len(state.populations[player]) - len(state.active[player]) + slot
                state.populations[player][index] = member
                state.meta_game.replace(player, index, member.policy)
                learner.member = member
                learner.iterations_trained += 1
                infos.append(info)
        # Freeze the lowest learner on a plateau or when its budget is spent (in a shared
        # population the two seats of an agent freeze together, when both have plateaued).
        decisions = []
        for player in range(2):
            lowest = state.active[player][0]
            opponents, opponent_weights = self._pipeline_target(player, 0)
            value = self.space.value_against(state.meta_game, player, lowest.member.policy, len(opponents), opponent_weights)
            plateau = value - lowest.last_value < config.pipeline_plateau
            lowest.last_value = value
            decisions.append(plateau or lowest.iterations_trained >= config.pipeline_max_iterations)
        if config.population == "shared":
            decisions = [all(decisions)] * 2
        frozen = []
        for player in range(2):
            if decisions[player]:
                lowest = state.active[player].pop(0)
                state.last_best_response[player] = lowest.member
                frozen.append(player)
        return self._report(infos, frozen=frozen)

    def _fixed_meta_strategy(self, player: int) -> np.ndarray:
        """Meta-Nash weights of ``player``'s fixed population (P-PSRO)."""
        sizes = [len(self.state.populations[p]) - len(self.state.active[p]) for p in range(2)]
        matrix = self.state.meta_game.matrix[: sizes[0], : sizes[1]]
        return self._solve(matrix)[player]

    def _pipeline_target(self, player: int, slot: int) -> tuple[list[Member], np.ndarray]:
        """Opponents of P-PSRO learner ``slot``: fixed policies plus learners below ``slot``."""
        state = self.state
        counts = [len(state.populations[p]) - len(state.active[p]) + slot for p in range(2)]
        matrix = state.meta_game.matrix[: counts[0], : counts[1]]
        sigma = self._solve(matrix)
        return state.populations[1 - player][: counts[1 - player]], sigma[1 - player]


__all__ = ["ORACLES", "ORACLE_DIVERSITY", "POPULATION_MODES", "PSRO", "VARIANTS", "ConfigError", "Member", "PSROConfig", "PSROState", "make_oracle", "resolved_settings"]
