"""Meta-solvers for two-player zero-sum (or constant-sum) PSRO meta-games.

A PSRO *meta-game* is the empirical payoff matrix ``M`` between two populations:
``M[i, j]`` is player 0's expected utility when player 0 plays its ``i``-th policy and
player 1 plays its ``j``-th policy.  Player 1's utility is ``-M`` (or ``c - M`` for a
constant-sum game; the constant changes nothing below).  A *meta-solver* maps ``M`` to a
pair of probability vectors ``(sigma0, sigma1)`` over the two populations -- the
meta-strategies from which PSRO computes its next best responses.

Every solver here has the signature ``solver(M) -> MetaSolution`` once its keyword
arguments are fixed, and is registered in :data:`fusion_psro.registry.META_SOLVERS`
(in this order; other packages add theirs with :func:`fusion_psro.registry.register_meta_solver`):

``"nash"``     :func:`solve_nash` -- exact equilibrium by linear programming.
``"uniform"``  :func:`solve_uniform` -- uniform weights (PSRO with it is fictitious play).
``"prd"``      :func:`solve_prd` -- projected replicator dynamics (Lanctot et al., 2017).
``"rm"``       :func:`solve_regret_matching` -- regret-matching self-play, average strategies.
``"fp"``       :func:`solve_fictitious_play` -- fictitious play from a random start, as the
               mixture-game code of DPP-/PSD-PSRO approximates the meta-Nash.

A solver that draws random numbers declares a keyword parameter ``seed``
(:func:`takes_seed`); the PSRO loop then passes it a seed derived from the run's seed and
the iteration, so runs are reproducible and every call draws afresh.

References
----------
.. [Lanctot2017] M. Lanctot, V. Zambaldi, A. Gruslys, A. Lazaridou, K. Tuyls, J. Perolat,
   D. Silver, T. Graepel. "A Unified Game-Theoretic Approach to Multiagent Reinforcement
   Learning". NeurIPS 2017. https://arxiv.org/abs/1711.00832
.. [HartMasColell2000] S. Hart, A. Mas-Colell. "A Simple Adaptive Procedure Leading to
   Correlated Equilibrium". Econometrica 68(5), 2000.
"""

from __future__ import annotations

import inspect
import logging
import numbers
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import linprog

from fusion_psro import options
from fusion_psro.errors import ConfigError, FusionPSROError, InvalidMetaStrategyError, NumericalError
from fusion_psro.registry import META_SOLVERS, register_meta_solver
from fusion_psro.validation import validate_meta_strategy

log = logging.getLogger(__name__)

__all__ = [
    "META_SOLVERS",
    "InvalidMetaGameError",
    "InvalidMetaSolverError",
    "MetaSolution",
    "MetaSolver",
    "get_meta_solver",
    "meta_exploitability",
    "meta_nash_conv",
    "solve_fictitious_play",
    "solve_nash",
    "solve_prd",
    "solve_regret_matching",
    "solve_uniform",
    "takes_seed",
]


class InvalidMetaGameError(FusionPSROError, ValueError):
    """A meta-game payoff matrix is not a finite, non-empty, 2-D numeric array."""


class InvalidMetaSolverError(ConfigError):
    """An invalid parameter for a meta-solver.

    An unknown meta-solver name is an :class:`~fusion_psro.errors.UnknownComponentError`.
    """


@dataclass(frozen=True)
class MetaSolution:
    """Result of a meta-solver.

    Attributes
    ----------
    strategies : tuple of two numpy.ndarray
        ``(sigma0, sigma1)``: read-only float64 probability vectors of lengths ``K`` and
        ``L`` (non-negative, summing to one).
    value : float
        Player 0's expected payoff under the returned profile, ``sigma0 @ M @ sigma1``.
        For :func:`solve_nash` this is the value of the game.
    solver : str
        Name of the solver that produced the solution (a name in :data:`META_SOLVERS`).
    """

    strategies: tuple[np.ndarray, np.ndarray]
    value: float
    solver: str


MetaSolver = Callable[[np.ndarray], MetaSolution]
"""Type of a meta-solver: payoff matrix ``M`` (K x L) -> :class:`MetaSolution`."""


# --------------------------------------------------------------------------- helpers


