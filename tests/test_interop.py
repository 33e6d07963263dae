"""The public OpenSpiel-facing API against OpenSpiel's own reference implementations.

Small games are checked against OpenSpiel's Python algorithms
(``open_spiel.python.algorithms.exploitability`` and ``PolicyAggregator``). Liar's Dice
(24,576 information states) is too big for those in the default run; there the reference
is OpenSpiel's C++ (``pyspiel.exploitability``/``pyspiel.nash_conv``, ~7 s a call, and
``pyspiel.TabularBestResponseMDP``, ~2 s a call), and the Python reference runs under
``-m slow``.
"""

from __future__ import annotations

import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as openspiel_policy
from open_spiel.python.algorithms import exploitability as openspiel_exploitability
from open_spiel.python.algorithms import policy_aggregator

import fusion_psro
from conftest import (
    GAMES,
    GOOFSPIEL_4,
    GOOFSPIEL_5,
    KUHN,
    LEDUC,
    LIARS_DICE,
    SMALL_GAMES,
    TOL,
    aggregate_by_realization,
    aggregator_to_tabular,
    deterministic_tabular_policy,
    load_reference_game,
    pyspiel_policy,
    random_tabular_policy,
    tabular_from_arrays,
    uniform_tabular_policy,
)

POLICY_KINDS = ["random", "uniform", "uniform_random_policy", "deterministic"]


def make_policy(game: pyspiel.Game, kind: str, seed: int):
    """``(policy handed to fusion_psro, equivalent TabularPolicy for the reference)``."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        policy = random_tabular_policy(game, rng)
        return policy, policy
    if kind == "uniform":
        policy = uniform_tabular_policy(game)
        return policy, policy
    if kind == "uniform_random_policy":
        # Not a TabularPolicy: goes through the per-information-state query path.
        return openspiel_policy.UniformRandomPolicy(game), uniform_tabular_policy(game)
    if kind == "deterministic":
        policy = deterministic_tabular_policy(game, rng)
        return policy, policy
    raise ValueError(kind)


def mdp_best_response_info(game: pyspiel.Game, tabular: openspiel_policy.TabularPolicy):
    """OpenSpiel's C++ MDP best response: NashConv, BR values and on-policy values."""
    # TabularBestResponseMDP keeps a raw reference to the policy: keep it alive meanwhile
    # (a temporary is freed at once and the call segfaults).
    cpp_policy = pyspiel_policy(tabular)
    solver = pyspiel.TabularBestResponseMDP(game, cpp_policy)
    info = solver.nash_conv()
    del solver, cpp_policy
    return info


def _game_params(games, slow_kinds=()):
    return [
        pytest.param(game, kind, marks=pytest.mark.slow) if (game, kind) in slow_kinds else pytest.param(game, kind)
        for game in games for kind in POLICY_KINDS
    ]


# Goofspiel 5's Python reference walks take ~1.5 s each: its uniform cases run under -m slow.
_SLOW_SINGLE = {(GOOFSPIEL_5, "uniform"), (GOOFSPIEL_5, "uniform_random_policy")}


# ---------------------------------------------------------------------------------------
# Sanity of the references themselves


@pytest.mark.parametrize("game_string", [KUHN, LEDUC, GOOFSPIEL_4])
def test_cpp_references_agree_with_python_reference(game_string):
    """pyspiel.exploitability / nash_conv / TabularBestResponseMDP == the Python reference."""
    game = load_reference_game(game_string)
    policy = random_tabular_policy(game, np.random.default_rng(7))
    expected_expl = openspiel_exploitability.exploitability(game, policy)
    expected_nc = openspiel_exploitability.nash_conv(game, policy)
    assert pyspiel.exploitability(game, pyspiel_policy(policy)) == pytest.approx(expected_expl, abs=TOL)
    assert pyspiel.nash_conv(game, pyspiel_policy(policy)) == pytest.approx(expected_nc, abs=TOL)
    if game_string == GOOFSPIEL_4:
        return  # TabularBestResponseMDP trips over a rounding check (prob <= 1) on goofspiel
    info = mdp_best_response_info(game, policy)
    assert info.nash_conv == pytest.approx(expected_nc, abs=TOL)
    assert sum(info.br_values) / 2 == pytest.approx(expected_expl, abs=TOL)


