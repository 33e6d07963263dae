"""Diversity terms of DPP-, BD&RD- and PSD-PSRO, added to a best response's objective.

A diversity variant trains each new best response on ``payoff + weight * diversity``
instead of ``payoff`` alone (or, under a diversity schedule that weighs both parts, on
``payoff_weight * payoff + weight * diversity``; see :mod:`fusion_psro.psro.schedules`). The oracle receives a :class:`DiversityTerm` (plain data: the
kind, the weight, the responding player's own population); the kind names a
:class:`DiversityMeasure` registered in :data:`fusion_psro.registry.DIVERSITY_TERMS`, which
holds every formula of the term. An oracle asks the measure for the form that fits its
game, and never looks at the kind itself:

* :meth:`DiversityMeasure.for_tabular` (compiled OpenSpiel games, game kind
  ``"tabular"``) gives a :class:`TabularDiversity`: a per-decision reward bonus for the
  learner's current policy (the part of the term that is a sum over the learner's
  decisions) and an exact score of a whole policy (the part that is not);
* :meth:`DiversityMeasure.for_points` (the mixture game, game kind ``"mixture"``) gives
  the term as a differentiable function of a point's activation vector, which the
  gradient oracle ascends in PyTorch.

A new term is one subclass of :class:`DiversityMeasure` registered with
:func:`fusion_psro.registry.register_diversity_term`; no oracle changes.

DPP-PSRO (Perez-Nieves et al., ICML 2021, "Modelling Behavioural Diversity for Learning
in Open-Ended Games", eq. 6-8)
    The diversity of a population is the expected cardinality of the determinantal
    point process whose kernel is the Gram matrix of the members' payoff vectors
    (rows of the meta-game against the opponent population)::

        L = R R^T,   Div = E_{Y ~ DPP(L)} |Y| = Tr(I - (L + I)^{-1})

    for the population plus the new policy. The DPP-PSRO public code L2-normalizes each
    payoff row before forming ``L``; we follow the code (:func:`dpp_expected_cardinality`).
    On the OpenSpiel games it is a function of the whole policy only (no reward bonus).

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
    On the OpenSpiel games, against a fixed opponent, the KL between the trajectory
    distributions of two policies is the expected sum of ``log(pi(a|s) / pi_sigma(a|s))``
    over the learner's decisions, ``pi_sigma`` the exact behaviour strategy of the
    meta-Nash mixture (:func:`hull_behaviour_policies`), so that log-ratio is BD's reward
    bonus; the whole-policy score is RD plus the reach-weighted KL to ``pi_sigma``.

PSD-PSRO (Yao et al., NeurIPS 2023, "Policy Space Diversity for Non-Transitive Games")
    The policy-space diversity of a new policy ``pi`` is its distance to the convex hull
    of the population, ``min_{pi' in Hull} KL(pi || pi')``. As in the paper's practical
    algorithm the hull is represented by samples: its vertices (the members) and
    ``hull_samples`` mixtures with Dirichlet(1) weights (:func:`hull_weights`), and the
    minimum is taken over those. On the mixture game a hull member's behaviour is the
    weighted average of the members' normalized activation vectors (the prior code uses
    the vertices only). On the OpenSpiel games each hull sample's behaviour strategy is
    exact, from the weighted sum of the members' realization plans; the bonus of a
    learner decision ``(s, a)`` is ``log(pi(a|s) / pi'(a|s))``, ``pi'`` the hull sample
    closest to the learner's policy in reach-weighted KL
    (``sum_s x_pi(s) KL(pi(.|s) || pi'(.|s))``, ``x_pi`` the learner's own reach); its
    expectation under ``pi`` is the per-state KL. PSD has no whole-policy score.

Every hull or meta-Nash behaviour strategy of the OpenSpiel games is mixed with
:data:`HULL_SMOOTHING` of the uniform legal policy so that every KL is finite.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.optimize

from fusion_psro.errors import ConfigError, OracleError
from fusion_psro.evaluation.sequence_form import realization_plans, sequence_form
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.evaluation.behaviour import mixture_behaviour
from fusion_psro.policies import uniform_policy
from fusion_psro.registry import DIVERSITY_TERMS, register_diversity_term

if TYPE_CHECKING:
    import torch

#: Default weight of a diversity term (:attr:`DiversityMeasure.default_weight`).
DEFAULT_DIVERSITY_WEIGHT = 0.1
#: Default number of Dirichlet samples representing the population's hull (PSD).
DEFAULT_HULL_SAMPLES = 32
#: Share of the uniform legal policy mixed into each hull policy, so KL stays finite.
HULL_SMOOTHING = 0.01


@dataclasses.dataclass(frozen=True, eq=False)
class DiversityTerm:
    """What an oracle needs to add a diversity term to its best-response objective.

    Attributes
    ----------
    kind:
        Name of a registered :class:`DiversityMeasure` (built in: ``"dpp"``, ``"bdrd"``,
        ``"psd"``).
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
    payoff_weight:
        Positive factor of the payoff in the objective ``payoff_weight * payoff + weight *
        diversity``; 1 except under a schedule that weighs both parts (the prior code's
        ``lambda_i``). Only oracles with ``weighs_payoff`` apply it.
    """

    kind: str
    weight: float
    own_population: np.ndarray
    own_meta_strategy: np.ndarray
    own_payoffs: np.ndarray
    opponent_population: np.ndarray
    seed: int = 0
    hull_samples: int = DEFAULT_HULL_SAMPLES
    payoff_weight: float = 1.0

    def __post_init__(self) -> None:
        DIVERSITY_TERMS.get(self.kind)  # UnknownComponentError names the registered terms
        if not (np.isfinite(self.weight) and self.weight >= 0):
            raise ConfigError(f"diversity weight must be a non-negative number, got {self.weight!r}")
        if not (np.isfinite(self.payoff_weight) and self.payoff_weight > 0):
            raise ConfigError(f"payoff weight must be a positive number, got {self.payoff_weight!r}")

    @property
    def measure(self) -> DiversityMeasure:
        """The registered :class:`DiversityMeasure` of :attr:`kind`."""
        return DIVERSITY_TERMS.get(self.kind)


# ---------------------------------------------------------------------------- formulas


def dpp_expected_cardinality(payoff_rows: torch.Tensor) -> torch.Tensor:
    """``Tr(I - (L + I)^{-1})`` with ``L = R R^T``, ``R`` the L2-normalized payoff rows.

    Lies in ``[0, n / 2]`` for ``n`` rows: ``n / 2`` when the rows are orthogonal, about
    ``1/2`` when they all point the same way. A zero row counts as no direction.
    """
    import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
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
    import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
    beta = hull_coefficients(rows, vector.detach().cpu().numpy())
    closest = torch.as_tensor(beta @ np.asarray(rows, dtype=np.float64), dtype=vector.dtype)
    return ((vector - closest) ** 2).sum()


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q) = sum p log(p / q)`` over the last axis (``0 log 0 = 0``); ``q > 0`` where ``p > 0``."""
    import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
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


