"""The non-transitive mixture game: 7 Gaussian humps on a circle, policies are points.

The game was introduced by Perez-Nieves et al. (2021) to test PSRO variants with a
gradient oracle [PerezNieves2021]_, and reused by the later works in the same lineage
(BD&RD-PSRO, PSD-PSRO) and by Fusion-PSRO [Lian2024]_. Constants follow
``PAPER_NOTES.md`` ("Non-transitive mixture game") and the DPP-PSRO public code.

The game
--------
A policy (pure strategy) is a point ``x`` in the plane. Its *hump activation* vector
has one entry per hump centre ``mu_k``::

    p_k(x) = exp(-0.5 * precision * |x - mu_k|^2),        precision = 0.54

(the prior code writes ``0.54 * I`` as the "covariance" but uses it as the matrix of the
quadratic form, so 0.54 is a precision). The payoff of ``x`` against ``y`` is::

    u(x, y) = p(x)^T S p(y) + 0.5 * sum_k (p_k(x) - p_k(y))

where ``S`` is the ``H x H`` cyclic antisymmetric matrix (``H = 7``) whose row ``k`` is
``+1`` on the next ``(H-1)/2 = 3`` humps and ``-1`` on the three after
(:func:`cyclic_dominance_matrix`). ``u(y, x) = -u(x, y)``: the game is symmetric and
zero-sum, so its value is 0.

Mixtures
~~~~~~~~
``u`` is affine in ``p(y)`` for fixed ``x`` (and vice versa), so the payoff against a
mixture ``sigma = sum_j w_j delta_{y_j}`` (weights summing to one) is exactly the payoff
against the weight-averaged activation vector ``q = sum_j w_j p(y_j)``::

    u(x, sigma) = p(x) . c + const,   c = S q + 0.5,   const = -0.5 * sum(q).

So a best response maximises the weighted sum of Gaussians ``f(x) = sum_k c_k p_k(x)``.

Hump order (what was checked)
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The cyclic ``S`` couples hump ``k`` to humps ``k+1 .. k+3`` *by index*, so which humps
dominate which in the plane depends on the order in which the centres are listed.

* :data:`CIRCLE_CENTRES` (the default; the order of ``PAPER_NOTES.md``) lists the humps
  counter-clockwise: their polar angles are -0.505, 50.925, 102.353, 153.781, -153.781,
  -102.353, -50.925 degrees, strictly increasing (mod 360) in steps of 51.43 degrees
  (one step of 52.44 between humps 3 and 4 and one of 50.42 between 6 and 0: the
  published centres are a very slightly irregular heptagon), all at radius
  2.8723 +- 3e-5. With this order each hump beats the next three *going around the
  circle* (counter-clockwise) and loses to the three after: ``u(mu_k, mu_{k+j}) > 0``
  for ``j = 1, 2, 3`` and ``< 0`` for ``j = 4, 5, 6`` (margins 1.03 to 1.79, checked in
  ``tests/test_mixture.py``). This is the rotational cycle the notes intend.
* The DPP-PSRO public code (``diversepsro/diverse_psro``, ``non_mixture_model.py``)
  lists the *same* centres in a zig-zag order (angles 0, +51, -51, +102, -102, +154,
  -154 degrees) with the same index-cyclic ``S``. Abstractly that is the same regular
  tournament (each hump still beats three and loses to three), but in the plane it is a
  different game: the hump at angle 0 beats both of its neighbours and the hump at
  -154 degrees loses to both, so the dominance does not rotate around the circle. Use
  :meth:`MixtureGame.dpp_psro_prior_code` to reproduce that code exactly. (Its later
  derivatives, e.g. the BD&RD-PSRO code, generate centres counter-clockwise with
  ``cos/sin(2 pi i / H)`` and a cyclic ``S`` -- the rotational game -- but with 9 humps
  on radius 4: ``MixtureGame(centres=...)`` builds such variants.)

Oracles and exploitability
~~~~~~~~~~~~~~~~~~~~~~~~~~
:meth:`MixtureGame.gradient_best_response` is the papers' oracle: Adam on the 2-D
point. The prior code starts it at ``0.1 * N(0, I)`` (near the origin) and, to *score*
exploitability, runs it once for 50 steps (``10 * TRAIN_ITERS``, lr 0.1). A single local
ascent can stop on the wrong hump, so that score depends on luck.
:meth:`MixtureGame.global_best_response` removes the luck: a dense grid search with a
certified error bound, polished by L-BFGS; :meth:`MixtureGame.exploitability` uses it.

References
----------
.. [PerezNieves2021] N. Perez-Nieves, Y. Yang, O. Slumbers, D. H. Mguni, Y. Wen, J. Wang.
   "Modelling Behavioural Diversity for Learning in Open-Ended Games". ICML 2021
   (DPP-PSRO). https://arxiv.org/abs/2103.07927
.. [Lian2024] J. Lian, Y. Huang et al. "Fusion-PSRO: Nash Policy Fusion for Policy Space
   Response Oracles". arXiv 2405.21027.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy.optimize import minimize

from fusion_psro.errors import ConfigError, InvalidPolicyError, NumericalError
from fusion_psro.validation import validate_meta_strategy

__all__ = [
    "CIRCLE_CENTRES",
    "DEFAULT_GRID",
    "DPP_PSRO_CENTRES",
    "LINEAR_WEIGHT",
    "PRECISION",
    "PRIOR_CODE_BEST_RESPONSE",
    "GridSpec",
    "MixtureGame",
    "PointBestResponse",
    "cyclic_dominance_matrix",
]

#: Hump centres in counter-clockwise order around the circle (``PAPER_NOTES.md``).
CIRCLE_CENTRES = np.array(
    [
        (2.8722, -0.0253),
        (1.8105, 2.2298),
        (-0.6145, 2.8058),
        (-2.5768, 1.2690),
        (-2.5768, -1.2690),
        (-0.6145, -2.8058),
        (1.8105, -2.2298),
    ]
)
CIRCLE_CENTRES.flags.writeable = False

#: The same centres in the zig-zag order of the DPP-PSRO public code (its exact values).
DPP_PSRO_CENTRES = np.array(
    [
        (2.8722, -0.025255),
        (1.8105, 2.2298),
        (1.8105, -2.2298),
        (-0.61450, 2.8058),
        (-0.61450, -2.8058),
        (-2.5768, 1.2690),
        (-2.5768, -1.2690),
    ]
)
DPP_PSRO_CENTRES.flags.writeable = False

#: The PSD-PSRO code's exploitability best response during training: one Adam ascent of
#: ``20 * TRAIN_ITERS = 100`` steps at its learning rate 0.1 from ``0.1 * N(0, I)``, the point
#: where the ascent ends (not the best one on the way).
PRIOR_CODE_BEST_RESPONSE = {"steps": 100, "lr": 0.1, "start_scale": 0.1}

#: Precision of every hump: ``p_k(x) = exp(-0.5 * PRECISION * |x - mu_k|^2)``.
PRECISION = 0.54
#: Weight of the transitive term ``sum_k (p_k(x) - p_k(y))``.
LINEAR_WEIGHT = 0.5


def cyclic_dominance_matrix(num_humps: int = 7) -> np.ndarray:
    """The cyclic antisymmetric dominance matrix ``S`` of the mixture game.

    Row ``k`` is ``+1`` on humps ``k+1, ..., k+m`` and ``-1`` on humps
    ``k+m+1, ..., k+2m`` (indices mod ``H``, ``m = (H-1)/2``), zero on the diagonal.

    Parameters
    ----------
    num_humps : int, default 7
        ``H``; must be odd and at least 3 so that every hump beats exactly half of
        the others.

    Returns
    -------
    numpy.ndarray, shape (H, H)
        ``S`` with ``S.T == -S``; every row and column sums to zero.
    """
    H = int(num_humps)
    if H < 3 or H % 2 == 0:
        raise ConfigError(f"num_humps must be odd and >= 3, got {num_humps!r}")
    m = (H - 1) // 2
    offsets = (np.arange(H)[None, :] - np.arange(H)[:, None]) % H  # (j - k) mod H
    S = np.zeros((H, H))
    S[(offsets >= 1) & (offsets <= m)] = 1.0
    S[offsets > m] = -1.0
    return S


def _as_points(points, name: str, *, single: bool = False) -> np.ndarray:
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPolicyError(f"{name} is not a numeric array: {exc}") from None
    expected = "(2,)" if single else "(N, 2)"
    if (single and array.shape != (2,)) or (not single and (array.ndim != 2 or array.shape[1] != 2)):
        raise InvalidPolicyError(f"{name} has shape {array.shape}; expected {expected} (points in the plane)")
    if not np.isfinite(array).all():
        raise InvalidPolicyError(f"{name} has NaN or infinite coordinates")
    return array


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """Grid of :meth:`MixtureGame.global_best_response`.

    Attributes
    ----------
    half_width : float
        The grid covers the box ``[-half_width, half_width]^2`` (both ends included).
    spacing : float
        Largest distance between neighbouring grid nodes along an axis (the nodes are
        ``linspace(-L, L, ceil(2L / spacing) + 1)``, so the actual spacing is at most
        this).
    max_half_width : float
        The box is doubled (keeping the spacing) while a point outside it could beat the
        best grid value, up to this half-width (see
        :meth:`MixtureGame.global_best_response`).
    """

    half_width: float = 6.0
    spacing: float = 0.02
    max_half_width: float = 48.0

    def __post_init__(self) -> None:
        if not (self.half_width > 0 and self.spacing > 0 and self.max_half_width >= self.half_width):
            raise ConfigError(
                f"need half_width > 0, spacing > 0 and max_half_width >= half_width, got {self}"
            )


#: Default grid: [-6, 6]^2 at spacing 0.02 (601 x 601 nodes).
DEFAULT_GRID = GridSpec()


@dataclasses.dataclass(frozen=True, eq=False)
class PointBestResponse:
    """A best response found by one of the oracles.

    Attributes
    ----------
    point : numpy.ndarray, shape (2,)
        The responding policy.
    value : float
        Its exact payoff against the opponent mixture.
    trajectory : numpy.ndarray or None, shape (steps + 1, 2)
        Gradient oracle only, on request: the start and the point after every step.
    value_error_bound : float or None
        Global oracle only: a certified upper bound on ``sup_x u(x, sigma) - value``.
    starts : numpy.ndarray or None, shape (S, 2)
        Global oracle only: the grid points that were polished.
    """

    point: np.ndarray
    value: float
    trajectory: np.ndarray | None = None
    value_error_bound: float | None = None
    starts: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class _GridSearch:
    """The grid nodes :meth:`MixtureGame.global_best_response` polishes, best first."""

    starts: np.ndarray
    best_value: float
    spacing: float


def _best_local_maxima(F: np.ndarray, count: int) -> np.ndarray:
    """Flat indices of the ``count`` highest nodes of ``F`` not below any of their 8 neighbours."""
    n = F.shape[0]
    padded = np.pad(F, 1, constant_values=-np.inf)
    is_peak = np.ones_like(F, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                is_peak &= F >= padded[1 + di : 1 + di + n, 1 + dj : 1 + dj + n]
    peak_idx = np.flatnonzero(is_peak)
    if peak_idx.size == 0:  # only for a perfectly flat f (c == 0); take the best node
        peak_idx = np.array([int(np.argmax(F))])
    return peak_idx[np.argsort(F.ravel()[peak_idx])[::-1][:count]]


def _default_centres() -> np.ndarray:
    return CIRCLE_CENTRES.copy()


@dataclasses.dataclass(frozen=True, eq=False)
class MixtureGame:
    """The non-transitive mixture game of Perez-Nieves et al. (2021).

    Symmetric two-player zero-sum game on the plane; see the module docstring for the
    payoff and for the check of the hump order. All methods take and return NumPy
    arrays (points ``[N, 2]``, weights ``[N]``); only
    :meth:`gradient_best_response` uses PyTorch internally.

    Parameters
    ----------
    centres : array_like, shape (H, 2), default :data:`CIRCLE_CENTRES`
        Hump centres, in the order the cyclic ``S`` couples them (``H`` odd).
    precision : float, default 0.54
        Precision of every hump.
    linear_weight : float, default 0.5
        Weight of the transitive term ``sum_k (p_k(x) - p_k(y))``.

    Attributes
    ----------
    S : numpy.ndarray, shape (H, H)
        :func:`cyclic_dominance_matrix` of ``H`` (read-only).

    Examples
    --------
    >>> game = MixtureGame()
    >>> pop = np.array([[0.0, 0.0], [2.0, 1.0]])
    >>> M = game.payoff_matrix(pop, pop)            # antisymmetric meta-game
    >>> br = game.global_best_response(pop, [0.5, 0.5])
    >>> game.exploitability(pop, [0.5, 0.5]) == br.value
    True
    """

    centres: np.ndarray = dataclasses.field(default_factory=_default_centres)
    precision: float = PRECISION
    linear_weight: float = LINEAR_WEIGHT
    S: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        centres = np.array(self.centres, dtype=np.float64)
        if centres.ndim != 2 or centres.shape[1] != 2 or not np.isfinite(centres).all():
            raise ConfigError(f"centres must be a finite (H, 2) array, got shape {centres.shape}")
        if not (math.isfinite(self.precision) and self.precision > 0):
            raise ConfigError(f"precision must be positive, got {self.precision!r}")
        if not math.isfinite(self.linear_weight):
            raise ConfigError(f"linear_weight must be finite, got {self.linear_weight!r}")
        S = cyclic_dominance_matrix(centres.shape[0])
        centres.flags.writeable = False
        S.flags.writeable = False
        object.__setattr__(self, "centres", centres)
        object.__setattr__(self, "precision", float(self.precision))
        object.__setattr__(self, "linear_weight", float(self.linear_weight))
        object.__setattr__(self, "S", S)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def dpp_psro_prior_code(cls) -> MixtureGame:
        """The game exactly as the DPP-PSRO public code defines it (zig-zag hump order).

        See the module docstring: same centres and ``S`` as the default game, but the
        centres are listed at angles 0, +51, -51, +102, -102, +154, -154 degrees, so the
        dominance cycle does not rotate around the circle.
        """
        return cls(centres=DPP_PSRO_CENTRES)

    # ------------------------------------------------------------------ payoffs

    @property
    def num_humps(self) -> int:
        """``H``, the number of humps."""
        return self.centres.shape[0]

    def activations(self, points) -> np.ndarray:
        """Hump activations ``p_k(x) = exp(-0.5 * precision * |x - mu_k|^2)``.

        Parameters
        ----------
        points : array_like, shape (N, 2)

        Returns
        -------
        numpy.ndarray, shape (N, H)
            Values in ``(0, 1]``.
        """
        pts = _as_points(points, "points")
        sq = ((pts[:, None, :] - self.centres[None, :, :]) ** 2).sum(axis=-1)
        return np.exp(-0.5 * self.precision * sq)

    def torch_activations(self, points):
        """:meth:`activations` of a float64 torch tensor ``[..., 2]`` -> ``[..., H]``, differentiable.

        What the gradient oracle ascends; a point of shape ``(2,)`` gives ``(H,)``.
        """
        import torch  # noqa: PLC0415 (only the gradient oracle needs PyTorch)

        centres = torch.tensor(np.array(self.centres), dtype=torch.float64)
        return torch.exp(-0.5 * self.precision * ((points[..., None, :] - centres) ** 2).sum(dim=-1))

    def _payoff_from_activations(self, P: np.ndarray, Q: np.ndarray) -> np.ndarray:
        lin = self.linear_weight * (P.sum(axis=-1)[:, None] - Q.sum(axis=-1)[None, :])
        return P @ self.S @ Q.T + lin

    def payoff(self, x, y) -> float:
        """Payoff ``u(x, y)`` of the point ``x`` against the point ``y``.

        Parameters
        ----------
        x, y : array_like, shape (2,)

        Returns
        -------
        float
            ``p(x)^T S p(y) + linear_weight * sum_k (p_k(x) - p_k(y))``; ``u(y, x) = -u(x, y)``.
        """
        a = _as_points(x, "x", single=True)[None]
        b = _as_points(y, "y", single=True)[None]
        return float(self.payoff_matrix(a, b)[0, 0])

    def payoff_matrix(self, points_a, points_b) -> np.ndarray:
        """Payoffs of every point of ``points_a`` against every point of ``points_b``.

        Parameters
        ----------
        points_a : array_like, shape (K, 2)
        points_b : array_like, shape (L, 2)

        Returns
        -------
        numpy.ndarray, shape (K, L)
            ``M[i, j] = u(a_i, b_j)``, player a's payoff (player b gets ``-M``). For one
            population against itself ``M`` is antisymmetric: the PSRO meta-game.
        """
        return self._payoff_from_activations(self.activations(points_a), self.activations(points_b))

    def mixture_activation(self, points, weights) -> np.ndarray:
        """Weight-averaged activation vector ``q = sum_j w_j p(y_j)`` of a mixture.

        Because ``u`` is affine in the opponent's activation vector, playing against the
        mixture is *exactly* playing against ``q`` (the weights must sum to one).

        Parameters
        ----------
        points : array_like, shape (K, 2)
        weights : array_like, shape (K,)
            Non-negative, summing to 1.

        Returns
        -------
        numpy.ndarray, shape (H,)
        """
        pts = _as_points(points, "points")
        w = validate_meta_strategy(weights, pts.shape[0], name="weights")
        return w @ self.activations(pts)

    def response_coefficients(self, opponent_points, opponent_weights) -> tuple[np.ndarray, float]:
        """``(c, const)`` with ``u(x, sigma) = c . p(x) + const`` for the opponent mixture.

        ``c = S q + linear_weight`` and ``const = -linear_weight * sum(q)``, with ``q`` the
        :meth:`mixture_activation`. A best response maximises ``sum_k c_k p_k(x)``.
        """
        q = self.mixture_activation(opponent_points, opponent_weights)
        return self.S @ q + self.linear_weight, -self.linear_weight * float(q.sum())

    def payoff_against_mixture(self, points, opponent_points, opponent_weights) -> np.ndarray:
        """Payoff of each point against the opponent mixture (exact, via :meth:`mixture_activation`).

        Parameters
        ----------
        points : array_like, shape (N, 2)
        opponent_points : array_like, shape (K, 2)
        opponent_weights : array_like, shape (K,)

        Returns
        -------
        numpy.ndarray, shape (N,)
            ``u(x_n, sigma) = sum_j w_j u(x_n, y_j)``.
        """
        c, const = self.response_coefficients(opponent_points, opponent_weights)
        return self.activations(points) @ c + const

    # ------------------------------------------------------------------ oracles

    def gradient_best_response(
        self,
        opponent_points,
        opponent_weights,
        start=None,
        steps: int = 50,
        lr: float = 0.1,
        seed: int | None = None,
        *,
        start_scale: float = 0.1,
        return_trajectory: bool = False,
        bonus=None,
        payoff_weight: float = 1.0,
    ) -> PointBestResponse:
        """Gradient oracle: Adam ascent of ``u(x, sigma)`` on the 2-D point ``x``.

        This is the oracle of the papers. The DPP-PSRO code starts it at
        ``0.1 * N(0, I)`` (near the origin, where every hump is equally far) and uses
        ``lr = 0.1``; it trains PSRO's new learners for a few Adam steps per iteration
        (starting at ``0.01 * N(0, I)``) and scores exploitability with one run of
        50 steps (``10 * TRAIN_ITERS``). Being a local ascent it may stop on a hump
        that is not the best one; see :meth:`global_best_response`.

        Parameters
        ----------
        opponent_points : array_like, shape (K, 2)
        opponent_weights : array_like, shape (K,)
            The opponent mixture (weights non-negative, summing to 1).
        start : array_like, shape (2,), optional
            Starting point (for Fusion-PSRO: the meta-strategy-weighted mean of the own
            population's points).
            Default: ``start_scale * N(0, I)`` drawn with ``seed``.
        steps : int, default 50
            Adam steps.
        lr : float, default 0.1
            Adam learning rate.
        seed : int, optional
            Seed of the random start (ignored when ``start`` is given).
        start_scale : float, default 0.1
            Standard deviation of the random start.
        return_trajectory : bool, default False
            Also return the ``(steps + 1, 2)`` path.
        bonus : callable, optional
            A term added to the ascended objective, a differentiable function of the
            activation tensor ``p(x)`` (shape ``[H]``); the diversity variants pass theirs.
            The returned ``value`` is still the plain payoff ``u(x, sigma)``.
        payoff_weight : float, default 1.0
            Positive factor of the payoff in the ascended objective
            (``payoff_weight * u + bonus``; the prior code's ``lambda_i``).

        Returns
        -------
        PointBestResponse
            The final point and its exact payoff. The ascent runs in float64 (the prior
            code uses float32; this changes nothing visible at lr 0.1).
        """
        import torch  # noqa: PLC0415 (only this oracle needs PyTorch)

        c, const = self.response_coefficients(opponent_points, opponent_weights)
        if int(steps) < 0 or not (lr > 0) or not (payoff_weight > 0):
            raise ConfigError(f"need steps >= 0, lr > 0 and payoff_weight > 0, got steps={steps!r}, lr={lr!r}, "
                              f"payoff_weight={payoff_weight!r}")
        if start is None:
            x0 = float(start_scale) * np.random.default_rng(seed).standard_normal(2)
        else:
            x0 = _as_points(start, "start", single=True)
        coef = torch.as_tensor(c, dtype=torch.float64)
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.Adam([x], lr=float(lr))
        path = [x0.copy()] if return_trajectory else None
        with torch.enable_grad():
            for _ in range(int(steps)):
                p = self.torch_activations(x)
                objective = p @ coef  # the constant does not move the ascent
                if payoff_weight != 1.0:
                    objective = payoff_weight * objective
                if bonus is not None:
                    objective = objective + bonus(p)
                optimiser.zero_grad()
                (-objective).backward()
                optimiser.step()
                if path is not None:
                    path.append(x.detach().numpy().copy())
        point = x.detach().numpy().copy()
        value = float(self.activations(point[None])[0] @ c + const)
        return PointBestResponse(point=point, value=value, trajectory=None if path is None else np.stack(path))

    def _grid_values(self, nodes: np.ndarray, c: np.ndarray) -> np.ndarray:
        """``f(x_i, y_j) = sum_k c_k p_k`` on the grid ``nodes x nodes`` (``[n, n]``).

        The Gaussians factorise over the axes, so this is one ``[n, H] @ [H, n]`` product.
        """
        a = 0.5 * self.precision
        gx = np.exp(-a * (nodes[:, None] - self.centres[None, :, 0]) ** 2)
        gy = np.exp(-a * (nodes[:, None] - self.centres[None, :, 1]) ** 2)
        return (gx * c) @ gy.T

    def _objective(self, c: np.ndarray):
        a = self.precision

        def negative_f(x: np.ndarray) -> tuple[float, np.ndarray]:
            d = x[None, :] - self.centres  # [H, 2]
            w = c * np.exp(-0.5 * a * (d * d).sum(axis=1))
            return -float(w.sum()), a * (w @ d)  # gradient of -f is a * sum_k w_k (x - mu_k)

        return negative_f

    def global_best_response(
        self,
        opponent_points,
        opponent_weights,
        *,
        grid: GridSpec = DEFAULT_GRID,
        num_starts: int = 8,
        polish_steps: int = 200,
    ) -> PointBestResponse:
        """Best response to a mixture that does not depend on luck: grid search, then polish.

        Steps: (1) evaluate ``f(x) = u(x, sigma) - const = sum_k c_k p_k(x)`` on the grid
        (default ``[-6, 6]^2`` at spacing 0.02, 601 x 601 nodes; one matrix product
        since the Gaussians factorise); (2) take the ``num_starts`` best grid *local
        maxima* (nodes not below any of their 8 neighbours) as starts; (3) polish each
        with L-BFGS on the exact ``f`` and gradient; (4) return the best point (never
        worse than the best grid node).

        Why the grid is enough. Let ``x*`` maximise ``f``. Each term ``c_k p_k`` has
        Hessian ``c_k a p_k (a d d^T - I)`` (``a`` = precision, ``d = x - mu_k``) whose
        norm is at most ``|c_k| a`` (``exp(-s/2) (s - 1) <= 2 exp(-3/2) < 1``), so
        ``f`` has curvature at most ``M = a * sum_k |c_k|`` everywhere. Since
        ``grad f(x*) = 0``, the grid node ``g`` nearest to ``x*`` (``|g - x*| <= h /
        sqrt(2)`` for spacing ``h``) has ``f(g) >= f(x*) - M h^2 / 4``. The returned value
        is at least the best grid value, hence within ``M h^2 / 4`` of the optimum
        (reported as ``value_error_bound``; with ``h = 0.02`` it is ``1e-4 * M``, at
        most about ``1.4e-3`` for any mixture since ``|c_k| <= 3.5``). When the best grid
        node lies in the optimum's basin -- always, unless two distinct local maxima are
        within that bound of each other -- the polish makes the value exact to solver
        tolerance; and the starts are the best few basins, not a single one.

        Why the box is enough. Outside ``[-L, L]^2`` every point is at least
        ``L - R`` from every centre (``R`` = largest centre radius), so
        ``f <= T = sum_k max(c_k, 0) exp(-a (L - R)^2 / 2)`` there. If the best value
        found is below ``T`` the box is doubled (same spacing) until it is not, up to
        ``grid.max_half_width``. (For a mixture the optimum is always inside the default
        box: ``u(sigma, sigma) = 0`` forces ``max_x u(x, sigma) >= 0``.)

        Parameters
        ----------
        opponent_points : array_like, shape (K, 2)
        opponent_weights : array_like, shape (K,)
            The opponent mixture.
        grid : GridSpec, default ``GridSpec(6.0, 0.02, 48.0)``
        num_starts : int, default 8
            Grid local maxima to polish.
        polish_steps : int, default 200
            Iteration limit of each L-BFGS polish.

        Returns
        -------
        PointBestResponse
            ``point``, exact ``value``, ``value_error_bound`` and the polished ``starts``.

        Raises
        ------
        NumericalError
            If a point outside ``[-max_half_width, max_half_width]^2`` could still beat
            the best value found (impossible for valid mixtures of this game).
        """
        c, const = self.response_coefficients(opponent_points, opponent_weights)
        if int(num_starts) < 1 or int(polish_steps) < 0:
            raise ConfigError(f"need num_starts >= 1 and polish_steps >= 0, got {num_starts!r}, {polish_steps!r}")
        search = self._grid_search(c, grid, int(num_starts))
        best_point, best_f = self._polish(c, search.starts, search.best_value, polish_steps)
        curvature = self.precision * float(np.abs(c).sum())
        value = float(self.activations(best_point[None])[0] @ c + const)
        h = search.spacing
        return PointBestResponse(
            point=best_point,
            value=value,
            value_error_bound=max(0.0, curvature * h * h / 4.0 - (best_f - search.best_value)),
            starts=search.starts,
        )

    def _grid_search(self, c: np.ndarray, grid: GridSpec, num_starts: int) -> _GridSearch:
        """Steps (1) and (2) of :meth:`global_best_response`, doubling the box as needed."""
        radius = float(np.sqrt((self.centres**2).sum(axis=1)).max())
        positive = float(np.clip(c, 0.0, None).sum())
        half_width = float(grid.half_width)
        while True:
            n = int(math.ceil(2.0 * half_width / grid.spacing)) + 1
            nodes = np.linspace(-half_width, half_width, n)
            F = self._grid_values(nodes, c)
            order = _best_local_maxima(F, num_starts)
            best_grid = float(F.ravel()[order[0]])
            tail = math.inf
            if half_width > radius:
                tail = positive * math.exp(-0.5 * self.precision * (half_width - radius) ** 2)
            if best_grid >= tail:
                break
            if 2.0 * half_width > grid.max_half_width:
                raise NumericalError(
                    f"global_best_response: points outside [-{half_width}, {half_width}]^2 could reach "
                    f"{tail:.3g} > best grid value {best_grid:.3g}; increase grid.max_half_width"
                )
            half_width *= 2.0
        rows, cols = np.unravel_index(order, F.shape)
        starts = np.stack([nodes[rows], nodes[cols]], axis=1)
        return _GridSearch(starts=starts, best_value=best_grid, spacing=float(nodes[1] - nodes[0]))

    def _polish(self, c: np.ndarray, starts: np.ndarray, best_grid: float,
                polish_steps: int) -> tuple[np.ndarray, float]:
        """Step (3): L-BFGS from each start; the best point and its ``f``, never below the best grid node."""
        objective = self._objective(c)
        best_point, best_f = starts[0].copy(), best_grid
        for start in starts:
            if polish_steps == 0:
                break
            res = minimize(
                objective, start, jac=True, method="L-BFGS-B",
                options={"maxiter": int(polish_steps), "ftol": 1e-15, "gtol": 1e-12},
            )
            f_val = -objective(res.x)[0]
            if np.isfinite(f_val) and f_val > best_f:
                best_point, best_f = np.asarray(res.x, dtype=np.float64).copy(), f_val
        return best_point, best_f

    # ------------------------------------------------------------------ exploitability

    def exploitability(self, points, weights, **kwargs: Any) -> float:
        """Exploitability of the symmetric profile where both players play the mixture.

        Defined as NashConv / 2 (OpenSpiel's convention for two players). The game is
        symmetric zero-sum with value 0 and ``u(sigma, sigma) = 0`` by antisymmetry, so
        both players' best-response gains equal ``max_x u(x, sigma)``:
        NashConv = 2 max_x u(x, sigma) and exploitability = ``max_x u(x, sigma)``, the
        value of the :meth:`global_best_response` (``kwargs`` go to it). Accurate to its
        ``value_error_bound`` (below 1.4e-3 with the default grid, typically exact to
        ~1e-12 after the polish).

        Parameters
        ----------
        points : array_like, shape (K, 2)
        weights : array_like, shape (K,)

        Returns
        -------
        float
            Non-negative up to round-off; 0 exactly at a symmetric Nash equilibrium.
        """
        return self.global_best_response(points, weights, **kwargs).value

    def nash_conv(self, points_a, weights_a, points_b, weights_b, **kwargs: Any) -> float:
        """NashConv of the profile ``(sigma_a, sigma_b)`` (player a gets ``u``, player b ``-u``).

        ``[max_x u(x, sigma_b) - u(sigma_a, sigma_b)] + [max_y -u(sigma_a, y) + u(sigma_a, sigma_b)]``
        ``= max_x u(x, sigma_b) + max_y u(y, sigma_a)`` by antisymmetry; both maxima by
        :meth:`global_best_response` (``kwargs`` go to it), computed once when the two
        mixtures are the same (a symmetric profile).
        """
        gain_a = self.global_best_response(points_b, weights_b, **kwargs).value
        same = np.array_equal(points_a, points_b) and np.array_equal(weights_a, weights_b)
        gain_b = gain_a if same else self.global_best_response(points_a, weights_a, **kwargs).value
        return gain_a + gain_b

    def prior_code_nash_conv(self, points_a, weights_a, points_b, weights_b, seeds=(None, None)) -> float:
        """NashConv of ``(sigma_a, sigma_b)`` as the PSD-PSRO code estimates it during training.

        Like :meth:`nash_conv`, but each best response is one :meth:`gradient_best_response`
        with the settings of :data:`PRIOR_CODE_BEST_RESPONSE` (100 Adam steps, lr 0.1, from
        ``0.1 * N(0, I)`` drawn with ``seeds[0]`` for player a's response, ``seeds[1]`` for
        player b's). A local ascent may stop on a lower hump, so this is a lower bound of
        :meth:`nash_conv` (up to the global oracle's ``value_error_bound``), equal to it
        when both ascents reach the best hump.
        """
        gain_a = self.gradient_best_response(points_b, weights_b, seed=seeds[0], **PRIOR_CODE_BEST_RESPONSE).value
        gain_b = self.gradient_best_response(points_a, weights_a, seed=seeds[1], **PRIOR_CODE_BEST_RESPONSE).value
        return gain_a + gain_b
