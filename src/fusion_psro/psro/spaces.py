"""What the PSRO loop needs from a game: member policies, the meta-game, exact evaluation.

The loop is written once; a *policy space* supplies the game-specific parts. Each kind of
game is a :class:`PolicySpace` subclass registered in
:data:`fusion_psro.registry.GAME_KINDS`; :func:`game_kind` finds the kind of a game
string (the kinds that claim it first, then the fallback kind; or, with an evaluation
named, the first kind of that evaluation that serves it). The built-in kinds are
registered by :mod:`fusion_psro.psro.kinds`:

* ``tabular`` -- :class:`TabularSpace`, any OpenSpiel game compiled into arrays (the
  fallback kind). A policy is a tabular ``[I, A]`` array; the meta-game keeps every
  member's realization plan; evaluation is the exact sequence-form best response.
* ``mixture`` -- :class:`MixtureSpace`, the non-transitive mixture game
  (:class:`~fusion_psro.games.mixture.MixtureGame`), game strings ``mixture`` and
  ``mixture_dpp_code``. A policy is a point in the plane (array ``[2]``) and is also its
  own parameter vector (``{"point": tensor}``), so every initialization strategy, Nash
  Policy Fusion included, applies to it unchanged. The meta-game keeps every member's
  hump-activation vector; evaluation uses the certified global best response. The game is
  symmetric (``--population symmetric`` applies) and has the prior code's gradient estimate
  of exploitability besides the exact one.

* ``sampled`` -- :class:`~fusion_psro.psro.sampled_space.SampledSpace`, any two-player
  zero-sum OpenSpiel game played from pyspiel states: it claims the games too large to
  compile, and serves any other with ``evaluation="sampled"``. Policies are networks, the
  meta-game is estimated from sampled games.

Oracles declare the kinds they serve (``Oracle.game_kinds``); a kind declares how it
evaluates (:attr:`PolicySpace.evaluation`) and whether its numbers are exact
(:attr:`PolicySpace.exact`).
"""

from __future__ import annotations

import abc
import dataclasses
import time
from typing import Any

import numpy as np

from fusion_psro.errors import ConfigError
from fusion_psro.evaluation import evaluate_plans
from fusion_psro.evaluation.sequence_form import expected_values, realization_plans
from fusion_psro.games.compiled import CompiledGame, compile_game
from fusion_psro.games.mixture import MixtureGame
from fusion_psro.policies import uniform_policy
from fusion_psro.psro.meta_game import MetaGame, MixtureMetaGame, TabularMetaGame
from fusion_psro.psro.population import StateDict
from fusion_psro.registry import GAME_KINDS, ORACLES

#: Game strings of the mixture game kind.
MIXTURE_GAMES = {
    "mixture": MixtureGame,
    "mixture_dpp_code": MixtureGame.dpp_psro_prior_code,
}


@dataclasses.dataclass(frozen=True)
class SpaceEvaluation:
    """Exact evaluation of a meta-strategy profile (exploitability = NashConv / 2)."""

    nash_conv: float
    exploitability: float