def test_realization_aggregate_helper_agrees_with_policy_aggregator():
    """The hand-built aggregate used for Liar's Dice equals PolicyAggregator's (on Leduc)."""
    game = load_reference_game(LEDUC)
    rng = np.random.default_rng(11)
    populations = [[random_tabular_policy(game, rng) for _ in range(3)] for _ in range(2)]
    weights = [rng.dirichlet(np.ones(3)), np.array([0.3, 0.0, 0.7])]
    ours = aggregate_by_realization(game, populations, weights)
    theirs = aggregator_to_tabular(game, policy_aggregator.PolicyAggregator(game).aggregate([0, 1], populations, weights))
    np.testing.assert_allclose(ours.action_probability_array, theirs.action_probability_array, atol=1e-12)


# ---------------------------------------------------------------------------------------
# Single policies


@pytest.mark.parametrize(("game_string", "kind"), _game_params(SMALL_GAMES, _SLOW_SINGLE))
def test_exploitability_and_nash_conv_match_openspiel_python(game_string, kind):
    game = load_reference_game(game_string)
    policy, reference = make_policy(game, kind, seed=1)
    expected_expl = openspiel_exploitability.exploitability(game, reference)
    expected_nc = openspiel_exploitability.nash_conv(game, reference)
    assert fusion_psro.exploitability(game, policy) == pytest.approx(expected_expl, abs=TOL)
    assert fusion_psro.nash_conv(game, policy) == pytest.approx(expected_nc, abs=TOL)
    # The game string (simultaneous-move for goofspiel) and the compiled game work too.
    assert fusion_psro.exploitability(game_string, policy) == pytest.approx(expected_expl, abs=TOL)
    compiled = fusion_psro.compile_game(game_string)
    assert fusion_psro.nash_conv(compiled, policy) == pytest.approx(expected_nc, abs=TOL)


@pytest.mark.parametrize("game_string", SMALL_GAMES)
def test_original_openspiel_policy_object_is_used_as_is(game_string):
    """A TabularPolicy built fresh (own state lookup, not a copy) gives the same numbers."""
    game = load_reference_game(game_string)
    policy = random_tabular_policy(game, np.random.default_rng(3), fresh=True)
    assert fusion_psro.exploitability(game, policy) == pytest.approx(
        openspiel_exploitability.exploitability(game, policy), abs=TOL)


class _UniformOverridingTable(openspiel_policy.TabularPolicy):
    """A TabularPolicy subclass whose action_probabilities ignore the table (plays uniformly)."""

    def action_probabilities(self, state, player_id=None):
        legal = state.legal_actions(state.current_player() if player_id is None else player_id)
        return {action: 1.0 / len(legal) for action in legal}


@pytest.mark.parametrize("game_string", [KUHN, LEDUC, GOOFSPIEL_4])
def test_other_policy_objects_match_openspiel(game_string):
    """Non-tabular policies, and a TabularPolicy subclass overriding action_probabilities."""
    game = load_reference_game(game_string)
    first_action = openspiel_policy.FirstActionPolicy(game)
    assert fusion_psro.exploitability(game, first_action) == pytest.approx(
        openspiel_exploitability.exploitability(game, first_action), abs=TOL)
    overriding = _UniformOverridingTable(game)
    overriding.action_probability_array = random_tabular_policy(game, np.random.default_rng(0)).action_probability_array
    expected = openspiel_exploitability.nash_conv(game, overriding)
    assert expected == pytest.approx(openspiel_exploitability.nash_conv(game, uniform_tabular_policy(game)), abs=TOL)
    assert fusion_psro.nash_conv(game, overriding) == pytest.approx(expected, abs=TOL)


@pytest.fixture(scope="module")
def liars_dice():
    game = load_reference_game(LIARS_DICE)
    fusion_psro.compile_game(game)  # compile once, outside the timed assertions
    uniform_tabular_policy(game)  # build the TabularPolicy template once for the module
    return game


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow) if k != "random" else k for k in POLICY_KINDS])
def test_liars_dice_exploitability_matches_pyspiel(liars_dice, kind):
    policy, reference = make_policy(liars_dice, kind, seed=1)
    expected = pyspiel.exploitability(liars_dice, pyspiel_policy(reference))
    assert fusion_psro.exploitability(liars_dice, policy) == pytest.approx(expected, abs=TOL)