def _as_meta_game(M) -> np.ndarray:
    """Validate a meta-game payoff matrix and return it as a float64 C-contiguous copy."""
    if M is None or isinstance(M, (str, bytes)):
        raise InvalidMetaGameError(f"meta-game payoff matrix must be a 2-D numeric array, got {type(M).__name__}")
    try:
        arr = np.asarray(M)
    except (ValueError, TypeError) as exc:  # ragged nested lists, odd objects
        raise InvalidMetaGameError(f"meta-game payoff matrix cannot be read as an array: {exc}") from exc
    if arr.dtype == object:
        bad = [v for v in arr.flat if isinstance(v, bool) or not isinstance(v, numbers.Real)]
        if bad:
            raise InvalidMetaGameError(
                f"meta-game payoff matrix has non-numeric entries, e.g. {bad[0]!r} of type {type(bad[0]).__name__}"
            )
        arr = arr.astype(np.float64)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InvalidMetaGameError(
            f"meta-game payoff matrix must have a real numeric (integer or floating) dtype, got dtype {arr.dtype}"
        )
    if arr.ndim != 2:
        raise InvalidMetaGameError(
            f"meta-game payoff matrix must be 2-D (K x L), got {arr.ndim}-D array of shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidMetaGameError(
            f"meta-game payoff matrix needs at least one row and one column, got shape {arr.shape}"
        )
    arr = np.array(arr, dtype=np.float64, order="C")  # always a private copy
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        i, j = (int(v) for v in bad[0])
        raise InvalidMetaGameError(
            f"meta-game payoff matrix must be finite: {len(bad)} non-finite entr{'y' if len(bad) == 1 else 'ies'}, "
            f"first at [{i}, {j}] = {float(arr[i, j])}"
        )
    return arr


def _solution(M: np.ndarray, s0: np.ndarray, s1: np.ndarray, solver: str) -> MetaSolution:
    s0 = np.ascontiguousarray(s0, dtype=np.float64)
    s1 = np.ascontiguousarray(s1, dtype=np.float64)
    s0.setflags(write=False)
    s1.setflags(write=False)
    return MetaSolution(strategies=(s0, s1), value=float(s0 @ M @ s1), solver=solver)


def _clip_normalise(p: np.ndarray) -> np.ndarray:
    """Clip tiny negatives (solver round-off) to zero and renormalise to sum one."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    total = p.sum()
    if not total > 0.0:  # cannot happen for an LP solution of a simplex; be safe
        return np.full(p.shape, 1.0 / p.size)
    return p / total


def _initial_strategies(initial, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Uniform strategies, or validated user-supplied ones."""
    if initial is None:
        return np.full(shape[0], 1.0 / shape[0]), np.full(shape[1], 1.0 / shape[1])
    try:
        parts = list(initial)
    except TypeError as exc:
        raise InvalidMetaStrategyError("initial_strategies must be a pair (sigma0, sigma1)") from exc
    if len(parts) != 2:
        raise InvalidMetaStrategyError(f"initial_strategies must be a pair (sigma0, sigma1), got {len(parts)} items")
    out = [validate_meta_strategy(p, n, player=player) for player, (p, n) in enumerate(zip(parts, shape))]
    out = [arr / arr.sum() for arr in out]
    return out[0], out[1]


def meta_nash_conv(M, sigma0, sigma1) -> float:
    """NashConv of a meta-strategy profile in the meta-game ``M``.

    The sum of both players' best-response gains:
    ``max_i (M @ sigma1)[i] - min_j (sigma0 @ M)[j]``, which is zero exactly at a Nash
    equilibrium of the (zero- or constant-sum) meta-game.

    Parameters
    ----------
    M : array_like, shape (K, L)
        Player 0's payoff matrix.
    sigma0, sigma1 : array_like, shapes (K,) and (L,)
        Meta-strategies of player 0 and player 1.

    Returns
    -------
    float
        Non-negative (up to round-off) NashConv.
    """
    M = _as_meta_game(M)
    s0 = np.asarray(sigma0, dtype=np.float64)
    s1 = np.asarray(sigma1, dtype=np.float64)
    if s0.shape != (M.shape[0],) or s1.shape != (M.shape[1],):
        raise InvalidMetaStrategyError(
            f"meta-strategies must have shapes ({M.shape[0]},) and ({M.shape[1]},), got {s0.shape} and {s1.shape}"
        )
    return float(np.max(M @ s1) - np.min(s0 @ M))


