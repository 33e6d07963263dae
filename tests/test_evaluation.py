"""The array-level engine (:mod:`fusion_psro.evaluation`) against OpenSpiel's tree walks."""

from __future__ import annotations

import numpy as np
import pyspiel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from open_spiel.python import policy as openspiel_policy
from open_spiel.python.algorithms import best_response as openspiel_best_response
from open_spiel.python.algorithms import exploitability as openspiel_exploitability
from open_spiel.python.algorithms import expected_game_score, policy_aggregator

import fusion_psro
from conftest import GOOFSPIEL_4, KUHN, LEDUC, TOL, load_reference_game, pyspiel_policy, random_tabular_policy
from fusion_psro import evaluation
from fusion_psro.policies import random_deterministic_policy, random_policy, uniform_policy

EVAL_GAMES = [KUHN, LEDUC, GOOFSPIEL_4]


def _setup(game_string):
    game = load_reference_game(game_string)
    return game, fusion_psro.compile_game(game)


def _population(compiled, player, rng, size):
    """``size`` policies of ``player``: Dirichlet draws, one pure policy and the uniform one."""
    members = [random_policy(compiled, player, rng) for _ in range(size - 2)]
    members += [random_deterministic_policy(compiled, player, rng), uniform_policy(compiled, player)]
    return np.stack(members)


def _as_openspiel(game, compiled, player, policy):
    """An OpenSpiel TabularPolicy playing ``policy`` as ``player`` (the other player uniform)."""
    other = uniform_policy(compiled, 1 - player)
    return fusion_psro.to_openspiel_policy(game, (policy, other) if player == 0 else (other, policy))


def _openspiel_value(game, policy0, policy1):
    return expected_game_score.policy_value(game.new_initial_state(), [policy0, policy1])


def _openspiel_br_value(game, player, policy):
    return openspiel_best_response.BestResponsePolicy(game, player, policy).value(game.new_initial_state())


# ---------------------------------------------------------------------------------------
# Payoffs


@pytest.mark.parametrize("game_string", EVAL_GAMES)
def test_payoff_matrix_matches_policy_value(game_string):
    game, compiled = _setup(game_string)
    rng = np.random.default_rng(0)
    pop0, pop1 = _population(compiled, 0, rng, 4), _population(compiled, 1, rng, 3)
    matrix = evaluation.payoff_matrix(compiled, pop0, pop1)
    assert matrix.shape == (4, 3)
    tab0 = [_as_openspiel(game, compiled, 0, member) for member in pop0]
    tab1 = [_as_openspiel(game, compiled, 1, member) for member in pop1]
    for k in range(4):
        for j in range(3):
            values = _openspiel_value(game, tab0[k], tab1[j])
            assert matrix[k, j] == pytest.approx(values[0], abs=TOL)
            assert -matrix[k, j] == pytest.approx(values[1], abs=TOL)
            np.testing.assert_allclose(evaluation.expected_payoff(compiled, pop0[k], pop1[j]), values, rtol=0, atol=TOL)
    # A single policy per side is a 1 x 1 matrix.
    single = evaluation.payoff_matrix(compiled, pop0[0], pop1[0])
    assert single.shape == (1, 1) and single[0, 0] == pytest.approx(matrix[0, 0], abs=1e-12)


@pytest.mark.parametrize("game_string", EVAL_GAMES)
def test_expected_payoff_of_openspiel_policies(game_string):
    game, compiled = _setup(game_string)
    rng = np.random.default_rng(1)
    tabular = random_tabular_policy(game, rng)
    profile = fusion_psro.from_openspiel_policy(game, tabular)
    values = _openspiel_value(game, tabular, tabular)
    np.testing.assert_allclose(evaluation.expected_payoff(compiled, *profile), values, rtol=0, atol=TOL)
    result = evaluation.evaluate_profile(compiled, profile)
    np.testing.assert_allclose(result.values, values, rtol=0, atol=TOL)


# ---------------------------------------------------------------------------------------
# Best responses


@pytest.mark.parametrize("game_string", EVAL_GAMES)
@pytest.mark.parametrize("player", [0, 1])
@pytest.mark.parametrize("kind", ["random", "deterministic"])
def test_best_response_matches_openspiel(game_string, player, kind):
    game, compiled = _setup(game_string)
    rng = np.random.default_rng(2 + player)
    opponent = (random_policy if kind == "random" else random_deterministic_policy)(compiled, 1 - player, rng)
    expected = _openspiel_br_value(game, player, _as_openspiel(game, compiled, 1 - player, opponent))

    br = evaluation.best_response(compiled, player, opponent)
    assert br.value == pytest.approx(expected, abs=TOL)
    # The returned policy is pure, legal, and achieves the value.
    info = compiled.players[player]
    assert br.policy.shape == (info.num_infostates, info.num_actions)
    assert set(np.unique(br.policy)) <= {0.0, 1.0}
    np.testing.assert_array_equal(br.policy.sum(axis=1), 1.0)
    assert not (br.policy * ~info.legal_mask).any()
    profile = (br.policy, opponent) if player == 0 else (opponent, br.policy)
    assert evaluation.expected_payoff(compiled, *profile)[player] == pytest.approx(expected, abs=TOL)
    # OpenSpiel's own evaluation of our BR policy agrees as well.
    values = _openspiel_value(game, *(_as_openspiel(game, compiled, p, profile[p]) for p in range(2)))
    assert values[player] == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("game_string", EVAL_GAMES)
