"""What the PSRO loop needs from a game: member policies, the meta-game, exact evaluation.

The loop is written once; a *policy space* supplies the game-specific parts:

* :class:`TabularSpace` -- an OpenSpiel game compiled into arrays. A policy is a tabular
  ``[I, A]`` array; the meta-game keeps every member's realization plan; evaluation is
  the exact sequence-form best response.
* :class:`MixtureSpace` -- the non-transitive mixture game
  (:class:`~fusion_psro.games.mixture.MixtureGame`). A policy is a point in the plane
  (array ``[2]``) and is also its own parameter vector (``{"point": tensor}``), so every
  initialization strategy, Nash Policy Fusion included, applies to it unchanged. The
  meta-game keeps every member's hump-activation vector (the payoff is bilinear in
  them, so they play the role realization plans play in the tabular games); evaluation
  uses the certified global best response.
"""

from __future__ import annotations

import abc
import dataclasses

import numpy as np
import torch

from fusion_psro.evaluation import evaluate_plans
from fusion_psro.evaluation.sequence_form import expected_values, realization_plans
from fusion_psro.games.compiled import CompiledGame, compile_game
from fusion_psro.games.mixture import MixtureGame
from fusion_psro.oracles.base import StateDict
from fusion_psro.policies import uniform_policy
from fusion_psro.psro.meta_game import MetaGame

#: Game strings that name the mixture game.
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
    """The game-specific half of a PSRO run."""

    #: Canonical game string recorded in ``config.json``.
    game_string: str
    #: Sum of the players' payoffs (0 for zero-sum games).
    utility_sum: float

    @abc.abstractmethod
    def initial_policy(self, player: int) -> np.ndarray:
        """The policy every population starts with (and P-PSRO's placeholder)."""

    def initial_parameters(self, player: int) -> StateDict | None:
        """Parameters of :meth:`initial_policy`, or None when it has none (takes no part in fusion)."""
        return None

    @abc.abstractmethod
    def new_meta_game(self):
        """An empty meta-game with ``add``, ``replace``, ``matrix``, ``payoffs``, ``plan``, ``mixed_plan``."""

    @abc.abstractmethod
    def restore_meta_game(self, policies: list[list[np.ndarray]], matrix: np.ndarray):
        """A meta-game rebuilt from saved member policies and its saved payoff matrix."""

    @abc.abstractmethod
    def evaluate(self, meta_game, meta_strategies) -> SpaceEvaluation:
        """Exact NashConv and exploitability of the meta-strategy mixtures."""

    @abc.abstractmethod
    def value_against(self, meta_game, player: int, policy: np.ndarray, opponent_count: int, weights: np.ndarray) -> float:
        """``player``'s exact value of ``policy`` against the mixture of the opponent's first members."""


class TabularSpace(PolicySpace):
    """A compiled OpenSpiel game; see the module docstring."""

    def __init__(self, compiled: CompiledGame):
        self.compiled = compiled
        self.game_string = compiled.game_string
        self.utility_sum = compiled.utility_sum

    def initial_policy(self, player: int) -> np.ndarray:
        return uniform_policy(self.compiled, player)

    def new_meta_game(self) -> MetaGame:
        return MetaGame(self.compiled)

    def restore_meta_game(self, policies, matrix) -> MetaGame:
        return MetaGame.restore(self.compiled, policies, matrix)

    def evaluate(self, meta_game: MetaGame, meta_strategies) -> SpaceEvaluation:
        # The meta-game already holds every member's realization plan.
        plans = [meta_game.mixed_plan(p, meta_strategies[p]) for p in range(2)]
        evaluation = evaluate_plans(self.compiled, plans[0], plans[1])
        return SpaceEvaluation(nash_conv=evaluation.nash_conv, exploitability=evaluation.exploitability)

    def value_against(self, meta_game: MetaGame, player, policy, opponent_count, weights) -> float:
        opponent_plans = np.stack([meta_game.plan(1 - player, i) for i in range(opponent_count)])
        own_plan = realization_plans(self.compiled, player, policy)
        mixed = weights @ opponent_plans
        plans = (own_plan, mixed) if player == 0 else (mixed, own_plan)
        return float(expected_values(self.compiled, *plans)[player])