def meta_exploitability(M, sigma0, sigma1) -> float:
    """Exploitability ``meta_nash_conv(M, sigma0, sigma1) / 2`` (the package's convention)."""
    return 0.5 * meta_nash_conv(M, sigma0, sigma1)


# --------------------------------------------------------------------------- Nash (LP)


def _maximin_lp(A: np.ndarray) -> tuple[np.ndarray, float]:
    """Maximin strategy of the row player of ``A``: ``max_x min_j (x @ A)[j]``.

    Variables ``[x_0 .. x_{K-1}, v]``; maximise ``v`` subject to ``v - x @ A[:, j] <= 0``
    for every column ``j``, ``sum(x) == 1``, ``x >= 0``, ``v`` free.
    """
    K, L = A.shape
    c = np.zeros(K + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-A.T, np.ones((L, 1))])
    b_ub = np.zeros(L)
    A_eq = np.hstack([np.ones((1, K)), np.zeros((1, 1))])
    bounds = [(0.0, None)] * K + [(None, None)]
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[1.0], bounds=bounds, method="highs")
    if res.status != 0 or res.x is None:  # the LP is always feasible and bounded
        raise NumericalError(f"linprog failed on the meta-game LP (status {res.status}): {res.message}")
    return res.x[:K], float(res.x[-1])


@register_meta_solver("nash")
def solve_nash(M) -> MetaSolution:
    """Exact Nash equilibrium of a two-player zero-sum meta-game by linear programming.

    Solves two LPs with :func:`scipy.optimize.linprog` (``method="highs"``): the maximin
    LP of player 0, ``max_x min_j (x @ M)[j]``, and the minimax LP of player 1,
    ``min_y max_i (M @ y)[i]`` (solved as the maximin LP of ``-M.T``).  By the minimax
    theorem (von Neumann, 1928) both optimal values equal the value of the game and the
    pair of optimal strategies is a Nash equilibrium.  Constant-sum games have the same
    equilibria.

    ``M`` is affinely rescaled to ``[-1, 1]`` before solving (strategies are invariant to
    positive affine transformations of payoffs), which keeps the solver's absolute
    tolerances meaningful for any payoff scale.  Tiny negative probabilities from solver
    round-off are clipped and the vectors renormalised.  When the game has several
    equilibria, the one returned is whichever vertex HiGHS finds.

    Parameters
    ----------
    M : array_like, shape (K, L)
        Player 0's payoff matrix.

    Returns
    -------
    MetaSolution
        Equilibrium strategies; ``value`` is the game value ``sigma0 @ M @ sigma1``.

    Raises
    ------
    InvalidMetaGameError
        If ``M`` is not a finite 2-D numeric array with at least one row and column.

    References
    ----------
    J. von Neumann, "Zur Theorie der Gesellschaftsspiele", Math. Annalen 100, 1928; the LP
    formulation follows e.g. Shoham & Leyton-Brown, *Multiagent Systems* (2009), sec. 4.1.
    """
    M = _as_meta_game(M)
    hi, lo = float(M.max()), float(M.min())
    half_range = 0.5 * (hi - lo)
    A = (M - 0.5 * (hi + lo)) / half_range if half_range > 0 else np.zeros_like(M)
    x, v0 = _maximin_lp(A)
    y, neg_v1 = _maximin_lp(-A.T)
    v1 = -neg_v1
    if abs(v0 - v1) > 1e-7:
        log.warning("solve_nash: primal and dual LP values differ by %.3g (scaled payoffs)", abs(v0 - v1))
    sol = _solution(M, _clip_normalise(x), _clip_normalise(y), "nash")
    log.debug("solve_nash: %dx%d meta-game, value %.6g", M.shape[0], M.shape[1], sol.value)
    return sol


# --------------------------------------------------------------------------- uniform


@register_meta_solver("uniform")
def solve_uniform(M) -> MetaSolution:
    """Uniform meta-strategies over each population.

    PSRO with this meta-solver is (a generalisation of) fictitious play: each new best
    response answers the uniform mixture of all previous policies [Lanctot2017]_.

    Parameters
    ----------
    M : array_like, shape (K, L)
        Player 0's payoff matrix (only its shape matters, but it is validated).

    Returns
    -------
    MetaSolution
        ``sigma0 = 1/K``, ``sigma1 = 1/L``; ``value`` is the mean of ``M``.
    """
    M = _as_meta_game(M)
    K, L = M.shape
    return _solution(M, np.full(K, 1.0 / K), np.full(L, 1.0 / L), "uniform")


