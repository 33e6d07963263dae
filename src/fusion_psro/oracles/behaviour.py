"""Exact behaviour strategies of mixtures of tabular policies.

A mixture "draw a member with probability ``w_k``, then follow it for the whole episode"
is, by Kuhn's theorem, equivalent to one behaviour strategy: the weighted sum of the
members' realization plans, divided at each information state by the reach of that state
(what OpenSpiel's ``PolicyAggregator`` computes state by state). The diversity terms
compare a learner with such mixtures (the population's hull, its meta-Nash mixture), and
an initialization can distil the meta-Nash mixture into one policy.
"""

from __future__ import annotations

import numpy as np

from fusion_psro.evaluation.sequence_form import realization_plans
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.policies import uniform_policy
from fusion_psro.validation import validate_meta_strategy, validate_policy

#: Reach below which an information state counts as unreached by the mixture.
REACH_TOLERANCE = 1e-12


def mixture_behaviour(compiled: CompiledGame, player: int, population, weights) -> np.ndarray:
    """The behaviour strategy of ``player`` equivalent to the mixture ``weights @ population``.

    Parameters
    ----------
    compiled:
        The game.
    player:
        Whose policies these are.
    population:
        ``[K, I, A]`` tabular policies of ``player`` (or ``[I, A]`` for one).
    weights:
        ``[K]`` mixture weights (a probability vector), or ``[H, K]`` for ``H`` mixtures at once.

    Returns
    -------
    numpy.ndarray
        ``float64[I, A]`` (``[H, I, A]`` for ``[H, K]`` weights). An information state
        the mixture never reaches gets the uniform legal policy.
    """
    population = validate_policy(compiled, player, population, name="population")
    if population.ndim == 2:
        population = population[None]
    weights = np.asarray(weights, dtype=np.float64)
    single = weights.ndim == 1
    rows = np.atleast_2d(weights)
    for h, row in enumerate(rows):
        validate_meta_strategy(row, population.shape[0], name="mixture weights" if single else f"mixture weights {h}")
    info = compiled.players[player]
    num_infostates, num_actions = info.legal_mask.shape
    plans = rows @ realization_plans(compiled, player, population)
    reach = plans[:, info.parent_sequence]
    sequences = plans[:, : info.empty_sequence].reshape(-1, num_infostates, num_actions)
    uniform = uniform_policy(compiled, player)
    with np.errstate(invalid="ignore", divide="ignore"):
        behaviour = np.where(reach[..., None] > REACH_TOLERANCE, sequences / reach[..., None], uniform)
    behaviour = np.where(info.legal_mask, behaviour, 0.0)
    behaviour /= behaviour.sum(axis=2, keepdims=True)
    return behaviour[0] if single else behaviour


__all__ = ["REACH_TOLERANCE", "mixture_behaviour"]
