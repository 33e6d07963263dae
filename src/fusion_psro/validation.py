"""Validation of tabular policies, policy profiles and meta-strategies.

A policy of player ``p`` is a ``float64[num_infostates, num_actions]`` array whose row
``i`` is the action distribution at information state ``compiled.players[p].keys[i]``.
A population of ``K`` policies is a ``[K, num_infostates, num_actions]`` array. A
*profile* is a pair ``(policy_of_player_0, policy_of_player_1)``.

It imports only NumPy and :mod:`fusion_psro.errors`, so games, evaluation and
meta-solvers all validate their inputs with it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fusion_psro.errors import InvalidMetaStrategyError, InvalidPlayerError, InvalidPolicyError, PolicyTypeError

if TYPE_CHECKING:
    from fusion_psro.games.compiled import CompiledGame

#: Largest allowed deviation of a row sum (or meta-strategy sum) from one.
SUM_TOLERANCE = 1e-6
#: Probabilities below ``-NEGATIVE_TOLERANCE`` or illegal mass above it are errors.
NEGATIVE_TOLERANCE = 1e-12


def check_player(player: int) -> int:
    """``player`` as an int; :class:`InvalidPlayerError` unless it is 0 or 1."""
    if player not in (0, 1):
        raise InvalidPlayerError(f"player must be 0 or 1 in a two-player game, got {player!r}")
    return int(player)


def validate_policy(compiled: CompiledGame, player: int, policy, *, name: str = "policy") -> np.ndarray:
    """Check a policy (``[I, A]``) or a stack of policies (``[K, I, A]``) for ``player``.

    Returns the policy as a float64 array. Raises :class:`InvalidPolicyError` naming the
    first offending information state if the shape is wrong, a value is NaN or infinite,
    a probability is negative, a row does not sum to one (within ``1e-6``), or an
    illegal action has positive probability.
    """
    info = compiled.players[check_player(player)]
    expected = (info.num_infostates, info.num_actions)
    if callable(getattr(policy, "action_probabilities", None)):
        raise PolicyTypeError(
            f"{name} for player {player} is an OpenSpiel {type(policy).__name__}; this function takes arrays "
            "[information states, actions]: convert it with fusion_psro.from_openspiel_policy, or evaluate it "
            "with fusion_psro.exploitability and the other top-level functions"
        )
    try:
        array = np.asarray(policy, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPolicyError(f"{name} for player {player} is not a numeric array: {exc}") from None
    if array.shape[-2:] != expected or array.ndim not in (2, 3):
        raise InvalidPolicyError(
            f"{name} for player {player} has shape {array.shape}; expected {expected} "
            f"(information states x actions of {compiled.game_string}) or (K, *{expected}) for K policies"
        )
    flat = array.reshape(-1, *expected)

    def fail(problem: str, bad: np.ndarray) -> None:
        member, row = np.argwhere(bad)[0][:2]
        where = f"member {member}, " if array.ndim == 3 else ""
        raise InvalidPolicyError(
            f"{name} for player {player} {problem} at {where}information state {row} "
            f"({info.keys[row]!r}): row {flat[member, row].tolist()}, legal actions "
            f"{np.flatnonzero(info.legal_mask[row]).tolist()}. A policy row must be a probability "
            "distribution over the legal actions."
        )

    # Whole-array checks first; the per-row scans that locate a problem run only on failure.
    if not np.isfinite(flat).all():
        fail("has NaN or infinite values", ~np.isfinite(flat).all(axis=2))
    if flat.min(initial=0.0) < -NEGATIVE_TOLERANCE:
        fail("has negative probabilities", (flat < -NEGATIVE_TOLERANCE).any(axis=2))
    illegal_mass = flat[:, ~info.legal_mask]
    if illegal_mass.size and illegal_mass.max() > NEGATIVE_TOLERANCE:
        fail("puts probability on illegal actions", (np.where(info.legal_mask, 0.0, flat) > NEGATIVE_TOLERANCE).any(axis=2))
    row_error = np.abs(flat @ np.ones(info.num_actions) - 1.0)
    if row_error.max(initial=0.0) > SUM_TOLERANCE:
        fail("has a row that does not sum to 1", row_error > SUM_TOLERANCE)
    return array


def validate_profile(compiled: CompiledGame, profile: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Check a pair of policies ``(policy_of_player_0, policy_of_player_1)``."""
    if not isinstance(profile, (Sequence, np.ndarray)):
        raise PolicyTypeError(
            f"a policy profile must be a pair (policy_of_player_0, policy_of_player_1) of arrays shaped "
            f"[information states, actions], got a {type(profile).__name__}; OpenSpiel policy objects go to "
            "fusion_psro.exploitability and the other top-level functions"
        )
    if isinstance(profile, np.ndarray) or len(profile) != 2:
        raise InvalidPolicyError(
            "a policy profile must be a pair (policy_of_player_0, policy_of_player_1) of arrays "
            "shaped [information states, actions]"
        )
    return (
        validate_policy(compiled, 0, profile[0], name="policy"),
        validate_policy(compiled, 1, profile[1], name="policy"),
    )


def validate_meta_strategy(weights, population_size: int, *, player: int | None = None, name: str | None = None) -> np.ndarray:
    """Check that ``weights`` is a probability vector of length ``population_size``.

    Errors name the vector as ``name``, or as the meta-strategy of ``player``.
    """
    name = name or f"meta-strategy of player {player}"
    try:
        array = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidMetaStrategyError(f"{name} is not numeric: {exc}") from None
    if array.shape != (population_size,):
        raise InvalidMetaStrategyError(
            f"{name} has shape {array.shape}; expected ({population_size},), one weight per population member"
        )
    if not np.isfinite(array).all() or (array < -NEGATIVE_TOLERANCE).any():
        raise InvalidMetaStrategyError(f"{name} must be finite and non-negative, got {array.tolist()}")
    if abs(array.sum() - 1.0) > SUM_TOLERANCE:
        raise InvalidMetaStrategyError(f"{name} sums to {array.sum():.9g}; weights must sum to 1")
    return array