# --------------------------------------------------------------------------- PRD


class _JointStrategies:
    """Both players' strategies in one vector ``z = [x, y]``, so that each elementwise
    operation of the dynamics is one NumPy call for both players (the cost of these
    solvers is NumPy call overhead, not arithmetic)."""

    def __init__(self, M: np.ndarray, x0: np.ndarray, y0: np.ndarray):
        K, L = M.shape
        self.M, self.neg_MT = M, np.ascontiguousarray(-M.T)
        self.z = np.concatenate([x0, y0])
        self.x, self.y = self.z[:K], self.z[K:]
        self.advantage = np.empty(K + L)
        self._v0, self._v1 = self.advantage[:K], self.advantage[K:]
        self._w = np.empty(K + L)
        self.offsets = np.array([0, K])
        self.segment = np.repeat([0, 1], [K, L])

    def per_player_sum(self, values: np.ndarray) -> np.ndarray:
        """Each player's sum of ``values``, broadcast back to that player's entries."""
        return np.add.reduceat(values, self.offsets)[self.segment]

    def compute_advantage(self) -> np.ndarray:
        """``u_i - sigma @ u`` for every member of both populations, into ``self.advantage``."""
        np.dot(self.M, self.y, out=self._v0)
        np.dot(self.neg_MT, self.x, out=self._v1)
        np.multiply(self.advantage, self.z, out=self._w)
        self.advantage -= self.per_player_sum(self._w)
        return self.advantage


def _project_gamma_simplex(y: np.ndarray, gamma: float, idx: np.ndarray, c0: np.ndarray) -> None:
    """In place: Euclidean projection of ``y`` onto ``{p : p >= gamma, sum(p) = 1}``.

    Same algorithm as OpenSpiel's ``_simplex_projection`` (Wang & Carreira-Perpinan,
    2013, arXiv:1309.1541) with ``c0 = 1 - (n - idx) * gamma`` precomputed.
    """
    u = np.sort(y)[::-1]
    u_tmp = (c0 - np.cumsum(u)) / idx
    cond = u + u_tmp <= gamma
    rho = int(cond.argmax())
    if not cond[rho]:
        rho = y.shape[0]
    np.add(y, u_tmp[rho - 1], out=y)
    np.maximum(y, gamma, out=y)


