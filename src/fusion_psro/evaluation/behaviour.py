"""Behaviour strategies in the sequence form: mixtures as one policy, reach, action values.

A mixture "draw a member with probability ``w_k``, then follow it for the whole episode"
is, by Kuhn's theorem, equivalent to one behaviour strategy: the weighted sum of the
members' realization plans, divided at each information state by the reach of that state
(what OpenSpiel's ``PolicyAggregator`` computes state by state). The diversity terms
compare a learner with such mixtures (the population's hull, its meta-Nash mixture), and
an initialization can distil the meta-Nash mixture into one policy.

The probability that chance and the opponent lead into an information state
(:func:`opponent_reach`) and the expected return of each action there when the player
follows a behaviour strategy afterwards (:func:`action_values`) come from the same arrays.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fusion_psro.evaluation.sequence_form import realization_plans, sequence_form
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


def opponent_reach(compiled: CompiledGame, player: int, opponent_plan: np.ndarray) -> np.ndarray:
    """``float64[I]``: probability that chance and the opponent's plan lead into each information state.

    The sum over the histories ``h`` of the state of ``chance_reach(h) * y(opponent's
    sequence at h)``; with the player's own reach it gives the probability of visiting
    the state.
    """
    decisions = np.flatnonzero(compiled.node_player == player)
    weights = compiled.chance_reach[decisions] * opponent_plan[compiled.sequences[decisions, 1 - player]]
    reach = np.zeros(compiled.players[player].num_infostates)
    np.add.at(reach, compiled.node_infostate[decisions], weights)
    return reach


def play_kl(compiled: CompiledGame, player: int, policy: np.ndarray, other: np.ndarray,
            opponent_plan: np.ndarray) -> float:
    """KL divergence of ``player``'s play under ``policy`` from its play under ``other``, in nats.

    ``sum_s P(visit s) KL(policy(.|s) || other(.|s))``, the probability of visiting ``s``
    being ``policy``'s own reach times :func:`opponent_reach` (chance and the opponent's plan
    ``opponent_plan``): the KL divergence between the distributions over the game's
    terminal histories that the two policies induce against the same opponent (the chain
    rule of KL). ``inf`` where ``other`` rules out an action that ``policy`` plays at a
    state it visits.
    """
    info = compiled.players[player]
    policy, other = validate_policy(compiled, player, policy), validate_policy(compiled, player, other)
    plan = realization_plans(compiled, player, policy)
    visits = plan[info.parent_sequence] * opponent_reach(compiled, player, opponent_plan)
    played = policy > 0
    log_ratio = np.zeros_like(policy)
    with np.errstate(divide="ignore"):
        log_ratio[played] = np.log(policy[played]) - np.log(other[played])
    per_state = (policy * log_ratio).sum(axis=1)
    seen = visits > 0
    return float(np.sum(visits[seen] * per_state[seen]))


@dataclasses.dataclass(frozen=True)
class ActionValues:
    """Expected returns of each action of one player, given its information state.

    Attributes
    ----------
    q:
        ``float64[I, A]``: the player's expected return after taking ``a`` at ``s`` and
        following the behaviour strategy afterwards, conditioned on reaching ``s``
        (0 at illegal actions and at states chance and the opponent never lead into).
    reach:
        ``float64[I]``: :func:`opponent_reach` of each state (0: the condition is void).
    """

    q: np.ndarray
    reach: np.ndarray


def action_values(compiled: CompiledGame, player: int, policy: np.ndarray, opponent_plan: np.ndarray) -> ActionValues:
    """Action values of ``player``'s behaviour ``policy`` against a fixed opponent plan, exactly.

    A bottom-up fold over the player's information states: the counterfactual value of a
    sequence is what it collects at terminals (``A_p y``) plus, for each information state
    it leads to, the policy's average of that state's sequence values; dividing by the
    probability that chance and the opponent reach the state gives ``E[return | s, a]``.
    """
    info = compiled.players[player]
    values = np.array(sequence_form(compiled).matrices[player] @ opponent_plan, dtype=np.float64)
    per_infostate = values[: info.empty_sequence].reshape(info.num_infostates, info.num_actions)
    for group in reversed(info.infostates_by_level):
        # Deeper states are final here; their parents lie at shallower levels.
        np.add.at(values, info.parent_sequence[group], (policy[group] * per_infostate[group]).sum(axis=1))
    reach = opponent_reach(compiled, player, opponent_plan)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where((reach[:, None] > REACH_TOLERANCE) & info.legal_mask, per_infostate / reach[:, None], 0.0)
    return ActionValues(q=q, reach=reach)


__all__ = ["REACH_TOLERANCE", "ActionValues", "action_values", "mixture_behaviour", "opponent_reach"]