@pytest.mark.slow  # ~7-15 s a call; NashConv is checked in the default run against the C++ MDP BR
@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_liars_dice_nash_conv_matches_pyspiel(liars_dice, kind):
    policy, reference = make_policy(liars_dice, kind, seed=1)
    expected = pyspiel.nash_conv(liars_dice, pyspiel_policy(reference))
    assert fusion_psro.nash_conv(liars_dice, policy) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_liars_dice_matches_cpp_mdp_best_response(liars_dice, kind):
    policy, reference = make_policy(liars_dice, kind, seed=2)
    info = mdp_best_response_info(liars_dice, reference)
    assert fusion_psro.nash_conv(liars_dice, policy) == pytest.approx(info.nash_conv, abs=TOL)
    assert fusion_psro.exploitability(liars_dice, policy) == pytest.approx(sum(info.br_values) / 2, abs=TOL)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["random", "deterministic"])
def test_liars_dice_matches_openspiel_python(liars_dice, kind):
    policy, reference = make_policy(liars_dice, kind, seed=4)
    expected = openspiel_exploitability.exploitability(liars_dice, reference)
    assert fusion_psro.exploitability(liars_dice, policy) == pytest.approx(expected, abs=TOL)


# ---------------------------------------------------------------------------------------
# A pair of per-player policies


@pytest.mark.parametrize("game_string", SMALL_GAMES)
def test_pair_of_policies_matches_merged_policy(game_string):
    game = load_reference_game(game_string)
    rng = np.random.default_rng(5)
    first, second = random_tabular_policy(game, rng), deterministic_tabular_policy(game, rng)
    merged = uniform_tabular_policy(game)
    for player, source in ((0, first), (1, second)):
        for key in merged.states_per_player[player]:
            row = merged.state_lookup[key]
            merged.action_probability_array[row] = source.action_probability_array[row]
    expected_expl = openspiel_exploitability.exploitability(game, merged)
    expected_nc = openspiel_exploitability.nash_conv(game, merged)
    assert fusion_psro.exploitability(game, (first, second)) == pytest.approx(expected_expl, abs=TOL)
    assert fusion_psro.nash_conv(game, [first, second]) == pytest.approx(expected_nc, abs=TOL)

    # Single-player TabularPolicy objects, and an array for one player, are accepted too.
    own0 = openspiel_policy.TabularPolicy(game, players=[0])
    own1 = openspiel_policy.TabularPolicy(game, players=[1])
    for player, own, source in ((0, own0, first), (1, own1, second)):
        for key, row in own.state_lookup.items():
            own.action_probability_array[row] = source.action_probability_array[source.state_lookup[key]]
    assert fusion_psro.exploitability(game, (own0, own1)) == pytest.approx(expected_expl, abs=TOL)
    array0, _ = fusion_psro.from_openspiel_policy(game, first)
    assert fusion_psro.exploitability(game, (array0, second)) == pytest.approx(expected_expl, abs=TOL)


def test_pair_of_policies_liars_dice(liars_dice):
    rng = np.random.default_rng(6)
    first, second = random_tabular_policy(liars_dice, rng), random_tabular_policy(liars_dice, rng)
    compiled = fusion_psro.compile_game(liars_dice)
    merged = tabular_from_arrays(liars_dice, compiled, (fusion_psro.from_openspiel_policy(liars_dice, first)[0],
                                                        fusion_psro.from_openspiel_policy(liars_dice, second)[1]))
    info = mdp_best_response_info(liars_dice, merged)
    assert fusion_psro.nash_conv(liars_dice, (first, second)) == pytest.approx(info.nash_conv, abs=TOL)


# ---------------------------------------------------------------------------------------
# Mixtures


def _population(game, rng, size, kind):
    make = deterministic_tabular_policy if kind == "deterministic" else random_tabular_policy
    return [make(game, rng) for _ in range(size)]