@register_meta_solver("prd")
def solve_prd(
    M,
    iterations: int = 2_000,
    step: float = 0.05,
    exploration: float = 1e-6,
    *,
    average_last: int | None = None,
    initial_strategies: Sequence | None = None,
) -> MetaSolution:
    """Projected replicator dynamics (PRD) meta-solver.

    Reimplements OpenSpiel's ``projected_replicator_dynamics`` (Lanctot et al., 2017) for
    two players, fused over both players to cut NumPy call overhead.  Starting from
    ``initial_strategies`` (uniform by default), each iteration updates both players
    simultaneously with the Euler step of the replicator equation,

        ``x <- x + step * x * (u - x @ u)``,

    where ``u = M @ y`` for player 0 and ``u = -M.T @ x`` for player 1, then projects each
    strategy in Euclidean norm onto the ``exploration``-floored simplex
    ``{p : p >= exploration, sum(p) = 1}``.  The result is the average of the initial
    strategies and all ``iterations`` iterates (or of the last ``average_last`` of them),
    exactly like OpenSpiel's ``StrategyAverager``.  Given the same parameters the output
    matches OpenSpiel's to floating-point round-off.

    Defaults.  OpenSpiel integrates the dynamics for ``prd_iterations * prd_dt =
    100_000 * 1e-3 = 100`` time units; the defaults here keep that horizon with 50 times
    fewer, larger steps (``iterations=2_000``, ``step=0.05``), so that a 50 x 50 meta-game
    takes tens of milliseconds instead of seconds (the loop is sequential; its cost is
    NumPy call overhead, about 15-40 us per iteration). On a random 50 x 50 matrix this
    gave the same meta-game NashConv as OpenSpiel's full defaults (0.042 vs 0.041).
    ``exploration=1e-6`` (``prd_gamma``), exact simplex projection and averaging over the
    whole trajectory are OpenSpiel's defaults. PRD is not invariant to payoff scale:
    ``step`` multiplies raw payoffs.

    The projection is skipped for a player whose updated strategy is strictly above the
    floor everywhere; OpenSpiel's projection would then only shift it by the round-off in
    its sum, so results agree to about 1e-15.

    Parameters
    ----------
    M : array_like, shape (K, L)
        Player 0's payoff matrix; player 1's payoff is ``-M``.
    iterations : int, default 2000
        Number of PRD steps (OpenSpiel's ``prd_iterations``; its default is 100000).
    step : float, default 0.05
        Euler step size (``prd_dt``; OpenSpiel's default is 1e-3 with 50x more steps).
    exploration : float, default 1e-6
        Minimum probability of every population member (``prd_gamma``); needs
        ``exploration * max(K, L) < 1``.
    average_last : int or None, default None
        Average only the last ``average_last`` strategies
        (``average_over_last_n_strategies``); ``None`` averages the whole trajectory,
        including the initial strategies.
    initial_strategies : pair of array_like, optional
        Starting ``(sigma0, sigma1)`` (``prd_initial_strategies``); uniform if omitted.

    Returns
    -------
    MetaSolution
        Average PRD strategies; ``value`` is ``sigma0 @ M @ sigma1``.

    Raises
    ------
    InvalidMetaGameError
        If ``M`` is not a finite 2-D numeric array with at least one row and column.
    InvalidMetaSolverError
        If a parameter is out of range.
    InvalidMetaStrategyError
        If ``initial_strategies`` is not a pair of probability vectors of the right sizes.

    References
    ----------
    M. Lanctot et al., "A Unified Game-Theoretic Approach to Multiagent Reinforcement
    Learning", NeurIPS 2017, https://arxiv.org/abs/1711.00832; OpenSpiel
    ``open_spiel/python/algorithms/projected_replicator_dynamics.py``.
    """
    M = _as_meta_game(M)
    K, L = M.shape
    iterations, step, gamma, average_last = _prd_parameters(iterations, step, exploration, average_last, (K, L))
    x0, y0 = _initial_strategies(initial_strategies, (K, L))
    total = _prd_strategy_sum(_JointStrategies(M, x0, y0), iterations, step, gamma, average_last)
    sol = _solution(M, _clip_normalise(total[:K]), _clip_normalise(total[K:]), "prd")
    log.debug("solve_prd: %dx%d meta-game, %d iterations, value %.6g", K, L, iterations, sol.value)
    return sol


def _prd_parameters(iterations, step, exploration, average_last,
                    shape: tuple[int, int]) -> tuple[int, float, float, int | None]:
    """Checked ``(iterations, step, exploration, average_last)`` of :func:`solve_prd`."""
    iterations = options.integer(iterations, "iterations", minimum=0, error=InvalidMetaSolverError)
    step = options.positive_float(step, "step", error=InvalidMetaSolverError)
    gamma = options.non_negative_float(exploration, "exploration", error=InvalidMetaSolverError)
    if gamma * max(shape) >= 1.0:
        raise InvalidMetaSolverError(
            f"exploration must satisfy exploration * max(K, L) < 1, got {gamma!r} for a {shape[0]}x{shape[1]} meta-game"
        )
    if average_last is not None:
        average_last = options.positive_int(average_last, "average_last", error=InvalidMetaSolverError)
    return iterations, step, gamma, average_last


def _prd_strategy_sum(joint: _JointStrategies, iterations: int, step: float, gamma: float,
                      average_last: int | None) -> np.ndarray:
    """Run PRD from ``joint``'s strategies; the sum of the strategies to average (both players)."""
    z, x, y, v = joint.z, joint.x, joint.y, joint.advantage
    (idx0, c00), (idx1, c01) = (_projection_constants(len(p), gamma) for p in (x, y))
    # Strategy k (k = 0 is the initial one) enters the average iff k >= first_kept.
    total = iterations + 1
    first_kept = 0 if average_last is None else max(0, total - average_last)
    acc = z.copy() if first_kept == 0 else np.zeros(z.shape[0])
    for k in range(1, total):
        joint.compute_advantage()  # advantage of each member over the mixture, into v
        v *= z
        v *= step
        z += v  # Euler step of the replicator equation (sum(z) stays 1)
        mins = np.minimum.reduceat(z, joint.offsets)
        if mins[0] <= gamma:
            _project_gamma_simplex(x, gamma, idx0, c00)
        if mins[1] <= gamma:
            _project_gamma_simplex(y, gamma, idx1, c01)
        if k >= first_kept:
            acc += z
    return acc