class PolicySpace(abc.ABC):
    """The game-specific half of a PSRO run; register a subclass with :func:`fusion_psro.register_game_kind`."""

    #: Registered kind (set when registered); oracles list the kinds they serve.
    name: str = ""
    #: What the kind is, for messages ("a tabular OpenSpiel game").
    description: str = ""
    #: The oracle a run of this kind uses when none is named.
    default_oracle: str = ""
    #: Whether this kind takes every game string no other kind claims.
    fallback: bool = False
    #: How it evaluates policies (``--evaluation``): ``"exact"`` or ``"sampled"``.
    evaluation: str = "exact"
    #: Whether payoffs, behaviour strategies and exploitability are exact (False: estimated
    #: from sampled games; what needs them exactly, such as ``nash-distill``, is refused).
    exact: bool = True
    #: Whether its meta-game entries are estimates (the sampling settings apply to it).
    estimates_payoffs: bool = False
    #: Canonical game string recorded in ``config.json``.
    game_string: str
    #: Sum of the players' payoffs (0 for zero-sum games).
    utility_sum: float
    #: Whether the game is symmetric: both players have the same policies and ``u_1(x, y) =
    #: u_0(y, x)``, so one population can serve both seats (``--population symmetric``).
    symmetric: bool = False
    #: Whether :meth:`prior_code_exploitability_of` is defined (``--exploitability-prior-code``).
    prior_code_exploitability: bool = False
    #: The compiled OpenSpiel game its policies are tabular policies of, or None.
    compiled: CompiledGame | None = None

    @classmethod
    def claims(cls, game: str) -> bool:
        """Whether ``game`` names a game of this kind."""
        return False

    @classmethod
    def serves(cls, game: str) -> bool:
        """Whether this kind can run ``game`` when asked to (``--evaluation``): the games it
        claims, every game for the fallback kind."""
        return cls.fallback or cls.claims(game)

    @classmethod
    def compile_note(cls, game: str) -> str | None:
        """What ``fusion-psro compile`` says of ``game`` (a game this kind claims) instead of compiling
        it, or None to compile it as an OpenSpiel game."""
        return None

    @classmethod
    def evaluation_demo(cls, game: str, population_size: int, seed: int) -> str | None:
        """What ``fusion-psro evaluate`` prints for ``game`` (a game this kind claims): its evaluation
        of random populations; None for the demo of a compiled OpenSpiel game."""
        return None

    @classmethod
    @abc.abstractmethod
    def create(cls, config: Any, *, compiled: CompiledGame | None = None) -> PolicySpace:
        """The space of ``config.game`` for a run with ``config`` (a :class:`~fusion_psro.psro.PSROConfig`)."""

    def set_executor(self, executor) -> None:
        """Use ``executor`` (:mod:`fusion_psro.psro.executors`) for independent work of its own, such as
        the sampled games of new meta-game entries; a space that has none ignores it."""

    @abc.abstractmethod
    def initial_policy(self, player: int) -> np.ndarray:
        """The policy every population starts with (and P-PSRO's placeholder)."""

    def initial_parameters(self, player: int) -> StateDict | None:
        """Parameters of :meth:`initial_policy`, or None when it has none (takes no part in fusion)."""
        return None

    @abc.abstractmethod
    def new_meta_game(self) -> MetaGame:
        """An empty meta-game."""

    @abc.abstractmethod
    def restore_meta_game(self, policies: list[list[np.ndarray]], matrix: np.ndarray) -> MetaGame:
        """A meta-game rebuilt from saved member policies and its saved payoff matrix."""

    @abc.abstractmethod
    def evaluate(self, meta_game: MetaGame, meta_strategies) -> SpaceEvaluation:
        """Exact NashConv and exploitability of the meta-strategy mixtures."""

    @abc.abstractmethod
    def value_against(self, meta_game: MetaGame, player: int, policy: np.ndarray, opponent_count: int,
                      weights: np.ndarray) -> float:
        """``player``'s exact value of ``policy`` against the mixture of the opponent's first members."""

    def prior_code_exploitability_of(self, meta_game: MetaGame, meta_strategies, seeds) -> float:
        """The prior code's estimate of the exploitability (kinds with :attr:`prior_code_exploitability`)."""
        raise NotImplementedError(f"{type(self).__name__} has no prior-code exploitability estimate")


class TabularSpace(PolicySpace):
    """A compiled OpenSpiel game; see the module docstring."""

    description = "a tabular OpenSpiel game"
    default_oracle = "exact"
    fallback = True

    def __init__(self, compiled: CompiledGame):
        self.compiled = compiled
        self.game_string = compiled.game_string
        self.utility_sum = compiled.utility_sum

    @classmethod
    def create(cls, config: Any, *, compiled: CompiledGame | None = None) -> TabularSpace:
        return cls(compiled if compiled is not None else compile_game(config.game))

    def initial_policy(self, player: int) -> np.ndarray:
        return uniform_policy(self.compiled, player)

    def new_meta_game(self) -> TabularMetaGame:
        return TabularMetaGame(self.compiled)

    def restore_meta_game(self, policies, matrix) -> TabularMetaGame:
        return TabularMetaGame.restore(self.compiled, policies, matrix)

    def evaluate(self, meta_game: TabularMetaGame, meta_strategies) -> SpaceEvaluation:
        # The meta-game already holds every member's realization plan.
        plans = [meta_game.mixed_plan(p, meta_strategies[p]) for p in range(2)]
        evaluation = evaluate_plans(self.compiled, plans[0], plans[1])
        return SpaceEvaluation(nash_conv=evaluation.nash_conv, exploitability=evaluation.exploitability)

    def value_against(self, meta_game: TabularMetaGame, player, policy, opponent_count, weights) -> float:
        opponent_plans = np.stack([meta_game.plan(1 - player, i) for i in range(opponent_count)])
        own_plan = realization_plans(self.compiled, player, policy)
        mixed = weights @ opponent_plans
        plans = (own_plan, mixed) if player == 0 else (mixed, own_plan)
        return float(expected_values(self.compiled, *plans)[player])