MIXTURE_CASES = [
    pytest.param(1, "dirichlet", "random", id="K1"),
    pytest.param(3, "dirichlet", "random", id="K3"),
    pytest.param(20, "dirichlet", "random", id="K20"),
    pytest.param(5, "zeros", "random", id="K5-zero-weights"),
    pytest.param(4, "zeros", "deterministic", id="K4-zero-weights-deterministic"),
]


def _weights(rng, size, how):
    if how == "dirichlet":
        return [rng.dirichlet(np.ones(size)), rng.dirichlet(np.ones(size))]
    w0 = rng.dirichlet(np.ones(size))
    w0[[0, size - 1]] = 0.0
    w1 = np.zeros(size)
    w1[1] = 1.0
    return [w0 / w0.sum(), w1]


def _mixture_params():
    params = []
    for game_string in SMALL_GAMES:
        for case in MIXTURE_CASES:
            # Goofspiel 5 (~3-5 s a case) keeps only K=3 and K=20 in the default run.
            slow = game_string == GOOFSPIEL_5 and case.id not in ("K3", "K20")
            params.append(pytest.param(game_string, *case.values, id=f"{case.id}-{game_string}",
                                       marks=[pytest.mark.slow] if slow else []))
    return params


@pytest.mark.parametrize(("game_string", "size", "how", "kind"), _mixture_params())
def test_mixture_exploitability_matches_policy_aggregator(game_string, size, how, kind):
    game = load_reference_game(game_string)
    rng = np.random.default_rng(size)
    populations = [_population(game, rng, size, kind), _population(game, rng, size, kind)]
    weights = _weights(rng, size, how)
    aggregated = policy_aggregator.PolicyAggregator(game).aggregate([0, 1], populations, weights)
    expected = openspiel_exploitability.exploitability(game, aggregated)
    assert fusion_psro.mixture_exploitability(game, populations, weights) == pytest.approx(expected, abs=TOL)
    assert fusion_psro.mixture_nash_conv(game, populations, weights) == pytest.approx(2 * expected, abs=TOL)
    # Lists of weights and [K, I, A] arrays as populations give the same number.
    stacked = [np.stack([fusion_psro.from_openspiel_policy(game, member)[p] for member in populations[p]])
               for p in range(2)]
    weight_lists = [w.tolist() for w in weights]
    assert fusion_psro.mixture_exploitability(game, stacked, weight_lists) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("game_string", [KUHN, LEDUC, GOOFSPIEL_4])
def test_mixture_of_mixed_policy_types_matches_policy_aggregator(game_string):
    game = load_reference_game(game_string)
    rng = np.random.default_rng(21)
    populations = [
        [openspiel_policy.UniformRandomPolicy(game), random_tabular_policy(game, rng), openspiel_policy.FirstActionPolicy(game)],
        [random_tabular_policy(game, rng, fresh=True), openspiel_policy.FirstActionPolicy(game)],
    ]
    weights = [[0.2, 0.5, 0.3], [0.6, 0.4]]
    aggregated = policy_aggregator.PolicyAggregator(game).aggregate([0, 1], populations, weights)
    expected = openspiel_exploitability.exploitability(game, aggregated)
    assert fusion_psro.mixture_exploitability(game, populations, weights) == pytest.approx(expected, abs=TOL)


def test_liars_dice_single_member_mixture_equals_single_policy(liars_dice):
    rng = np.random.default_rng(8)
    member0, member1 = random_tabular_policy(liars_dice, rng), random_tabular_policy(liars_dice, rng)
    merged = tabular_from_arrays(liars_dice, fusion_psro.compile_game(liars_dice),
                                 (fusion_psro.from_openspiel_policy(liars_dice, member0)[0],
                                  fusion_psro.from_openspiel_policy(liars_dice, member1)[1]))
    expected = sum(mdp_best_response_info(liars_dice, merged).br_values) / 2
    got = fusion_psro.mixture_exploitability(liars_dice, [[member0], [member1]], [[1.0], [1.0]])
    assert got == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("how", ["dirichlet", "zeros"])