# ---------------------------------------------------------------------------- tabular pieces


def hull_behaviour_policies(compiled: CompiledGame, player: int, population: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Behaviour strategies ``[H, I, A]`` of the mixtures ``weights[h] @ population``, smoothed.

    :func:`~fusion_psro.evaluation.behaviour.mixture_behaviour` of each row of ``weights``
    (``[H, K]``), mixed with :data:`HULL_SMOOTHING` of the uniform legal policy.
    """
    behaviour = mixture_behaviour(compiled, player, population, np.atleast_2d(weights))
    uniform = uniform_policy(compiled, player)
    return (1.0 - HULL_SMOOTHING) * behaviour + HULL_SMOOTHING * uniform


def behaviour_log_ratios(compiled: CompiledGame, player: int, policy: np.ndarray,
                         references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log(policy / reference)`` ``[H, I, A]`` for each of ``references`` and the reach-weighted KL to each ``[H]``.

    The log-ratio is 0 where ``policy`` puts no mass; the KL is
    ``sum_s x(s) KL(policy(.|s) || reference(.|s))`` with ``x`` the reach of ``policy``.
    """
    info = compiled.players[player]
    reach = realization_plans(compiled, player, policy)[info.parent_sequence]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(info.legal_mask & (policy > 0), np.log(policy)[None] - np.log(references), 0.0)
    distances = ((policy[None] * log_ratio).sum(axis=2) * reach[None]).sum(axis=1)
    return log_ratio, distances


class TabularPayoffs:
    """Payoff vector of a policy of ``player`` against each member of the opponent population (exact)."""

    def __init__(self, compiled: CompiledGame, player: int, opponent_population: np.ndarray) -> None:
        self.compiled = compiled
        self.player = player
        opponent_plans = realization_plans(compiled, 1 - player, np.asarray(opponent_population, dtype=np.float64))
        self._sequence_values = np.asarray(sequence_form(compiled).matrices[player] @ opponent_plans.T)  # [S, L]

    def __call__(self, policy: np.ndarray) -> np.ndarray:
        """``[L]``: the expected payoff of ``policy`` against each opponent member."""
        return realization_plans(self.compiled, self.player, policy) @ self._sequence_values


@dataclasses.dataclass(frozen=True)
class TabularDiversity:
    """A diversity term bound to one player of a compiled game: what a tabular oracle calls.

    Attributes
    ----------
    bonus_table:
        ``policy [I, A] -> float64[I, A]``: the unweighted reward bonus of each decision
        ``(s, a)`` for a learner acting by ``policy``; its expectation under ``policy`` is
        the per-decision part of the term. None when the term has no per-decision part.
    score:
        ``(policy, behaviour) -> float``: the exact diversity of a whole policy, ``policy``
        being what is evaluated (its payoffs) and ``behaviour`` the policy it acts by while
        learning (its occupancy measure; ``policy`` itself for a learner that acts as it
        is). None when the term has no whole-policy part.
    """

    bonus_table: Callable[[np.ndarray], np.ndarray] | None = None
    score: Callable[[np.ndarray, np.ndarray], float] | None = None


class DiverseSnapshots:
    """Training snapshots among which a term's whole-policy score picks the response (DPP, RD).

    Such a term is a function of the whole policy's payoffs, not of single decisions, so
    it cannot be shaped into a reward or a per-decision gradient. Every
    ``ceil(budget / count)`` completed units of training (episodes, steps) the current
    policy and parameters are kept (the caller adds the final ones); :meth:`best` returns
    the one with the highest ``value + weight * score``, every term exact.
    """

    def __init__(self, compiled: CompiledGame, request, diversity: TabularDiversity, budget: int, count: int) -> None:
        self.compiled, self.request, self.diversity = compiled, request, diversity
        self.every = max(1, -(-budget // count))
        self.candidates: list[tuple[np.ndarray, dict[str, torch.Tensor]]] = []

    def due(self, completed: int) -> bool:
        return completed >= self.every * (len(self.candidates) + 1)

    def add(self, policy: np.ndarray, parameters: dict[str, torch.Tensor]) -> None:
        self.candidates.append((policy, parameters))

    def best(self, behaviour: Callable[[np.ndarray], np.ndarray]) -> tuple[int, float, float]:
        """Index, exact value and score of the best snapshot (the first on ties).

        ``behaviour(policy)`` is the policy the learner acts by when its response is ``policy``.
        """
        compiled, request = self.compiled, self.request
        player = request.player
        opponents = realization_plans(compiled, 1 - player, request.opponent_population)
        mixture_values = np.asarray(sequence_form(compiled).matrices[player] @ (request.opponent_meta_strategy @ opponents))
        best = (-1, -np.inf, 0.0, -np.inf)
        for index, (policy, _) in enumerate(self.candidates):
            value = float(realization_plans(compiled, player, policy) @ mixture_values)
            score = self.diversity.score(policy, behaviour(policy))
            objective = value + request.diversity.weight * score
            if objective > best[3]:
                best = (index, value, score, objective)
        return best[:3]

    def select(self, policy: np.ndarray, parameters: dict[str, torch.Tensor], metrics,
               behaviour: Callable[[np.ndarray], np.ndarray]):
        """``(policy, parameters, metrics)`` of the best snapshot, the final ``policy`` and
        ``parameters`` added first; ``metrics`` gain the choice's diversity fields
        (:class:`~fusion_psro.oracles.base.DiversityMetrics`)."""
        self.add(policy, parameters)
        index, value, score = self.best(behaviour)
        policy, parameters = self.candidates[index]
        return policy, parameters, dataclasses.replace(metrics, diversity_candidate=index, selected_value=value,
                                                       diversity_candidates=len(self.candidates), diversity=score)


# ---------------------------------------------------------------------------- point pieces


def _point_activations(game, points) -> torch.Tensor:
    import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
    return game.torch_activations(torch.as_tensor(np.asarray(points, dtype=np.float64)))


def _point_behaviours(game, points) -> torch.Tensor:
    """Normalized activation vectors ``[K, H]`` of points ``[K, 2]`` (their "occupancy")."""
    activations = _point_activations(game, points)
    return activations / activations.sum(dim=1, keepdim=True)


def _point_payoffs(game, activation: torch.Tensor, opponent_activations: torch.Tensor) -> torch.Tensor:
    """``u(x, y_l)`` for each opponent ``l``, from ``activation = p(x)``."""
    import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
    dominance = torch.tensor(np.array(game.S), dtype=torch.float64)
    linear = game.linear_weight * (activation.sum() - opponent_activations.sum(dim=1))
    return opponent_activations @ (dominance.T @ activation) + linear


# ---------------------------------------------------------------------------- measures


class DiversityMeasure(abc.ABC):
    """The formulas of one diversity term, registered by name in :data:`~fusion_psro.registry.DIVERSITY_TERMS`.

    A measure declares the game kinds it has a form for (:attr:`game_kinds`) and
    implements the hook of each: :meth:`for_tabular` for ``"tabular"``, :meth:`for_points`
    for ``"mixture"``.
    """

    #: Game kinds (:data:`fusion_psro.registry.GAME_KINDS`) the term has a form for.
    game_kinds: tuple[str, ...] = ()
    #: Weight of the term when a run sets none.
    default_weight: float = DEFAULT_DIVERSITY_WEIGHT
    #: Its scale ``W`` in the objective of the mixture-game code of DPP-/PSD-PSRO, the weight
    #: when a run under the ``prior-code`` diversity schedule sets none.
    prior_code_weight: float = 1.0

    def supports(self, game_kind: str) -> bool:
        """Whether the term can be added to best responses of games of ``game_kind``."""
        return game_kind in self.game_kinds

    def for_tabular(self, compiled: CompiledGame, player: int, term: DiversityTerm) -> TabularDiversity:
        """The term for ``player``'s best responses in ``compiled`` (game kind ``"tabular"``)."""
        raise OracleError(f"the {term.kind!r} diversity term has no form for tabular games")

    def for_points(self, game, term: DiversityTerm) -> Callable[[torch.Tensor], torch.Tensor]:
        """The term as a differentiable function of a point's activation vector ``[H]`` (game kind ``"mixture"``).

        ``game`` is the :class:`~fusion_psro.games.mixture.MixtureGame`; the function
        returns an unweighted torch scalar.
        """
        raise OracleError(f"the {term.kind!r} diversity term has no form for the mixture game")


def measure_for(term: DiversityTerm, game_kind: str, oracle: str) -> DiversityMeasure:
    """The measure of ``term``, checked to support ``game_kind``; :class:`OracleError` names those that do."""
    measure = term.measure
    if not measure.supports(game_kind):
        fitting = DIVERSITY_TERMS.accepted(lambda m: m.supports(game_kind))
        raise OracleError(
            f"the {oracle} oracle cannot optimize the {term.kind!r} diversity term on {game_kind} games; "
            f"accepted: {fitting}"
        )
    return measure


class DPPDiversity(DiversityMeasure):
    """DPP-PSRO: expected DPP cardinality of the payoff vectors of the population plus the new policy."""

    game_kinds = ("tabular", "mixture")

    def for_tabular(self, compiled: CompiledGame, player: int, term: DiversityTerm) -> TabularDiversity:
        import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
        payoffs = TabularPayoffs(compiled, player, term.opponent_population)
        own_payoffs = np.asarray(term.own_payoffs, dtype=np.float64)

        def score(policy: np.ndarray, behaviour: np.ndarray) -> float:
            rows = np.vstack([own_payoffs, payoffs(policy)[None]])
            return float(dpp_expected_cardinality(torch.as_tensor(rows)))

        return TabularDiversity(score=score)

    def for_points(self, game, term: DiversityTerm) -> Callable[[torch.Tensor], torch.Tensor]:
        import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
        opponents = _point_activations(game, term.opponent_population)
        own_payoffs = torch.as_tensor(np.asarray(term.own_payoffs, dtype=np.float64))

        def diversity(activation: torch.Tensor) -> torch.Tensor:
            new_row = _point_payoffs(game, activation, opponents)
            return dpp_expected_cardinality(torch.cat([own_payoffs, new_row[None]], dim=0))

        return diversity


class BDRDDiversity(DiversityMeasure):
    """BD&RD-PSRO: response diversity (distance to the payoff hull) plus behavioural diversity."""

    game_kinds = ("tabular", "mixture")

    def for_tabular(self, compiled: CompiledGame, player: int, term: DiversityTerm) -> TabularDiversity:
        import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
        population = np.asarray(term.own_population, dtype=np.float64)
        meta_nash = np.asarray(term.own_meta_strategy, dtype=np.float64)[None]
        reference = hull_behaviour_policies(compiled, player, population, meta_nash)
        payoffs = TabularPayoffs(compiled, player, term.opponent_population)
        own_payoffs = np.asarray(term.own_payoffs, dtype=np.float64)

        def bonus_table(policy: np.ndarray) -> np.ndarray:
            return behaviour_log_ratios(compiled, player, policy, reference)[0][0]

        def score(policy: np.ndarray, behaviour: np.ndarray) -> float:
            response = float(convex_hull_distance(torch.as_tensor(payoffs(policy)), own_payoffs))
            return response + float(behaviour_log_ratios(compiled, player, behaviour, reference)[1][0])

        return TabularDiversity(bonus_table=bonus_table, score=score)

    def for_points(self, game, term: DiversityTerm) -> Callable[[torch.Tensor], torch.Tensor]:
        import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
        opponents = _point_activations(game, term.opponent_population)
        meta_nash = torch.as_tensor(np.asarray(term.own_meta_strategy, dtype=np.float64))
        meta_behaviour = meta_nash @ _point_behaviours(game, term.own_population)

        def diversity(activation: torch.Tensor) -> torch.Tensor:
            behaviour = activation / activation.sum()
            new_row = _point_payoffs(game, activation, opponents)
            response = convex_hull_distance(new_row, term.own_payoffs)
            return response + js_divergence(behaviour, meta_behaviour)

        return diversity


class PSDDiversity(DiversityMeasure):
    """PSD-PSRO: KL distance of the new policy to the (sampled) hull of the population."""

    game_kinds = ("tabular", "mixture")
    prior_code_weight = 0.3  # the PSD-PSRO code's div_w

    def for_tabular(self, compiled: CompiledGame, player: int, term: DiversityTerm) -> TabularDiversity:
        population = np.asarray(term.own_population, dtype=np.float64)
        weights = hull_weights(population.shape[0], term.hull_samples, term.seed)
        hull = hull_behaviour_policies(compiled, player, population, weights)

        def bonus_table(policy: np.ndarray) -> np.ndarray:
            log_ratio, distances = behaviour_log_ratios(compiled, player, policy, hull)
            return log_ratio[int(np.argmin(distances))]

        return TabularDiversity(bonus_table=bonus_table)

    def for_points(self, game, term: DiversityTerm) -> Callable[[torch.Tensor], torch.Tensor]:
        import torch  # noqa: PLC0415 (PyTorch only where a term is computed)
        population = np.asarray(term.own_population, dtype=np.float64)
        weights = torch.as_tensor(hull_weights(population.shape[0], term.hull_samples, term.seed))
        hull_behaviours = weights @ _point_behaviours(game, population)

        def diversity(activation: torch.Tensor) -> torch.Tensor:
            behaviour = activation / activation.sum()
            return kl_divergence(behaviour[None], hull_behaviours).min()

        return diversity


register_diversity_term("dpp", DPPDiversity())
register_diversity_term("bdrd", BDRDDiversity())
register_diversity_term("psd", PSDDiversity())

#: The built-in terms (the registry may hold more, from plug-ins).
DIVERSITY_VARIANTS = ("dpp", "bdrd", "psd")

__all__ = [
    "DEFAULT_DIVERSITY_WEIGHT",
    "DEFAULT_HULL_SAMPLES",
    "DIVERSITY_VARIANTS",
    "HULL_SMOOTHING",
    "BDRDDiversity",
    "DPPDiversity",
    "DiversityMeasure",
    "DiversityTerm",
    "PSDDiversity",
    "TabularDiversity",
    "TabularPayoffs",
    "behaviour_log_ratios",
    "convex_hull_distance",
    "dpp_expected_cardinality",
    "hull_behaviour_policies",
    "hull_coefficients",
    "hull_weights",
    "js_divergence",
    "kl_divergence",
    "measure_for",
]