@pytest.mark.parametrize("player", [0, 1])
def test_mixture_best_response_matches_br_to_aggregate(game_string, player):
    game, compiled = _setup(game_string)
    rng = np.random.default_rng(4 + player)
    population = _population(compiled, 1 - player, rng, 5)
    weights = rng.dirichlet(np.ones(5))
    weights[2] = 0.0
    weights /= weights.sum()

    # OpenSpiel: aggregate the opponent's population, then best-respond to the aggregate.
    members = [_as_openspiel(game, compiled, 1 - player, member) for member in population]
    placeholder = [openspiel_policy.UniformRandomPolicy(game)]
    populations = [placeholder, members] if player == 0 else [members, placeholder]
    meta = [[1.0], weights.tolist()] if player == 0 else [weights.tolist(), [1.0]]
    aggregated = policy_aggregator.PolicyAggregator(game).aggregate([0, 1], populations, meta)
    expected = _openspiel_br_value(game, player, aggregated)

    br = evaluation.mixture_best_response(compiled, player, population, weights)
    assert br.value == pytest.approx(expected, abs=TOL)
    # Payoffs are linear in the opponent's mixture: the BR earns the weighted member payoffs.
    earned = sum(
        w * evaluation.expected_payoff(compiled, *((br.policy, m) if player == 0 else (m, br.policy)))[player]
        for w, m in zip(weights, population)
    )
    assert earned == pytest.approx(expected, abs=TOL)
    # The mixture with a single member is the plain best response.
    plain = evaluation.best_response(compiled, player, population[0])
    single = evaluation.mixture_best_response(compiled, player, population[:1], [1.0])
    assert single.value == pytest.approx(plain.value, abs=1e-12)
    np.testing.assert_array_equal(single.policy, plain.policy)


@pytest.mark.parametrize("game_string", EVAL_GAMES)
@pytest.mark.parametrize("player", [0, 1])
def test_batched_best_response_equals_single_calls(game_string, player):
    _, compiled = _setup(game_string)
    rng = np.random.default_rng(6 + player)
    stack = _population(compiled, 1 - player, rng, 6)
    batched = evaluation.best_response(compiled, player, stack)
    assert batched.policy.shape == (6, *stack.shape[1:]) and np.shape(batched.value) == (6,)
    for b in range(6):
        single = evaluation.best_response(compiled, player, stack[b])
        assert batched.value[b] == pytest.approx(single.value, abs=1e-12)
        np.testing.assert_array_equal(batched.policy[b], single.policy)


# ---------------------------------------------------------------------------------------
# Closed-form and solver checks on Kuhn poker


def _kuhn_nash_alpha_zero(compiled):
    """Kuhn poker's equilibrium with alpha = 0 (actions: 0 = pass/fold, 1 = bet/call).

    Player 0 never bets first; after pass-bet folds the Jack, calls with the Queen with
    probability 1/3, calls with the King. Player 1 bets the King and bluffs the Jack with
    probability 1/3 after a pass; facing a bet folds the Jack, calls with the Queen with
    probability 1/3, calls with the King. Cards: 0 = J, 1 = Q, 2 = K.
    """
    bet = {  # probability of action 1 at each information-state key
        "0": 0.0, "1": 0.0, "2": 0.0, "0pb": 0.0, "1pb": 1 / 3, "2pb": 1.0,
        "0p": 1 / 3, "1p": 0.0, "2p": 1.0, "0b": 0.0, "1b": 1 / 3, "2b": 1.0,
    }
    profile = []
    for player in range(2):
        keys = compiled.players[player].keys.tolist()
        assert set(keys) <= set(bet), keys
        p = np.array([bet[k] for k in keys])
        profile.append(np.stack([1 - p, p], axis=1))
    return tuple(profile)


def test_kuhn_closed_form_nash_equilibrium():
    game, compiled = _setup(KUHN)
    profile = _kuhn_nash_alpha_zero(compiled)
    result = evaluation.evaluate_profile(compiled, profile)
    assert abs(result.exploitability) < 1e-12
    assert abs(result.nash_conv) < 1e-12
    assert result.values[0] == pytest.approx(-1 / 18, abs=1e-12)
    assert result.values[1] == pytest.approx(1 / 18, abs=1e-12)
    assert result.best_response_values == pytest.approx((-1 / 18, 1 / 18), abs=1e-12)
    tabular = fusion_psro.to_openspiel_policy(game, profile)
    assert abs(openspiel_exploitability.exploitability(game, tabular)) < 1e-12
    assert fusion_psro.exploitability(game, tabular) == pytest.approx(0.0, abs=1e-12)


