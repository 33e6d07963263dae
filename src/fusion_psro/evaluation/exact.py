"""Exact payoffs, best responses, NashConv and exploitability of tabular policies.

All functions take a :class:`~fusion_psro.games.CompiledGame` and policies as arrays
(see :mod:`fusion_psro.validation`); inputs are validated. For OpenSpiel policy objects use
the top-level :func:`fusion_psro.exploitability` and friends.

Units: ``NashConv = sum_p (BR value_p - value_p)``; ``exploitability = (sum_p BR value_p -
utility sum) / 2``, which equals ``NashConv / 2`` in two-player zero-sum games. These are
OpenSpiel's definitions (``open_spiel.python.algorithms.exploitability``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from fusion_psro._blas import single_threaded_blas
from fusion_psro.errors import InvalidPolicyError
from fusion_psro.evaluation.sequence_form import (
    BestResponse,
    best_response_to_plans,
    expected_values,
    payoff_matrix_from_plans,
    realization_plans,
)
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.validation import check_player, validate_meta_strategy, validate_policy, validate_profile


@dataclasses.dataclass(frozen=True)
class ProfileEvaluation:
    """Exact evaluation of a (possibly mixed) strategy profile.

    Attributes
    ----------
    nash_conv:
        ``sum_p (best_response_values[p] - values[p])``.
    exploitability:
        ``(sum_p best_response_values[p] - utility_sum) / 2``; NashConv / 2 in zero-sum games.
    values:
        Expected utility of each player under the profile.
    best_response_values:
        Expected utility of each player's best response to the other's strategy.
    best_responses:
        Each player's pure best-response policy ``[I_p, A]``.
    """

    nash_conv: float
    exploitability: float
    values: tuple[float, float]
    best_response_values: tuple[float, float]
    best_responses: tuple[np.ndarray, np.ndarray]


@single_threaded_blas
def evaluate_plans(compiled: CompiledGame, plan0: np.ndarray, plan1: np.ndarray) -> ProfileEvaluation:
    """Exact evaluation of a profile given as realization plans (one ``[S_p]`` per player).

    For callers that already hold the plans (the PSRO meta-game keeps every member's), so
    that a mixture is evaluated without recomputing its members' plans.
    """
    values = expected_values(compiled, plan0, plan1)
    br0 = best_response_to_plans(compiled, 0, plan1)
    br1 = best_response_to_plans(compiled, 1, plan0)
    br_values = np.array([br0.value, br1.value])
    return ProfileEvaluation(
        nash_conv=float(np.sum(br_values - values)),
        exploitability=float((br_values.sum() - compiled.utility_sum) / 2),
        values=(float(values[0]), float(values[1])),
        best_response_values=(float(br_values[0]), float(br_values[1])),
        best_responses=(br0.policy, br1.policy),
    )


@single_threaded_blas
def evaluate_profile(compiled: CompiledGame, profile: Sequence) -> ProfileEvaluation:
    """NashConv, exploitability, values and best responses of ``(policy0, policy1)``."""
    policy0, policy1 = validate_profile(compiled, profile)
    return evaluate_plans(
        compiled, realization_plans(compiled, 0, policy0), realization_plans(compiled, 1, policy1)
    )


@single_threaded_blas
def mixture_plan(compiled: CompiledGame, player: int, population, meta_strategy) -> np.ndarray:
    """Realization plan of a meta-strategy mixture of a population ``[K, I, A]``.

    The plans of the members are averaged with the meta-strategy weights: the exact
    behaviour of "draw a member once per episode, then follow it", which is what
    OpenSpiel's ``PolicyAggregator`` builds.
    """
    population = validate_policy(compiled, player, population, name="population")
    if population.ndim == 2:
        population = population[None]
    weights = validate_meta_strategy(meta_strategy, population.shape[0], player=player)
    keep = weights > 0  # members without weight need no plan
    return weights[keep] @ realization_plans(compiled, player, population[keep])


@single_threaded_blas
def evaluate_mixture(compiled: CompiledGame, populations: Sequence, meta_strategies: Sequence) -> ProfileEvaluation:
    """Exact evaluation of the meta-strategy mixtures of two populations.

    Parameters
    ----------
    populations:
        ``populations[p]`` is ``[K_p, I_p, A]`` (or a list of ``[I_p, A]`` policies).
    meta_strategies:
        ``meta_strategies[p]`` is a probability vector of length ``K_p``.
    """
    if len(populations) != 2 or len(meta_strategies) != 2:
        raise InvalidPolicyError("populations and meta_strategies must each hold one entry per player (two)")
    plans = [mixture_plan(compiled, p, populations[p], meta_strategies[p]) for p in range(2)]
    return evaluate_plans(compiled, plans[0], plans[1])


def nash_conv(compiled: CompiledGame, profile: Sequence) -> float:
    """NashConv of the profile ``(policy0, policy1)`` (= 2 x exploitability in zero-sum games)."""
    return evaluate_profile(compiled, profile).nash_conv


def exploitability(compiled: CompiledGame, profile: Sequence) -> float:
    """Exploitability of ``(policy0, policy1)``: ``(sum of BR values - utility sum) / 2``."""
    return evaluate_profile(compiled, profile).exploitability


def mixture_nash_conv(compiled: CompiledGame, populations: Sequence, meta_strategies: Sequence) -> float:
    """NashConv of the meta-strategy mixtures of two populations."""
    return evaluate_mixture(compiled, populations, meta_strategies).nash_conv


def mixture_exploitability(compiled: CompiledGame, populations: Sequence, meta_strategies: Sequence) -> float:
    """Exploitability (NashConv / 2) of the meta-strategy mixtures of two populations."""
    return evaluate_mixture(compiled, populations, meta_strategies).exploitability


@single_threaded_blas
def expected_payoff(compiled: CompiledGame, policy0, policy1) -> np.ndarray:
    """Expected utility ``[u_0, u_1]`` when player 0 plays ``policy0`` and player 1 ``policy1``."""
    policy0 = validate_policy(compiled, 0, policy0)
    policy1 = validate_policy(compiled, 1, policy1)
    if policy0.ndim != 2 or policy1.ndim != 2:
        raise InvalidPolicyError("expected_payoff takes one policy per player; use payoff_matrix for populations")
    return expected_values(compiled, realization_plans(compiled, 0, policy0), realization_plans(compiled, 1, policy1))


@single_threaded_blas
def payoff_matrix(compiled: CompiledGame, population0, population1) -> np.ndarray:
    """Player 0's expected utility for every pair of members, ``[K, L]``, in one call.

    Player 1's matrix is ``utility_sum - M`` (``-M`` in zero-sum games).
    """
    population0 = validate_policy(compiled, 0, population0, name="population")
    population1 = validate_policy(compiled, 1, population1, name="population")
    plans0 = realization_plans(compiled, 0, population0.reshape(-1, *population0.shape[-2:]))
    plans1 = realization_plans(compiled, 1, population1.reshape(-1, *population1.shape[-2:]))
    return payoff_matrix_from_plans(compiled, plans0, plans1)


@single_threaded_blas
def best_response(compiled: CompiledGame, player: int, opponent_policy) -> BestResponse:
    """Pure best response of ``player`` to one opponent policy ``[I_opp, A]``.

    With a stack ``[B, I_opp, A]`` of opponent policies, returns ``B`` best responses at once.
    """
    player = check_player(player)
    opponent_policy = validate_policy(compiled, 1 - player, opponent_policy, name="opponent policy")
    return best_response_to_plans(compiled, player, realization_plans(compiled, 1 - player, opponent_policy))


@single_threaded_blas
def mixture_best_response(compiled: CompiledGame, player: int, opponent_population, meta_strategy) -> BestResponse:
    """Pure best response of ``player`` to a meta-strategy mixture of opponent policies."""
    player = check_player(player)
    plan = mixture_plan(compiled, 1 - player, opponent_population, meta_strategy)
    return best_response_to_plans(compiled, player, plan)