class MixtureSpace(PolicySpace):
    """The non-transitive mixture game; see the module docstring.

    Every population starts with one random point near the origin (the point equally far
    from every hump), ``start_scale * N(0, I)`` drawn from the run's seed and the player,
    as the prior code seeds its populations. Unlike the uniform tabular policy it has
    parameters (its coordinates), so it takes part in fusion like any other member; being
    random, it makes runs with fusion from the first iteration differ between seeds too.
    """

    description = "the non-transitive mixture game, whose policies are points"
    default_oracle = "gradient"
    utility_sum = 0.0
    symmetric = True
    prior_code_exploitability = True

    def __init__(self, game: MixtureGame, game_string: str = "mixture", *, seed: int = 0, start_scale: float = 0.1):
        self.game = game
        self.game_string = game_string
        self._initial = [float(start_scale) * np.random.default_rng([int(seed), player, 7]).standard_normal(2)
                         for player in range(2)]

    @classmethod
    def claims(cls, game: str) -> bool:
        return game in MIXTURE_GAMES

    @classmethod
    def compile_note(cls, game: str) -> str | None:
        return "nothing to compile (payoffs and best responses are closed-form)"

    @classmethod
    def evaluation_demo(cls, game: str, population_size: int, seed: int) -> str | None:
        """Random points: their payoff matrix, and the exploitability of a random mixture of them."""
        mixture = MIXTURE_GAMES[game]()
        rng = np.random.default_rng(seed)
        populations = [2.0 * rng.standard_normal((population_size, 2)) for _ in range(2)]
        meta = [rng.dirichlet(np.ones(population_size)) for _ in range(2)]
        started = time.perf_counter()
        matrix = mixture.payoff_matrix(populations[0], populations[1])
        matrix_s = time.perf_counter() - started
        started = time.perf_counter()
        # NashConv >= 0: a negative value is round-off (printed -0.000000 otherwise).
        nash_conv = max(mixture.nash_conv(populations[0], meta[0], populations[1], meta[1]), 0.0)
        mixture_s = time.perf_counter() - started
        return (f"{game}: {mixture.num_humps} humps, policies are points in the plane\n"
                f"payoff matrix of two populations of {population_size} random points: "
                f"{matrix.shape[0]}x{matrix.shape[1]}, entries in [{matrix.min():+.3f}, {matrix.max():+.3f}]  "
                f"[{matrix_s * 1e3:.1f} ms]\n"
                f"random meta-strategy mixture of those populations: exploitability {nash_conv / 2:.6f} "
                f"(NashConv {nash_conv:.6f}), global best responses  [{mixture_s * 1e3:.1f} ms]")

    @classmethod
    def create(cls, config: Any, *, compiled: CompiledGame | None = None) -> MixtureSpace:
        oracle = ORACLES.get(config.oracle or cls.default_oracle)
        start_scale = oracle.start_point_scale(oracle.settings(config.oracle_options))
        return cls(MIXTURE_GAMES[config.game](), config.game, seed=config.seed,
                   start_scale=0.1 if start_scale is None else start_scale)

    def initial_policy(self, player: int) -> np.ndarray:
        return self._initial[player].copy()

    def initial_parameters(self, player: int) -> StateDict:
        import torch  # noqa: PLC0415 (commands that only read runs do not load PyTorch)

        return {"point": torch.tensor(self._initial[player], dtype=torch.float64)}

    def new_meta_game(self) -> MixtureMetaGame:
        return MixtureMetaGame(self.game)

    def restore_meta_game(self, policies, matrix) -> MixtureMetaGame:
        return MixtureMetaGame.restore(self.game, policies, matrix)

    def evaluate(self, meta_game: MixtureMetaGame, meta_strategies) -> SpaceEvaluation:
        nash_conv = self.game.nash_conv(
            meta_game.points(0), meta_strategies[0], meta_game.points(1), meta_strategies[1]
        )
        return SpaceEvaluation(nash_conv=nash_conv, exploitability=nash_conv / 2)

    def prior_code_exploitability_of(self, meta_game: MixtureMetaGame, meta_strategies, seeds) -> float:
        """NashConv / 2 with each best response one 100-step gradient ascent from a random start
        (:meth:`~fusion_psro.games.mixture.MixtureGame.prior_code_nash_conv`); ``seeds[p]`` seeds
        player ``p``'s. A lower bound of :meth:`evaluate`'s exploitability."""
        nash_conv = self.game.prior_code_nash_conv(
            meta_game.points(0), meta_strategies[0], meta_game.points(1), meta_strategies[1], seeds=seeds
        )
        return nash_conv / 2

    def value_against(self, meta_game: MixtureMetaGame, player, policy, opponent_count, weights) -> float:
        # The game is symmetric: player 1's payoff of y against x is u(y, x), as player 0's.
        opponents = meta_game.points(1 - player)[:opponent_count]
        return float(self.game.payoff_against_mixture(np.asarray(policy)[None], opponents, weights)[0])