def _projection_constants(size: int, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """``(idx, c0)`` of :func:`_project_gamma_simplex` for strategies of ``size`` entries."""
    idx = np.arange(1, size + 1, dtype=np.float64)
    return idx, 1.0 - (size - idx) * gamma


# --------------------------------------------------------------------------- regret matching


@register_meta_solver("rm")
def solve_regret_matching(
    M,
    iterations: int = 2_000,
    *,
    initial_strategies: Sequence | None = None,
) -> MetaSolution:
    """Regret-matching self-play on the meta-game; returns the average strategies.

    Both players run regret matching (Hart & Mas-Colell, 2000) simultaneously against
    each other's current strategy: each accumulates, for every population member, the
    regret ``u_i - sigma @ u`` of not having played it, and plays proportionally to the
    positive part of its cumulative regrets (uniformly while none is positive).  In a
    two-player zero-sum game the uniform average of the played strategies converges to a
    Nash equilibrium, with NashConv ``O(1 / sqrt(iterations))`` (the average-regret bound).

    Parameters
    ----------
    M : array_like, shape (K, L)
        Player 0's payoff matrix; player 1's payoff is ``-M``.
    iterations : int, default 2000
        Number of strategies played and averaged (a 50 x 50 meta-game takes a few tens of ms).
    initial_strategies : pair of array_like, optional
        The first strategies played; uniform if omitted.

    Returns
    -------
    MetaSolution
        Average strategies; ``value`` is ``sigma0 @ M @ sigma1``.

    Raises
    ------
    InvalidMetaGameError
        If ``M`` is not a finite 2-D numeric array with at least one row and column.
    InvalidMetaSolverError
        If ``iterations < 1``.
    InvalidMetaStrategyError
        If ``initial_strategies`` is not a pair of probability vectors of the right sizes.

    References
    ----------
    S. Hart, A. Mas-Colell, "A Simple Adaptive Procedure Leading to Correlated
    Equilibrium", Econometrica 68(5), 2000.
    """
    M = _as_meta_game(M)
    iterations = options.positive_int(iterations, "iterations", error=InvalidMetaSolverError)
    K, L = M.shape
    x0, y0 = _initial_strategies(initial_strategies, (K, L))

    joint = _JointStrategies(M, x0, y0)
    z = joint.z
    regret = np.zeros(K + L)
    positive = np.empty(K + L)
    uniform = np.concatenate([np.full(K, 1.0 / K), np.full(L, 1.0 / L)])
    acc = np.zeros(K + L)
    for _ in range(iterations):
        acc += z
        regret += joint.compute_advantage()
        np.maximum(regret, 0.0, out=positive)
        norm = joint.per_player_sum(positive)
        z[:] = uniform
        np.divide(positive, norm, out=z, where=norm > 0.0)
    sol = _solution(M, _clip_normalise(acc[:K]), _clip_normalise(acc[K:]), "rm")
    log.debug("solve_regret_matching: %dx%d meta-game, %d iterations, value %.6g", K, L, iterations, sol.value)
    return sol


# --------------------------------------------------------------------------- fictitious play


@register_meta_solver("fp")
def solve_fictitious_play(M, iterations: int = 1_000, *, seed: int | None = None) -> MetaSolution:
    """Fictitious play from a random start: an approximate, deliberately noisy meta-Nash.

    The meta-solver of the mixture-game code of DPP-PSRO and PSD-PSRO (Perez-Nieves et
    al. 2021; Yao et al. 2023), which PSRO there uses in place of an exact Nash. Each
    player starts from a random mixed strategy (uniform(0, 1) weights, normalized); then,
    ``iterations`` times, both players play a pure best response to the other's current
    average (ties to the lowest index) and add it to their own average, which weighs the
    start and every best response equally. The averages after the last step are returned.

    A square antisymmetric ``M`` (``M == -M.T``, a symmetric zero-sum game such as the
    meta-game of a symmetric population) gets one random start for both players; both
    then follow the same sequence, which is symmetric fictitious play, the prior code's
    form, and the two strategies are equal.

    The average converges to a Nash equilibrium of a zero-sum game (Robinson, 1951), slowly
    and not monotonically; after finitely many steps the result depends on the start, so
    different seeds give different meta-strategies (that noise is part of the prior
    code's setup, not a defect to correct).

    Parameters
    ----------
    M : array_like, shape (K, L)
        Player 0's payoff matrix; player 1's payoff is ``-M``.
    iterations : int, default 1000
        Best responses added to each average (the prior code's 1,000).
    seed : int, optional
        Seed of the random start; None draws one from fresh entropy.

    Returns
    -------
    MetaSolution
        The two average strategies; ``value`` is ``sigma0 @ M @ sigma1``.

    Raises
    ------
    InvalidMetaGameError
        If ``M`` is not a finite 2-D numeric array with at least one row and column.
    InvalidMetaSolverError
        If ``iterations`` is not an integer >= 1.

    References
    ----------
    G. W. Brown, "Iterative solution of games by fictitious play", 1951; J. Robinson, "An
    iterative method of solving a game", Annals of Mathematics 54(2), 1951.
    """
    M = _as_meta_game(M)
    iterations = options.positive_int(iterations, "iterations", error=InvalidMetaSolverError)
    K, L = M.shape
    rng = np.random.default_rng(seed)
    row_start = rng.uniform(0.0, 1.0, K)
    symmetric = K == L and np.array_equal(M, -M.T)
    column_start = row_start.copy() if symmetric else rng.uniform(0.0, 1.0, L)
    # Sums of the start and of the pure best responses; the averages are these / (t + 1).
    row_sum, column_sum = row_start / row_start.sum(), column_start / column_start.sum()
    for _ in range(iterations):
        row_response = int(np.argmax(M @ column_sum))  # the scale of the sums changes no argmax
        # In a symmetric game the column player's best response to the same average is the same member.
        column_response = row_response if symmetric else int(np.argmin(row_sum @ M))
        row_sum[row_response] += 1.0
        column_sum[column_response] += 1.0
    sol = _solution(M, row_sum / (iterations + 1), column_sum / (iterations + 1), "fp")
    log.debug("solve_fictitious_play: %dx%d meta-game, %d iterations, value %.6g", K, L, iterations, sol.value)
    return sol


def takes_seed(solver: MetaSolver) -> bool:
    """Whether a meta-solver draws random numbers and so takes a ``seed`` keyword argument."""
    try:
        return "seed" in inspect.signature(solver).parameters
    except (TypeError, ValueError):  # a callable without an inspectable signature
        return False


# --------------------------------------------------------------------------- look-up


def get_meta_solver(name: str, **kwargs) -> MetaSolver:
    """Look up a meta-solver by name, optionally fixing its keyword arguments.

    Parameters
    ----------
    name : str
        A name registered in :data:`META_SOLVERS`: ``"nash"``, ``"uniform"``, ``"prd"``,
        ``"rm"``, ``"fp"``, or one registered with :func:`fusion_psro.registry.register_meta_solver`.
    **kwargs
        Keyword arguments bound to the solver (e.g. ``iterations=10_000`` for ``"prd"``);
        they are checked against its signature now, their values when it is called.

    Returns
    -------
    callable
        ``solver(M) -> MetaSolution``.

    Raises
    ------
    UnknownComponentError
        If ``name`` is not registered; the message lists the accepted names.
    InvalidMetaSolverError
        If a keyword argument is not a parameter of that solver; the message lists its
        keyword parameters.
    """
    solver = META_SOLVERS.get(name)
    if not kwargs:
        return solver
    try:
        inspect.signature(solver).bind(None, **kwargs)
    except TypeError as exc:
        raise InvalidMetaSolverError(
            f"invalid arguments for meta-solver {name!r}: {exc}; its keyword arguments: {_keyword_parameters(solver)}"
        ) from None
    return partial(solver, **kwargs)


def _keyword_parameters(solver: MetaSolver) -> str:
    """``"a, b"``: the parameters after the payoff matrix, for error messages (``"none"``)."""
    parameters = list(inspect.signature(solver).parameters.values())[1:]
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return ", ".join(names) or "none"
