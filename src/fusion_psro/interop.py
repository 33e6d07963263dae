"""OpenSpiel interoperability: policies in and out, and the public exact-evaluation API.

These functions accept what OpenSpiel users already have: a game string or
``pyspiel.Game``, and policies as ``open_spiel.python.policy.Policy`` objects
(``TabularPolicy`` included). They return the same numbers as
``open_spiel.python.algorithms.exploitability`` (to 1e-9), computed exactly from the
compiled game instead of by tree walks.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
import pyspiel
from open_spiel.python import policy as openspiel_policy

from fusion_psro._blas import single_threaded_blas
from fusion_psro.errors import InvalidPolicyError, PolicyTypeError
from fusion_psro.evaluation import exact
from fusion_psro.games.compiled import CompiledGame, compile_game
from fusion_psro.validation import validate_policy

GameLike = str | pyspiel.Game | CompiledGame


def _is_tabular_fast_path(policy) -> bool:
    # A subclass that overrides action_probabilities may not follow its table.
    return (
        isinstance(policy, openspiel_policy.TabularPolicy)
        and type(policy).action_probabilities is openspiel_policy.TabularPolicy.action_probabilities
    )


def _tabular_rows(compiled: CompiledGame, policy: openspiel_policy.TabularPolicy, player: int, name: str) -> np.ndarray:
    """Rows of ``policy``'s table holding ``player``'s information states, in our order."""
    lookup = policy.state_lookup
    # Populations hold many TabularPolicy objects of one game. Rows are remembered per
    # policy object, weakly (a discarded policy frees its table, which for Liar's Dice is a
    # few MB), and a new table is compared by value with the first one seen (a C loop);
    # each key is looked up only for a table unlike any seen before.
    per_policy = compiled.derived.tabular_rows_by_policy.setdefault(player, weakref.WeakKeyDictionary())
    known = per_policy.get(policy)
    if known is not None and known[0] is lookup:
        return known[1]
    references = compiled.derived.tabular_rows_reference
    reference = references.get(player)
    if reference is not None and reference[0] == lookup:
        per_policy[policy] = (lookup, reference[1])
        return reference[1]
    info = compiled.players[player]
    rows = np.fromiter((lookup.get(key, -1) for key in info.keys.tolist()), dtype=np.int64, count=info.num_infostates)
    if (rows < 0).any():
        absent = info.keys[rows < 0]
        raise InvalidPolicyError(
            f"{name} has no entry for {absent.size} of player {player}'s information states of "
            f"{compiled.game_string} (first: {str(absent[0])!r}): {_missing_rows_advice(compiled, policy)}"
        )
    references.setdefault(player, (lookup, rows))
    per_policy[policy] = (lookup, rows)
    return rows


def _built_for(policy: openspiel_policy.TabularPolicy) -> str:
    game = getattr(policy, "game", None)
    return "an unknown game" if game is None else str(game)


def _missing_rows_advice(compiled: CompiledGame, policy: openspiel_policy.TabularPolicy) -> str:
    built_for = _built_for(policy)
    if built_for == compiled.game_string:
        return f"it covers players {list(getattr(policy, 'player_ids', []))} only; build it for both players"
    return (
        f"it was built for {built_for}; build it with open_spiel.python.policy.TabularPolicy(game) "
        f"on {compiled.game_string}"
    )


def _table_mismatch(compiled: CompiledGame, policy: openspiel_policy.TabularPolicy, table: np.ndarray,
                    name: str) -> str:
    """Why ``policy``'s table cannot hold a policy of ``compiled``, for an error message."""
    shape = " x ".join(str(size) for size in table.shape)
    built_for = _built_for(policy)
    if built_for != compiled.game_string:
        return (
            f"{name} is a TabularPolicy of {built_for} (table {shape}), not of {compiled.game_string} "
            f"({compiled.num_actions} actions); build it with open_spiel.python.policy.TabularPolicy(game) "
            f"on {compiled.game_string}"
        )
    return (
        f"{name} is a TabularPolicy of {built_for} whose table is {shape}, not {len(policy.state_lookup)} x "
        f"{compiled.num_actions} (a row per entry of its state_lookup, a column per action)"
    )


def _raw_policy_array(compiled: CompiledGame, policy, player: int, *, name: str) -> np.ndarray:
    """``player``'s rows of ``policy`` as an ``[I, A]`` array, not yet validated."""
    info = compiled.players[player]
    if isinstance(policy, np.ndarray):
        return policy
    if _is_tabular_fast_path(policy):
        table = np.asarray(policy.action_probability_array)
        if table.ndim != 2 or table.shape[1] != info.num_actions or table.shape[0] != len(policy.state_lookup):
            raise InvalidPolicyError(_table_mismatch(compiled, policy, table, name))
        return table[_tabular_rows(compiled, policy, player, name)]
    if not callable(getattr(policy, "action_probabilities", None)):
        raise PolicyTypeError(
            f"{name} is a {type(policy).__name__}; expected an OpenSpiel policy "
            "(open_spiel.python.policy.Policy, e.g. TabularPolicy) or a numpy array "
            f"[information states, actions] of player {player}"
        )
    array = np.zeros((info.num_infostates, info.num_actions))
    for row, state in enumerate(compiled.representative_states(player)):
        for action, probability in policy.action_probabilities(state).items():
            if not 0 <= action < info.num_actions:
                raise InvalidPolicyError(
                    f"{name} returned action {action} at {info.keys[row]!r}; actions are 0..{info.num_actions - 1}"
                )
            array[row, action] += probability
    return array