def evaluations() -> tuple[str, ...]:
    """The accepted ``--evaluation`` values: ``auto`` and every registered kind's."""
    found = ["auto"]
    for _, kind in GAME_KINDS.items():
        if kind.evaluation not in found:
            found.append(kind.evaluation)
    return tuple(found)


def game_kind(game: str, evaluation: str | None = "auto") -> type[PolicySpace]:
    """The registered kind of ``game``.

    With ``evaluation="auto"``: the first kind that claims it, else the fallback kind (a
    game too large to compile is claimed by the ``sampled`` kind). With an evaluation named
    (``"exact"``, ``"sampled"``): the first kind of that evaluation that serves the game.
    """
    if not isinstance(game, str) or not game.strip():
        raise ConfigError(f"a game must be a non-empty game string, got {game!r}")
    kinds = [kind for _, kind in GAME_KINDS.items()]
    if evaluation not in (None, "auto"):
        return _kind_by_evaluation(game, evaluation, kinds)
    for kind in kinds:
        if not kind.fallback and kind.claims(game):
            return kind
    for kind in kinds:
        if kind.fallback:
            return kind
    raise ConfigError(f"no registered game kind accepts {game!r}; kinds: {GAME_KINDS.accepted()}")


def _kind_by_evaluation(game: str, evaluation: str, kinds: list) -> type[PolicySpace]:
    if evaluation not in evaluations():
        raise ConfigError(f"unknown evaluation {evaluation!r}; accepted: {', '.join(evaluations())}")
    candidates = [k for k in kinds if k.evaluation == evaluation]
    for kind in sorted(candidates, key=lambda k: k.fallback):  # kinds that claim it before the fallback
        if kind.serves(game):
            return kind
    able = [k.evaluation for k in kinds if k.serves(game)]
    raise ConfigError(f"--evaluation {evaluation} does not apply to {game!r}; accepted for it: "
                      f"{', '.join(['auto', *dict.fromkeys(able)])}")


def make_space(config: Any, *, compiled: CompiledGame | None = None) -> PolicySpace:
    """The policy space of a run with ``config`` (its game kind's :meth:`PolicySpace.create`)."""
    return game_kind(config.game, getattr(config, "evaluation", "auto")).create(config, compiled=compiled)


__all__ = [
    "MIXTURE_GAMES", "MixtureSpace", "PolicySpace", "SpaceEvaluation", "TabularSpace", "evaluations", "game_kind",
    "make_space",
]
