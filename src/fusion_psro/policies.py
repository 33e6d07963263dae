"""Tabular policies as arrays over a compiled game: uniform, random and pure ones.

A policy of player ``p`` is a ``float64[num_infostates, num_actions]`` array whose row
``i`` is the action distribution at information state ``compiled.players[p].keys[i]``;
:mod:`fusion_psro.validation` checks them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fusion_psro.validation import check_player

if TYPE_CHECKING:
    from fusion_psro.games.compiled import CompiledGame


def uniform_policy(compiled: CompiledGame, player: int) -> np.ndarray:
    """The policy that plays every legal action with equal probability."""
    mask = compiled.players[check_player(player)].legal_mask.astype(np.float64)
    return mask / mask.sum(axis=1, keepdims=True)


def random_policy(compiled: CompiledGame, player: int, rng: np.random.Generator, *, concentration: float = 1.0) -> np.ndarray:
    """A policy whose rows are drawn from a Dirichlet distribution over the legal actions."""
    mask = compiled.players[check_player(player)].legal_mask
    weights = rng.gamma(concentration, size=mask.shape) * mask
    # Gamma draws can underflow to zero for small concentrations; fall back to uniform there.
    totals = weights.sum(axis=1, keepdims=True)
    weights = np.where(totals > 0, weights, mask)
    return weights / weights.sum(axis=1, keepdims=True)


def random_deterministic_policy(compiled: CompiledGame, player: int, rng: np.random.Generator) -> np.ndarray:
    """A pure policy: one uniformly chosen legal action per information state."""
    mask = compiled.players[check_player(player)].legal_mask
    scores = np.where(mask, rng.random(mask.shape), -1.0)
    policy = np.zeros(mask.shape)
    policy[np.arange(mask.shape[0]), scores.argmax(axis=1)] = 1.0
    return policy
