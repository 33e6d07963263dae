"""Diversity terms of DPP-, BD&RD- and PSD-PSRO, added to a best response's objective.

A diversity variant trains each new best response on ``payoff + weight * diversity``
instead of ``payoff`` alone. The oracle receives a :class:`DiversityTerm` describing the
responding player's own population; the formulas are here, in PyTorch where an oracle
ascends them by gradient.

DPP-PSRO (Perez-Nieves et al., ICML 2021, "Modelling Behavioural Diversity for Learning
in Open-Ended Games", eq. 6-8)
    The diversity of a population is the expected cardinality of the determinantal
    point process whose kernel is the Gram matrix of the members' payoff vectors
    (rows of the meta-game against the opponent population)::

        L = R R^T,   Div = E_{Y ~ DPP(L)} |Y| = Tr(I - (L + I)^{-1})

    for the population plus the new policy. The DPP-PSRO public code L2-normalizes each
    payoff row before forming ``L``; we follow the code (:func:`dpp_expected_cardinality`).

BD&RD-PSRO (Liu et al., NeurIPS 2021, "Towards Unifying Behavioral and Response
Diversity for Open-ended Learning in Zero-sum Games")
    *Response diversity* is how far the new payoff vector ``a`` lies from the convex hull
    of the population's payoff vectors (the rows ``A``)::

        RD = min_{beta in simplex} || A^T beta - a ||^2

    The paper optimizes a lower bound of this distance; we compute the distance itself
    (:func:`convex_hull_distance`; the minimizing ``beta`` is found by a
    non-negative least-squares solve, and by the envelope theorem the gradient of RD in
    ``a`` is the gradient at that fixed ``beta``). *Behavioural diversity* is a
    divergence between the new policy's occupancy measure and that of the population's
    meta-Nash mixture; on the mixture game the "occupancy" of a point is its normalized
    hump-activation vector, and like the prior code we use the Jensen-Shannon divergence
    (:func:`js_divergence`). Diversity = RD + BD, one weight for both (the paper weighs
    them separately; the prior code uses one coefficient for both as well).

PSD-PSRO (Yao et al., NeurIPS 2023, "Policy Space Diversity for Non-Transitive Games")
    The policy-space diversity of a new policy ``pi`` is its distance to the convex hull
    of the population, ``min_{pi' in Hull} KL(pi || pi')``. As in the paper's practical
    algorithm the hull is represented by samples: its vertices (the members) and
    ``hull_samples`` mixtures with Dirichlet(1) weights (:func:`hull_weights`), and the
    minimum is taken over those. On the mixture game a hull member's behaviour is the
    weighted average of the members' normalized activation vectors (the prior code uses
    the vertices only). On the OpenSpiel games the DQN oracle adds, at every learner
    decision, ``weight * KL(pi(.|s) || pi'(.|s))`` to the reward, ``pi'`` the sampled hull
    policy closest to the learner (its behaviour strategy from the mixed realization
    plan); see :mod:`fusion_psro.oracles.dqn`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.optimize
import torch

#: Variants whose best responses carry a diversity term.
DIVERSITY_VARIANTS = ("dpp", "bdrd", "psd")
#: Default weight of the diversity term.
DEFAULT_DIVERSITY_WEIGHT = 0.1
#: Default number of Dirichlet samples representing the population's hull (PSD).
DEFAULT_HULL_SAMPLES = 32


@dataclasses.dataclass(frozen=True, eq=False)
class DiversityTerm:
    """What an oracle needs to add a diversity term to its best-response objective.

    Attributes
    ----------
    kind:
        ``"dpp"``, ``"bdrd"`` or ``"psd"``.
    weight:
        Non-negative weight of the term.
    own_population:
        The responding player's population (points ``[K, 2]`` or tabular ``[K, I, A]``).
    own_meta_strategy:
        ``[K]`` meta-Nash of that population.
    own_payoffs:
        ``[K, L]`` meta-game payoffs of those members against the opponent's whole
        population (the responding player's view).
    opponent_population:
        The opponent's whole population (``[L, ...]``), for payoff vectors of the new policy.
    seed:
        Seed of the hull samples (PSD).
    hull_samples:
        Dirichlet-weighted mixtures drawn besides the vertices (PSD).
    """

    kind: str
    weight: float
    own_population: np.ndarray
    own_meta_strategy: np.ndarray
    own_payoffs: np.ndarray
    opponent_population: np.ndarray
    seed: int = 0
    hull_samples: int = DEFAULT_HULL_SAMPLES

    def __post_init__(self) -> None:
        if self.kind not in DIVERSITY_VARIANTS:
            raise ValueError(f"unknown diversity term {self.kind!r}; accepted: {', '.join(DIVERSITY_VARIANTS)}")
        if not (np.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"diversity weight must be a non-negative number, got {self.weight!r}")


def dpp_expected_cardinality(payoff_rows: torch.Tensor) -> torch.Tensor:
    """``Tr(I - (L + I)^{-1})`` with ``L = R R^T``, ``R`` the L2-normalized payoff rows.

    Lies in ``[0, n / 2]`` for ``n`` rows: ``n / 2`` when the rows are orthogonal, about
    ``1/2`` when they all point the same way. A zero row counts as no direction.
    """
    rows = torch.nn.functional.normalize(payoff_rows, p=2, dim=1)
    kernel = rows @ rows.T
    eye = torch.eye(kernel.shape[0], dtype=kernel.dtype)
    return torch.trace(eye - torch.linalg.inv(kernel + eye))


def hull_coefficients(rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``argmin_{beta in simplex} || rows^T beta - vector ||^2`` (non-negative least squares).

    The simplex constraint ``sum(beta) = 1`` is an extra, heavily weighted row of the
    least-squares system, then ``beta`` is renormalized.
    """
    rows = np.asarray(rows, dtype=np.float64)
    vector = np.asarray(vector, dtype=np.float64)
    scale = 1e3 * max(1.0, float(np.abs(rows).max(initial=0.0)), float(np.abs(vector).max(initial=0.0)))
    system = np.vstack([rows.T, scale * np.ones((1, rows.shape[0]))])
    target = np.concatenate([vector, [scale]])
    beta, _ = scipy.optimize.nnls(system, target)
    total = beta.sum()
    return beta / total if total > 0 else np.full(rows.shape[0], 1.0 / rows.shape[0])


def convex_hull_distance(vector: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    """Squared distance from ``vector`` to the convex hull of ``rows`` (BD&RD's response diversity).

    Differentiable in ``vector`` (the minimizing hull point is held fixed, which gives the
    exact gradient of the distance).
    """
    beta = hull_coefficients(rows, vector.detach().cpu().numpy())
    closest = torch.as_tensor(beta @ np.asarray(rows, dtype=np.float64), dtype=vector.dtype)
    return ((vector - closest) ** 2).sum()


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q) = sum p log(p / q)`` over the last axis (``0 log 0 = 0``); ``q > 0`` where ``p > 0``."""
    ratio = torch.where(p > 0, p / q, torch.ones_like(p))
    return (p * torch.log(ratio)).sum(dim=-1)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence ``KL(p || m) / 2 + KL(q || m) / 2``, ``m = (p + q) / 2``; in ``[0, log 2]``."""
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)


def hull_weights(num_members: int, num_samples: int, seed: int) -> np.ndarray:
    """``[num_members + num_samples, num_members]`` convex weights: the vertices, then Dirichlet(1) draws."""
    vertices = np.eye(num_members)
    if num_members == 1 or num_samples == 0:
        return vertices
    draws = np.random.default_rng(seed).dirichlet(np.ones(num_members), size=num_samples)
    return np.vstack([vertices, draws])


__all__ = [
    "DEFAULT_DIVERSITY_WEIGHT",
    "DEFAULT_HULL_SAMPLES",
    "DIVERSITY_VARIANTS",
    "DiversityTerm",
    "convex_hull_distance",
    "dpp_expected_cardinality",
    "hull_coefficients",
    "hull_weights",
    "js_divergence",
    "kl_divergence",
]
