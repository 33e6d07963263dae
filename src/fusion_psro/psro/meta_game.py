"""The PSRO meta-game: exact payoffs between two populations, kept up to date incrementally.

:class:`MetaGame` is what the loop asks of a meta-game; each kind of game has its own
implementation, both here:

* :class:`TabularMetaGame` (OpenSpiel games): each member's realization plan is computed
  once, when it joins (or is replaced, for P-PSRO's active learners); adding a member costs
  one new row or column of the payoff matrix, computed exactly by the engine.
* :class:`MixtureMetaGame` (the mixture game): each member's hump-activation vector plays
  the role of the realization plan (the payoff is bilinear in them).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fusion_psro.evaluation.sequence_form import realization_plans, sequence_form
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.games.mixture import MixtureGame


class MetaGame(Protocol):
    """Exact payoffs between the two populations, kept up to date as members join.

    ``matrix[i, j]`` is player 0's payoff of its member ``i`` against player 1's member
    ``j``. A member's *plan* is whatever its payoffs are linear in (a realization plan, an
    activation vector), so the plan of a meta-strategy mixture is the weighted sum.
    """

    matrix: np.ndarray

    @property
    def sizes(self) -> tuple[int, int]:
        """Population sizes ``(K, L)``."""

    def add(self, player: int, policy: np.ndarray) -> int:
        """Add a member to ``player``'s side (a row for player 0, a column for player 1); its index."""

    def replace(self, player: int, index: int, policy: np.ndarray) -> None:
        """Replace member ``index`` of ``player`` (a P-PSRO learner that kept training)."""

    def payoffs(self, player: int) -> np.ndarray:
        """``player``'s payoff matrix, rows = own members, columns = opponent members."""

    def plan(self, player: int, index: int) -> np.ndarray:
        """Member ``index``'s plan."""

    def mixed_plan(self, player: int, weights: np.ndarray) -> np.ndarray:
        """The plan of ``player``'s mixture with ``weights``."""

    def take_report(self) -> dict:
        """What the meta-game did since the last call, for the iteration's metrics row (a sampled
        meta-game: the games it played); emptied by the call. Exact meta-games report nothing."""
        return {}

    def checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """Arrays a checkpoint keeps beside the payoff matrix (a sampled meta-game: its standard
        errors and game counts), handed back to :meth:`PolicySpace.restore_meta_game`. None by default."""
        return {}


class TabularMetaGame(MetaGame):
    """Payoff matrix ``M[i, j]`` = player 0's exact expected utility, member i vs member j.

    Player 1's payoff is ``utility_sum - M``.
    """

    def __init__(self, compiled: CompiledGame):
        self.compiled = compiled
        self._plans: list[list[np.ndarray]] = [[], []]
        self.matrix = np.zeros((0, 0))
        # A0 @ plan1 for each column member: the value of each player-0 sequence against it.
        self._column_values: list[np.ndarray] = []

    @property
    def sizes(self) -> tuple[int, int]:
        return self.matrix.shape  # type: ignore[return-value]

    def _row(self, plan0: np.ndarray) -> np.ndarray:
        if not self._column_values:
            return np.zeros(0)
        return plan0 @ np.stack(self._column_values, axis=1)

    def _column(self, column_values: np.ndarray) -> np.ndarray:
        if not self._plans[0]:
            return np.zeros(0)
        return np.stack(self._plans[0]) @ column_values

    def add(self, player: int, policy: np.ndarray) -> int:
        """Add a member (validated ``[I, A]`` policy) to ``player``'s side; return its index."""
        plan = realization_plans(self.compiled, player, policy)
        if player == 0:
            row = self._row(plan)
            self._plans[0].append(plan)
            self.matrix = np.vstack([self.matrix, row[None, :]])
        else:
            values = np.asarray(sequence_form(self.compiled).matrices[0] @ plan)
            column = self._column(values)
            self._plans[1].append(plan)
            self._column_values.append(values)
            self.matrix = np.hstack([self.matrix, column[:, None]])
        return len(self._plans[player]) - 1

    def replace(self, player: int, index: int, policy: np.ndarray) -> None:
        """Replace member ``index`` of ``player`` (a P-PSRO learner that kept training)."""
        plan = realization_plans(self.compiled, player, policy)
        if player == 0:
            self._plans[0][index] = plan
            self.matrix[index, :] = self._row(plan)
        else:
            values = np.asarray(sequence_form(self.compiled).matrices[0] @ plan)
            self._plans[1][index] = plan
            self._column_values[index] = values
            self.matrix[:, index] = self._column(values)

    @classmethod
    def restore(cls, compiled: CompiledGame, policies: list[list[np.ndarray]], matrix: np.ndarray) -> TabularMetaGame:
        """Rebuild a meta-game from its members' policies and its saved payoff matrix.

        The matrix is taken as saved (not recomputed), so a resumed run continues from
        bit-identical payoffs.
        """
        meta_game = cls(compiled)
        if matrix.shape != (len(policies[0]), len(policies[1])):
            raise ValueError(f"saved meta-game is {matrix.shape}, populations are {len(policies[0])}x{len(policies[1])}")
        meta_game._plans = [[realization_plans(compiled, p, policy) for policy in policies[p]] for p in range(2)]
        mat0 = sequence_form(compiled).matrices[0]
        meta_game._column_values = [np.asarray(mat0 @ plan) for plan in meta_game._plans[1]]
        meta_game.matrix = np.array(matrix, dtype=np.float64)
        return meta_game

    def mixed_plan(self, player: int, weights: np.ndarray) -> np.ndarray:
        """Realization plan of ``player``'s meta-strategy mixture (members weighted by ``weights``)."""
        keep = np.flatnonzero(weights > 0)  # members without weight need no plan
        return weights[keep] @ np.stack([self._plans[player][k] for k in keep])

    def plan(self, player: int, index: int) -> np.ndarray:
        return self._plans[player][index]

    def payoffs(self, player: int) -> np.ndarray:
        """``player``'s payoff matrix, rows = own members, columns = opponent members."""
        if player == 0:
            return self.matrix
        return self.compiled.utility_sum - self.matrix.T


class MixtureMetaGame(MetaGame):
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


__all__ = ["MetaGame", "MixtureMetaGame", "TabularMetaGame"]