def test_kuhn_cfr_plus_average_policy():
    game, compiled = _setup(KUHN)
    solver = pyspiel.CFRPlusSolver(game)
    for _ in range(2000):
        solver.evaluate_and_update_policy()
    cpp_average = solver.tabular_average_policy()
    average = openspiel_policy.pyspiel_policy_to_python_policy(game, cpp_average)
    expected = pyspiel.exploitability(game, cpp_average)
    ours = fusion_psro.exploitability(game, average)
    assert ours == pytest.approx(expected, abs=TOL)
    assert ours == pytest.approx(openspiel_exploitability.exploitability(game, average), abs=TOL)
    assert 0 <= ours < 1e-3
    profile = fusion_psro.from_openspiel_policy(game, average)
    assert evaluation.expected_payoff(compiled, *profile)[0] == pytest.approx(-1 / 18, abs=2e-3)


# ---------------------------------------------------------------------------------------
# Properties on random policies


@pytest.mark.parametrize("game_string", [KUHN, LEDUC])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), concentration=st.sampled_from([0.05, 0.5, 1.0, 10.0]))
def test_random_policy_properties(game_string, seed, concentration):
    game, compiled = _setup(game_string)
    tabular = random_tabular_policy(game, np.random.default_rng(seed), concentration=concentration)
    if game_string == KUHN:
        expected = openspiel_exploitability.exploitability(game, tabular)
    else:  # OpenSpiel's C++ (equal to its Python reference, see test_interop; 2x faster on Leduc)
        expected = pyspiel.exploitability(game, pyspiel_policy(tabular))
    ours = fusion_psro.exploitability(game, tabular)
    assert ours == pytest.approx(expected, abs=TOL)
    assert ours >= -1e-12
    assert abs(fusion_psro.nash_conv(game, tabular) - 2 * ours) <= 1e-12
    profile = fusion_psro.from_openspiel_policy(game, tabular)
    u0, u1 = evaluation.expected_payoff(compiled, *profile)
    assert abs(u0 + u1) <= 1e-12
    result = evaluation.evaluate_profile(compiled, profile)
    assert result.best_response_values[0] >= u0 - 1e-12 and result.best_response_values[1] >= u1 - 1e-12


def test_best_response_breaks_ties_by_value_against_the_uniform_opponent():
    """Where the opponent never goes, the response plays as it would against uniform play."""
    from fusion_psro.evaluation import best_response, realization_plans
    from fusion_psro.games import compile_game
    from fusion_psro.policies import random_deterministic_policy, uniform_policy

    compiled = compile_game("leduc_poker")
    opponent = random_deterministic_policy(compiled, 1, np.random.default_rng(3))
    response = best_response(compiled, 0, opponent)
    against_uniform = best_response(compiled, 0, uniform_policy(compiled, 1))
    # Opponent reach of each of player 0's information states.
    decision = np.flatnonzero(compiled.node_player == 0)
    reach = compiled.chance_reach[decision] * realization_plans(compiled, 1, opponent)[compiled.sequences[decision, 1]]
    infostate_reach = np.bincount(compiled.node_infostate[decision], weights=reach,
                                  minlength=compiled.players[0].num_infostates)
    unreached = np.flatnonzero(infostate_reach == 0)
    assert unreached.size > 50  # a pure opponent leaves much of the tree unvisited
    np.testing.assert_array_equal(response.policy[unreached], against_uniform.policy[unreached])
    # ...and the value is still the exact best-response value.
    value = fusion_psro.evaluation.expected_payoff(compiled, response.policy, opponent)[0]
    assert value == pytest.approx(response.value, abs=1e-12)


def test_action_values_add_up_to_the_value_and_price_one_state_deviations():
    """Two identities of exact action values, checked against realization-plan values.

    * ``sum over first states of reach(s) sum_a pi(a|s) Q(s, a)`` is the policy's value;
    * changing the policy at one state ``s`` only changes the value by
      ``own reach of s * reach(s) * sum_a (pi'(a|s) - pi(a|s)) Q(s, a)``.
    """
    from fusion_psro.evaluation import action_values
    from fusion_psro.evaluation.sequence_form import expected_values

    from fusion_psro.evaluation.sequence_form import realization_plans

    compiled = fusion_psro.compile_game(LEDUC)
    rng = np.random.default_rng(4)
    policy, opponent = random_policy(compiled, 0, rng), realization_plans(compiled, 1, random_policy(compiled, 1, rng))
    values = action_values(compiled, 0, policy, opponent)
    info = compiled.players[0]
    value = expected_values(compiled, realization_plans(compiled, 0, policy), opponent)[0]
    first = info.parent_sequence == info.empty_sequence
    assert (values.reach[first] * (policy[first] * values.q[first]).sum(axis=1)).sum() == pytest.approx(value, abs=1e-12)
    own_reach = realization_plans(compiled, 0, policy)[info.parent_sequence]
    for state in rng.choice(np.flatnonzero(values.reach > 0), size=10, replace=False):
        changed = policy.copy()
        changed[state] = random_policy(compiled, 0, rng)[state]
        new_value = expected_values(compiled, realization_plans(compiled, 0, changed), opponent)[0]
        predicted = own_reach[state] * values.reach[state] * ((changed[state] - policy[state]) * values.q[state]).sum()
        assert new_value - value == pytest.approx(predicted, abs=1e-12)