def test_liars_dice_mixture_matches_realization_weighted_aggregate(liars_dice, how):
    rng = np.random.default_rng(9)
    populations = [_population(liars_dice, rng, 3, "random"), _population(liars_dice, rng, 3, "random")]
    weights = _weights(rng, 3, how)
    aggregate = aggregate_by_realization(liars_dice, populations, weights)
    info = mdp_best_response_info(liars_dice, aggregate)
    assert fusion_psro.mixture_exploitability(liars_dice, populations, weights) == pytest.approx(
        sum(info.br_values) / 2, abs=TOL)
    assert fusion_psro.mixture_nash_conv(liars_dice, populations, weights) == pytest.approx(info.nash_conv, abs=TOL)


@pytest.mark.slow
def test_liars_dice_mixture_matches_policy_aggregator(liars_dice):
    rng = np.random.default_rng(10)
    populations = [_population(liars_dice, rng, 3, "random"), _population(liars_dice, rng, 3, "random")]
    weights = _weights(rng, 3, "dirichlet")
    aggregated = policy_aggregator.PolicyAggregator(liars_dice).aggregate([0, 1], populations, weights)
    expected = pyspiel.exploitability(liars_dice, pyspiel_policy(aggregator_to_tabular(liars_dice, aggregated)))
    assert fusion_psro.mixture_exploitability(liars_dice, populations, weights) == pytest.approx(expected, abs=TOL)


@pytest.mark.slow
def test_liars_dice_mixture_of_20_matches_realization_weighted_aggregate(liars_dice):
    rng = np.random.default_rng(12)
    populations = [_population(liars_dice, rng, 20, "random"), _population(liars_dice, rng, 20, "random")]
    weights = _weights(rng, 20, "dirichlet")
    aggregate = aggregate_by_realization(liars_dice, populations, weights)
    expected = pyspiel.exploitability(liars_dice, pyspiel_policy(aggregate))
    assert fusion_psro.mixture_exploitability(liars_dice, populations, weights) == pytest.approx(expected, abs=TOL)


# ---------------------------------------------------------------------------------------
# Conversions


@pytest.mark.parametrize("game_string", GAMES)
def test_policy_round_trips_are_exact(game_string):
    game = load_reference_game(game_string)
    compiled = fusion_psro.compile_game(game)
    rng = np.random.default_rng(13)
    tabular = random_tabular_policy(game, rng)
    # Our information states are exactly OpenSpiel's.
    assert set(tabular.state_lookup) == set(compiled.players[0].keys.tolist()) | set(compiled.players[1].keys.tolist())

    # TabularPolicy -> arrays -> TabularPolicy reproduces the table bit for bit.
    arrays = fusion_psro.from_openspiel_policy(game, tabular)
    back = fusion_psro.to_openspiel_policy(game, arrays)
    rows = [back.state_lookup[key] for key in tabular.state_lookup]
    np.testing.assert_array_equal(back.action_probability_array[rows], tabular.action_probability_array)

    # arrays -> TabularPolicy -> arrays as well, and row i is the row of keys[i].
    again = fusion_psro.from_openspiel_policy(game, back)
    for player in range(2):
        np.testing.assert_array_equal(again[player], arrays[player])
        keys = compiled.players[player].keys.tolist()
        np.testing.assert_array_equal(
            arrays[player], tabular.action_probability_array[[tabular.state_lookup[k] for k in keys]])

    # A non-tabular policy is read state by state into the same arrays.
    uniform = fusion_psro.from_openspiel_policy(game, openspiel_policy.UniformRandomPolicy(game))
    expected_uniform = fusion_psro.from_openspiel_policy(game, uniform_tabular_policy(game))
    for player in range(2):
        np.testing.assert_array_equal(uniform[player], expected_uniform[player])


@pytest.mark.parametrize("game_string", [KUHN, LEDUC, GOOFSPIEL_4])
def test_to_openspiel_policy_evaluates_like_the_arrays(game_string):
    game = load_reference_game(game_string)
    compiled = fusion_psro.compile_game(game)
    rng = np.random.default_rng(14)
    profile = fusion_psro.from_openspiel_policy(game, random_tabular_policy(game, rng))
    converted = fusion_psro.to_openspiel_policy(game, profile)
    expected = openspiel_exploitability.exploitability(game, converted)
    assert fusion_psro.evaluation.exploitability(compiled, profile) == pytest.approx(expected, abs=TOL)
    assert fusion_psro.exploitability(game, profile) == pytest.approx(expected, abs=TOL)
