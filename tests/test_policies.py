"""Policy arrays: helpers, and clear errors for every kind of bad policy or meta-strategy."""

from __future__ import annotations

import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as openspiel_policy

import fusion_psro
from fusion_psro.errors import InvalidMetaStrategyError, InvalidPlayerError, InvalidPolicyError, PolicyTypeError
from fusion_psro.policies import random_deterministic_policy, random_policy, uniform_policy
from fusion_psro.validation import validate_meta_strategy, validate_policy


def test_helpers_give_valid_policies(leduc):
    rng = np.random.default_rng(0)
    for player in (0, 1):
        for policy in (
            uniform_policy(leduc, player),
            random_policy(leduc, player, rng),
            random_policy(leduc, player, rng, concentration=0.01),
            random_deterministic_policy(leduc, player, rng),
        ):
            validate_policy(leduc, player, policy)
        pure = random_deterministic_policy(leduc, player, rng)
        assert set(np.unique(pure)) == {0.0, 1.0}


def _corrupt(leduc, how: str) -> np.ndarray:
    policy = uniform_policy(leduc, 0)
    row = 5
    legal = np.flatnonzero(leduc.players[0].legal_mask[row])
    illegal = np.flatnonzero(~leduc.players[0].legal_mask[row])
    if how == "nan":
        policy[row, legal[0]] = np.nan
    elif how == "negative":
        policy[row, legal[0]] = -0.5
        policy[row, legal[1]] += 0.5 + 1 / len(legal)
    elif how == "unnormalized":
        policy[row, legal[0]] += 0.1
    elif how == "illegal":
        assert illegal.size, "row 5 must have an illegal action for this test"
        policy[row] = 0.0
        policy[row, illegal[0]] = 1.0
    return policy


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("nan", "NaN or infinite"),
        ("negative", "negative probabilities"),
        ("unnormalized", "does not sum to 1"),
        ("illegal", "illegal actions"),
    ],
)
def test_bad_policy_arrays_name_the_information_state(leduc, how, message):
    policy = _corrupt(leduc, how)
    with pytest.raises(InvalidPolicyError, match=message) as info:
        validate_policy(leduc, 0, policy)
    assert repr(leduc.players[0].keys[5]) in str(info.value)
    # The same error surfaces through the array-level and the OpenSpiel-level APIs.
    with pytest.raises(InvalidPolicyError, match=message):
        fusion_psro.evaluation.exploitability(leduc, (policy, uniform_policy(leduc, 1)))
    game = pyspiel.load_game("leduc_poker")
    tabular = fusion_psro.to_openspiel_policy(game, (uniform_policy(leduc, 0), uniform_policy(leduc, 1)))
    rows = [tabular.state_lookup[key] for key in leduc.players[0].keys.tolist()]
    tabular.action_probability_array[rows] = policy
    with pytest.raises(InvalidPolicyError, match=message):
        fusion_psro.exploitability(game, tabular)


def test_wrong_shape(leduc):
    with pytest.raises(InvalidPolicyError, match=r"shape \(3, 3\); expected \(468, 3\)"):
        validate_policy(leduc, 0, np.full((3, 3), 1 / 3))
    with pytest.raises(InvalidPolicyError, match="not a numeric array"):
        validate_policy(leduc, 0, "uniform")
    with pytest.raises(InvalidPlayerError, match="player must be 0 or 1 in a two-player game, got 2"):
        validate_policy(leduc, 2, uniform_policy(leduc, 0))


def test_population_error_names_the_member(leduc):
    population = np.stack([uniform_policy(leduc, 0), _corrupt(leduc, "nan")])
    with pytest.raises(InvalidPolicyError, match="member 1"):
        validate_policy(leduc, 0, population)


def test_profile_must_be_a_pair(leduc):
    with pytest.raises(InvalidPolicyError, match="pair"):
        fusion_psro.evaluation.exploitability(leduc, [uniform_policy(leduc, 0)])


def test_populations_and_single_policies_are_told_apart(leduc):
    uniform = [uniform_policy(leduc, 0), uniform_policy(leduc, 1)]
    with pytest.raises(InvalidPolicyError, match="one entry per player"):
        fusion_psro.evaluation.evaluate_mixture(leduc, [uniform[0][None]], [[1.0]])
    with pytest.raises(InvalidPolicyError, match="use payoff_matrix for populations"):
        fusion_psro.evaluation.expected_payoff(leduc, uniform[0][None], uniform[1])


def test_meta_strategy_errors():
    validate_meta_strategy([0.25, 0.75], 2, player=0)
    for weights, message in [
        ([0.5, 0.5, 0.0], "expected \\(2,\\)"),
        ([1.5, -0.5], "non-negative"),
        ([np.nan, 1.0], "finite"),
        ([0.3, 0.3], "sums to 0.6"),
    ]:
        with pytest.raises(InvalidMetaStrategyError, match=message):
            validate_meta_strategy(weights, 2, player=1)


