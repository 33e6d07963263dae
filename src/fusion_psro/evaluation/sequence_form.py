"""Exact evaluation in sequence form.

A behavioural policy of player ``p`` maps to its *realization plan*: for every sequence
(information state, action) the product of ``p``'s own action probabilities along the
path to it. Reach probabilities factorise over players and chance, so the expected
utility of a profile is bilinear in the two plans::

    value_0 = x0^T A0 x1,   A0[s0, s1] = sum over terminals z reached by (s0, s1) of
                                          chance_reach(z) * u_0(z)

(von Stengel 1996; Koller, Megiddo & von Stengel 1994). Everything below is a few
vectorised passes over these arrays:

* a population payoff matrix is ``X0 A0 X1^T`` in one sparse product;
* a mixture of policies weighted by a meta-strategy is the weighted sum of their plans,
  which is exactly what OpenSpiel's ``PolicyAggregator`` computes state by state;
* a best response folds ``A_p y`` bottom-up over the player's information states,
  taking the best action at each, one vectorised step per level.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse

from fusion_psro.games.compiled import CompiledGame
from fusion_psro.policies import _check_player


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceFormPayoffs:
    """Sparse payoff matrices of a compiled game.

    ``matrices[p]`` has shape ``(num_sequences(p), num_sequences(1 - p))`` and holds
    player ``p``'s chance-weighted terminal utilities, so ``matrices[p] @ y`` gives the
    value of each of ``p``'s sequences against opponent plan ``y``.
    """

    matrices: tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix]


def sequence_form(compiled: CompiledGame) -> SequenceFormPayoffs:
    """The (cached) sparse payoff matrices of ``compiled``."""
    cached = compiled.__dict__.get("_sequence_form")
    if cached is None:
        terminals = compiled.terminal_histories
        seq = compiled.sequences[terminals]
        weight = compiled.chance_reach[terminals]
        sizes = [info.num_sequences for info in compiled.players]
        mats = []
        for p in range(2):
            data = weight * compiled.returns[terminals, p]
            mat = scipy.sparse.coo_matrix((data, (seq[:, p], seq[:, 1 - p])), shape=(sizes[p], sizes[1 - p]))
            mats.append(mat.tocsr())  # duplicate (s0, s1) entries are summed here
        cached = SequenceFormPayoffs(matrices=(mats[0], mats[1]))
        compiled.__dict__["_sequence_form"] = cached
    return cached


def realization_plans(compiled: CompiledGame, player: int, policies: np.ndarray) -> np.ndarray:
    """Realization plans of ``player``'s policies.

    Parameters
    ----------
    policies:
        ``[I, A]`` for one policy or ``[K, I, A]`` for K policies (validated by the
        caller; see :func:`fusion_psro.policies.validate_policy`).

    Returns
    -------
    np.ndarray
        ``[S]`` or ``[K, S]`` with ``S = num_sequences``; entry ``I * A + a`` is the
        probability that the player's own actions lead to information state ``I`` and
        then choose ``a``; the last entry (empty sequence) is 1.
    """
    info = compiled.players[_check_player(player)]
    single = policies.ndim == 2
    stack = policies[None] if single else policies
    count = stack.shape[0]
    plans = np.zeros((count, info.num_sequences))
    plans[:, info.empty_sequence] = 1.0
    per_infostate = plans[:, : info.empty_sequence].reshape(count, info.num_infostates, info.num_actions)
    for group in info.infostates_by_level:
        reach = plans[:, info.parent_sequence[group]]
        per_infostate[:, group, :] = reach[:, :, None] * stack[:, group, :]
    return plans[0] if single else plans


def expected_values(compiled: CompiledGame, plan0: np.ndarray, plan1: np.ndarray) -> np.ndarray:
    """Expected utility of each player, ``[2]``, for one pair of realization plans."""
    mats = sequence_form(compiled).matrices
    return np.array([plan0 @ (mats[0] @ plan1), plan1 @ (mats[1] @ plan0)])


def payoff_matrix_from_plans(compiled: CompiledGame, plans0: np.ndarray, plans1: np.ndarray) -> np.ndarray:
    """Player 0's expected utility for every pair of plans: ``[K, S0] x [L, S1] -> [K, L]``."""
    mat0 = sequence_form(compiled).matrices[0]
    return plans0 @ np.asarray(mat0 @ plans1.T)


@dataclasses.dataclass(frozen=True)
class BestResponse:
    """A pure best response and its value.

    Attributes
    ----------
    policy:
        ``[I, A]`` (or ``[B, I, A]`` for a batch of opponents) one-hot policy of the
        responding player; ties are broken towards the lowest action index.
    value:
        Expected utility of the responding player (float, or ``[B]``).
    """

    policy: np.ndarray
    value: float | np.ndarray


def best_response_to_plans(compiled: CompiledGame, player: int, opponent_plans: np.ndarray) -> BestResponse:
    """Best response of ``player`` to one opponent plan ``[S']`` or a batch ``[B, S']``."""
    info = compiled.players[_check_player(player)]
    single = opponent_plans.ndim == 1
    columns = opponent_plans[:, None] if single else opponent_plans.T
    # values[s, b]: expected utility collected at sequence s (and below, once folded).
    values = np.array(sequence_form(compiled).matrices[player] @ columns, dtype=np.float64)
    batch = values.shape[1]
    per_infostate = values[: info.empty_sequence].reshape(info.num_infostates, info.num_actions, batch)
    policy = np.zeros((batch, info.num_infostates, info.num_actions))
    for group in reversed(info.infostates_by_level):
        action_values = np.where(info.legal_mask[group][:, :, None], per_infostate[group], -np.inf)
        best_action = action_values.argmax(axis=1)  # [|group|, B]
        best_value = np.take_along_axis(action_values, best_action[:, None, :], axis=1)[:, 0, :]
        policy[np.arange(batch)[None, :], group[:, None], best_action] = 1.0
        # Parents lie at shallower levels, so they are folded after this group.
        np.add.at(values, info.parent_sequence[group], best_value)
    root_values = values[info.empty_sequence]
    if single:
        return BestResponse(policy=policy[0], value=float(root_values[0]))
    return BestResponse(policy=policy, value=root_values)