def _policy_array(compiled: CompiledGame, policy, player: int, *, name: str) -> np.ndarray:
    raw = _raw_policy_array(compiled, policy, player, name=name)
    return validate_policy(compiled, player, raw, name=name)


@single_threaded_blas
def from_openspiel_policy(game: GameLike, policy, players: Sequence[int] = (0, 1)) -> tuple[np.ndarray, ...]:
    """Convert an OpenSpiel policy into this project's arrays, one ``[I_p, A]`` per player.

    ``policy`` is an ``open_spiel.python.policy.Policy`` covering ``players`` (a
    ``TabularPolicy`` is read straight from its table; any other policy is queried once
    per information state), or a pair ``(policy_of_player_0, policy_of_player_1)`` of such
    policies or arrays. Rows follow ``compile_game(game).players[p].keys``.
    """
    compiled = compile_game(game)
    if isinstance(policy, (tuple, list)):
        if len(policy) != 2:
            raise PolicyTypeError("a pair of policies must have exactly two entries, one per player")
        return tuple(_policy_array(compiled, policy[p], p, name=f"policy of player {p}") for p in players)
    return tuple(_policy_array(compiled, policy, p, name="policy") for p in players)


def to_openspiel_policy(game: GameLike, profile: Sequence[np.ndarray]) -> openspiel_policy.TabularPolicy:
    """Build an OpenSpiel ``TabularPolicy`` from ``(policy_of_player_0, policy_of_player_1)`` arrays."""
    compiled = compile_game(game)
    if len(profile) != 2:
        raise InvalidPolicyError("profile must be a pair (policy_of_player_0, policy_of_player_1)")
    tabular = openspiel_policy.TabularPolicy(compiled.openspiel_game)
    for player in range(2):
        array = validate_policy(compiled, player, profile[player], name=f"policy of player {player}")
        if array.ndim != 2:
            raise InvalidPolicyError(f"policy of player {player} must be one [I, A] array, got shape {array.shape}")
        rows = [tabular.state_lookup[key] for key in compiled.players[player].keys.tolist()]
        tabular.action_probability_array[rows] = array
    return tabular


def _profile(game: GameLike, policy) -> tuple[CompiledGame, tuple[np.ndarray, np.ndarray]]:
    compiled = compile_game(game)
    return compiled, from_openspiel_policy(compiled, policy)


@single_threaded_blas
def nash_conv(game: GameLike, policy) -> float:
    """NashConv of an OpenSpiel policy: ``sum_p (best-response value_p - value_p)``.

    Same number as ``open_spiel.python.algorithms.exploitability.nash_conv(game, policy)``.
    In two-player zero-sum games NashConv = 2 x exploitability.
    """
    compiled, profile = _profile(game, policy)
    return exact.nash_conv(compiled, profile)


@single_threaded_blas
def exploitability(game: GameLike, policy) -> float:
    """Exploitability of an OpenSpiel policy: ``(sum_p best-response value_p - utility sum) / 2``.

    Same number as ``open_spiel.python.algorithms.exploitability.exploitability(game, policy)``
    (NashConv / 2 in two-player zero-sum games).
    """
    compiled, profile = _profile(game, policy)
    return exact.exploitability(compiled, profile)


def _populations(compiled: CompiledGame, populations: Sequence) -> list[np.ndarray]:
    if len(populations) != 2:
        raise PolicyTypeError("populations must hold one list of policies per player (two)")
    stacked = []
    for player in range(2):
        members = populations[player]
        if isinstance(members, np.ndarray):
            stacked.append(validate_policy(compiled, player, members, name=f"population of player {player}"))
            continue
        if len(members) == 0:
            raise InvalidPolicyError(f"population of player {player} is empty")
        raw = np.stack([_raw_policy_array(compiled, member, player, name=f"member {k} of player {player}'s population")
                        for k, member in enumerate(members)])
        stacked.append(validate_policy(compiled, player, raw, name=f"population of player {player}"))
    return stacked


@single_threaded_blas
def mixture_nash_conv(game: GameLike, populations: Sequence, meta_strategies: Sequence) -> float:
    """NashConv of the meta-strategy mixtures of two populations of OpenSpiel policies.

    ``populations[p]`` lists player ``p``'s policies; ``meta_strategies[p]`` their weights.
    Same number as OpenSpiel's ``PolicyAggregator`` followed by ``nash_conv``.
    """
    compiled = compile_game(game)
    return exact.mixture_nash_conv(compiled, _populations(compiled, populations), meta_strategies)


@single_threaded_blas
def mixture_exploitability(game: GameLike, populations: Sequence, meta_strategies: Sequence) -> float:
    """Exploitability (NashConv / 2) of the meta-strategy mixtures of two populations.

    ``populations[p]`` lists player ``p``'s OpenSpiel policies (or is a ``[K, I, A]``
    array); ``meta_strategies[p]`` their weights. Same number as OpenSpiel's
    ``PolicyAggregator`` followed by ``exploitability``, without building the aggregate.
    """
    compiled = compile_game(game)
    return exact.mixture_exploitability(compiled, _populations(compiled, populations), meta_strategies)