def test_mixture_api_errors():
    game = pyspiel.load_game("kuhn_poker")
    uniform = openspiel_policy.TabularPolicy(game)
    with pytest.raises(InvalidMetaStrategyError, match="sums to"):
        fusion_psro.mixture_exploitability(game, [[uniform], [uniform]], [[0.5], [1.0]])
    with pytest.raises(InvalidPolicyError, match="empty"):
        fusion_psro.mixture_exploitability(game, [[], [uniform]], [[], [1.0]])
    with pytest.raises(PolicyTypeError, match="one list of policies per player"):
        fusion_psro.mixture_exploitability(game, [[uniform]], [[1.0]])


def test_policy_of_wrong_type_or_game():
    kuhn = pyspiel.load_game("kuhn_poker")
    with pytest.raises(PolicyTypeError, match="expected an OpenSpiel policy"):
        fusion_psro.exploitability(kuhn, "uniform")
    leduc_policy = openspiel_policy.TabularPolicy(pyspiel.load_game("leduc_poker"))
    with pytest.raises(InvalidPolicyError, match=r"TabularPolicy of leduc_poker\(\) \(table 936 x 3\), "
                                                 r"not of kuhn_poker\(\) \(2 actions\)"):
        fusion_psro.exploitability(kuhn, leduc_policy)
    one_player = openspiel_policy.TabularPolicy(kuhn, players=[0])
    with pytest.raises(InvalidPolicyError, match=r"no entry for 6 of player 1's information states .*"
                                                 r"covers players \[0\] only"):
        fusion_psro.exploitability(kuhn, one_player)
    isomorphic = openspiel_policy.TabularPolicy(pyspiel.load_game("leduc_poker(suit_isomorphism=True)"))
    with pytest.raises(InvalidPolicyError, match=r"built for leduc_poker\(suit_isomorphism=True\); build it .* "
                                                 r"on leduc_poker\(\)"):
        fusion_psro.exploitability("leduc_poker", isomorphic)


def test_tabular_policy_whose_table_does_not_fit_its_lookup():
    leduc = pyspiel.load_game("leduc_poker")
    truncated = openspiel_policy.TabularPolicy(leduc)
    truncated.action_probability_array = truncated.action_probability_array[:10]
    with pytest.raises(InvalidPolicyError, match=r"TabularPolicy of leduc_poker\(\) whose table is 10 x 3, not 936 x 3"):
        fusion_psro.exploitability(leduc, truncated)


def test_openspiel_policies_given_to_the_array_engine_are_pointed_to_the_top_level_api(leduc):
    tabular = openspiel_policy.TabularPolicy(pyspiel.load_game("leduc_poker"))
    with pytest.raises(PolicyTypeError, match="got a TabularPolicy; OpenSpiel policy objects go to fusion_psro.exploitability"):
        fusion_psro.evaluation.exploitability(leduc, tabular)
    with pytest.raises(PolicyTypeError, match="policy for player 0 is an OpenSpiel TabularPolicy; .*from_openspiel_policy"):
        fusion_psro.evaluation.exploitability(leduc, (tabular, tabular))


@pytest.mark.parametrize("player", [2, -1])
def test_best_response_names_the_player_given(leduc, player):
    for respond in (
        lambda: fusion_psro.evaluation.best_response(leduc, player, uniform_policy(leduc, 0)),
        lambda: fusion_psro.evaluation.mixture_best_response(leduc, player, uniform_policy(leduc, 0)[None], [1.0]),
    ):
        with pytest.raises(InvalidPlayerError, match=f"player must be 0 or 1 in a two-player game, got {player}$"):
            respond()


def test_remembered_row_maps_do_not_keep_policies_alive():
    import gc
    import weakref

    class Lookup(dict):
        """A dict that can be weakly referenced, to see when a lookup table is freed."""

    game = pyspiel.load_game("kuhn_poker")
    policies = [openspiel_policy.TabularPolicy(game) for _ in range(3)]
    for member in policies:
        member.state_lookup = Lookup(member.state_lookup)
        fusion_psro.exploitability(game, member)
    refs = [weakref.ref(p) for p in policies[2:]] + [weakref.ref(p.state_lookup) for p in policies[2:]]
    del policies[2:], member
    gc.collect()
    assert all(r() is None for r in refs)
    # A table seen before still gives the same numbers.
    assert fusion_psro.exploitability(game, policies[0]) == pytest.approx(0.4583333333333333, abs=1e-12)