class MixtureMetaGame:
    """Meta-game of the mixture game: ``M[i, j] = u(x_i, y_j)``, player 1 gets ``-M``.

    Keeps each member's point and hump-activation vector; ``plan`` and ``mixed_plan``
    return activation vectors (a mixture's is the weighted average, exactly).
    """

    def __init__(self, game: MixtureGame):
        self.game = game
        self._points: list[list[np.ndarray]] = [[], []]
        self._activations: list[list[np.ndarray]] = [[], []]
        self.matrix = np.zeros((0, 0))

    @property
    def sizes(self) -> tuple[int, int]:
        return self.matrix.shape  # type: ignore[return-value]

    def _activation(self, point) -> np.ndarray:
        """Hump activations ``[H]`` of one point."""
        return self.game.activations(np.asarray(point, dtype=np.float64)[None])[0]

    def _payoffs_against(self, player: int, activation: np.ndarray) -> np.ndarray:
        """``u(member, x)`` for every member of ``player``'s side, x given by its activation."""
        if not self._activations[player]:
            return np.zeros(0)
        return self.game._payoff_from_activations(np.stack(self._activations[player]), activation[None])[:, 0]

    def add(self, player: int, point: np.ndarray) -> int:
        activation = self._activation(point)
        if player == 0:
            row = -self._payoffs_against(1, activation)  # u(x, y_j) = -u(y_j, x)
            self.matrix = np.vstack([self.matrix, row[None, :]])
        else:
            column = self._payoffs_against(0, activation)
            self.matrix = np.hstack([self.matrix, column[:, None]])
        self._points[player].append(np.array(point, dtype=np.float64))
        self._activations[player].append(activation)
        return len(self._points[player]) - 1

    def replace(self, player: int, index: int, point: np.ndarray) -> None:
        activation = self._activation(point)
        self._points[player][index] = np.array(point, dtype=np.float64)
        self._activations[player][index] = activation
        if player == 0:
            self.matrix[index, :] = -self._payoffs_against(1, activation)
        else:
            self.matrix[:, index] = self._payoffs_against(0, activation)

    @classmethod
    def restore(cls, game: MixtureGame, policies, matrix) -> MixtureMetaGame:
        meta_game = cls(game)
        if np.shape(matrix) != (len(policies[0]), len(policies[1])):
            raise ValueError(f"saved meta-game is {np.shape(matrix)}, populations are {len(policies[0])}x{len(policies[1])}")
        for player in range(2):
            for point in policies[player]:
                meta_game._points[player].append(np.array(point, dtype=np.float64))
                meta_game._activations[player].append(meta_game._activation(point))
        meta_game.matrix = np.array(matrix, dtype=np.float64)
        return meta_game

    def points(self, player: int) -> np.ndarray:
        """``[K, 2]`` points of ``player``'s members."""
        return np.stack(self._points[player])

    def plan(self, player: int, index: int) -> np.ndarray:
        return self._activations[player][index]

    def mixed_plan(self, player: int, weights: np.ndarray) -> np.ndarray:
        return np.asarray(weights) @ np.stack(self._activations[player])

    def payoffs(self, player: int) -> np.ndarray:
        """``player``'s payoff matrix, rows = own members, columns = opponent members."""
        return self.matrix if player == 0 else -self.matrix.T


class MixtureSpace(PolicySpace):
    """The non-transitive mixture game; see the module docstring.

    Every population starts with one random point near the origin (the point equally far
    from every hump), ``start_scale * N(0, I)`` drawn from the run's seed and the player,
    as the prior code seeds its populations. Unlike the uniform tabular policy it has
    parameters (its coordinates), so it takes part in fusion like any other member; being
    random, it makes runs with fusion from the first iteration differ between seeds too.
    """

    utility_sum = 0.0

    def __init__(self, game: MixtureGame, game_string: str = "mixture", *, seed: int = 0, start_scale: float = 0.1):
        self.game = game
        self.game_string = game_string
        self._initial = [float(start_scale) * np.random.default_rng([int(seed), player, 7]).standard_normal(2)
                         for player in range(2)]

    def initial_policy(self, player: int) -> np.ndarray:
        return self._initial[player].copy()

    def initial_parameters(self, player: int) -> StateDict:
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

    def value_against(self, meta_game: MixtureMetaGame, player, policy, opponent_count, weights) -> float:
        # The game is symmetric: player 1's payoff of y against x is u(y, x), as player 0's.
        opponents = meta_game.points(1 - player)[:opponent_count]
        return float(self.game.payoff_against_mixture(np.asarray(policy)[None], opponents, weights)[0])


def make_space(game: str, *, compiled: CompiledGame | None = None, seed: int = 0, start_scale: float = 0.1) -> PolicySpace:
    """The policy space of a game string: a mixture game name, or any OpenSpiel game.

    ``seed`` and ``start_scale`` draw the mixture game's initial points (ignored otherwise).
    """
    if game in MIXTURE_GAMES:
        return MixtureSpace(MIXTURE_GAMES[game](), game, seed=seed, start_scale=start_scale)
    return TabularSpace(compiled if compiled is not None else compile_game(game))


__all__ = ["MIXTURE_GAMES", "MixtureMetaGame", "MixtureSpace", "PolicySpace", "SpaceEvaluation", "TabularSpace", "make_space"]
