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
from fusion_psro.validation import check_player


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
    cached = compiled.derived.sequence_form
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
        compiled.derived.sequence_form = cached
    return cached


def realization_plans(compiled: CompiledGame, player: int, policies: np.ndarray) -> np.ndarray:
    """Realization plans of ``player``'s policies.

    Parameters
    ----------
    policies:
        ``[I, A]`` for one policy or ``[K, I, A]`` for K policies (validated by the
        caller; see :func:`fusion_psro.validation.validate_policy`).

    Returns
    -------
    np.ndarray
        ``[S]`` or ``[K, S]`` with ``S = num_sequences``; entry ``I * A + a`` is the
        probability that the player's own actions lead to information state ``I`` and
        then choose ``a``; the last entry (empty sequence) is 1.
    """
    info = compiled.players[check_player(player)]
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
        responding player. Ties (information states the opponent never reaches, where
        every action is worth zero, and genuinely equal actions) are broken by the value
        against the opponent's uniform random policy, then towards the lowest action index.
    value:
        Expected utility of the responding player (float, or ``[B]``).
    """

    policy: np.ndarray
    value: float | np.ndarray


#: Actions within this relative distance of the best value count as tied.
TIE_TOLERANCE = 1e-12


def _uniform_plan(compiled: CompiledGame, player: int) -> np.ndarray:
    cache = compiled.derived.uniform_plans
    if player not in cache:
        mask = compiled.players[player].legal_mask.astype(np.float64)
        cache[player] = realization_plans(compiled, player, mask / mask.sum(axis=1, keepdims=True))
    return cache[player]


def best_response_to_plans(compiled: CompiledGame, player: int, opponent_plans: np.ndarray) -> BestResponse:
    """Best response of ``player`` to one opponent plan ``[S']`` or a batch ``[B, S']``.

    The value is exact. Among the actions that reach it at an information state, the
    response takes the one that is best against the opponent's uniform random policy (a
    lexicographic best response): at states the opponent's strategy never reaches, every
    action is worth zero, and an arbitrary choice there (always folding, say) leaves a
    weakness that later mixtures, which do reach those states, would expose.
    """
    info = compiled.players[check_player(player)]
    single = opponent_plans.ndim == 1
    columns = opponent_plans[:, None] if single else opponent_plans.T
    matrix = sequence_form(compiled).matrices[player]
    # values[s, b]: expected utility collected at sequence s (and below, once folded);
    # tie_values: the same against the uniform opponent, for the responses chosen here.
    values = np.array(matrix @ columns, dtype=np.float64)
    batch = values.shape[1]
    tie_values = np.repeat(np.asarray(matrix @ _uniform_plan(compiled, 1 - player))[:, None], batch, axis=1)
    per_infostate = values[: info.empty_sequence].reshape(info.num_infostates, info.num_actions, batch)
    tie_per_infostate = tie_values[: info.empty_sequence].reshape(info.num_infostates, info.num_actions, batch)
    policy = np.zeros((batch, info.num_infostates, info.num_actions))
    for group in reversed(info.infostates_by_level):
        legal = info.legal_mask[group][:, :, None]
        action_values = np.where(legal, per_infostate[group], -np.inf)
        best_value = action_values.max(axis=1)  # [|group|, B]
        tied = action_values >= (best_value - TIE_TOLERANCE * (1.0 + np.abs(best_value)))[:, None, :]
        best_action = np.where(tied, tie_per_infostate[group], -np.inf).argmax(axis=1)
        chosen_tie_value = np.take_along_axis(tie_per_infostate[group], best_action[:, None, :], axis=1)[:, 0, :]
        policy[np.arange(batch)[None, :], group[:, None], best_action] = 1.0
        # Parents lie at shallower levels, so they are folded after this group.
        parents = info.parent_sequence[group]
        np.add.at(values, parents, best_value)
        np.add.at(tie_values, parents, chosen_tie_value)
    root_values = values[info.empty_sequence]
    if single:
        return BestResponse(policy=policy[0], value=float(root_values[0]))
    return BestResponse(policy=policy, value=root_values)
