"""Diversity terms of DPP-, BD&RD- and PSD-PSRO: formulas and the direction each pushes a best response."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fusion_psro.errors import ConfigError, OracleError, UnknownComponentError
from fusion_psro.games import compile_game
from fusion_psro.games.mixture import MixtureGame
from fusion_psro.oracles.base import BestResponseRequest
from fusion_psro.evaluation.behaviour import mixture_behaviour
from fusion_psro.oracles.diversity import (
    DiversityMeasure,
    DiversityTerm,
    convex_hull_distance,
    dpp_expected_cardinality,
    hull_behaviour_policies,
    hull_coefficients,
    hull_weights,
    js_divergence,
    kl_divergence,
)
from fusion_psro.oracles.dqn import DQNConfig, DQNOracle
from fusion_psro.oracles.point_gradient import GradientConfig, GradientMetrics, GradientOracle
from fusion_psro.policies import random_policy, uniform_policy
from fusion_psro.registry import DIVERSITY_TERMS, register_diversity_term


def test_dpp_cardinality_closed_forms():
    # Orthogonal rows: L = I, Tr(I - (2I)^-1) = n / 2. Identical rows: L = all-ones J,
    # eigenvalues n and 0, so the trace is n / (n + 1).
    for n in (1, 2, 4):
        assert float(dpp_expected_cardinality(torch.eye(n, dtype=torch.float64))) == pytest.approx(n / 2)
        same = torch.ones(n, 3, dtype=torch.float64)
        assert float(dpp_expected_cardinality(same)) == pytest.approx(n / (n + 1))


def test_dpp_rewards_a_new_payoff_direction_over_a_duplicate():
    population = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    duplicate = torch.cat([population, population[:1]])
    novel = torch.cat([population, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)])
    assert dpp_expected_cardinality(novel) > dpp_expected_cardinality(duplicate) + 0.3


def test_convex_hull_distance_inside_is_zero_outside_is_the_squared_distance():
    rows = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    inside = torch.tensor([0.2, 0.3], dtype=torch.float64)
    outside = torch.tensor([1.0, 1.0], dtype=torch.float64)  # nearest hull point (0.5, 0.5)
    assert float(convex_hull_distance(inside, rows)) == pytest.approx(0.0, abs=1e-9)
    assert float(convex_hull_distance(outside, rows)) == pytest.approx(0.5, abs=1e-6)
    beta = hull_coefficients(rows, np.array([1.0, 1.0]))
    assert beta.sum() == pytest.approx(1.0) and (beta >= 0).all()
    np.testing.assert_allclose(beta @ rows, [0.5, 0.5], atol=1e-6)
    # The gradient points away from the hull (ascending it moves further out).
    outside.requires_grad_(True)
    convex_hull_distance(outside, rows).backward()
    np.testing.assert_allclose(outside.grad.numpy(), [1.0, 1.0], atol=1e-5)


def test_kl_and_js_divergences():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    assert float(kl_divergence(p, q)) == pytest.approx(math.log(2))
    assert float(kl_divergence(p, p)) == 0.0
    assert float(js_divergence(p, p)) == pytest.approx(0.0, abs=1e-15)
    disjoint = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert float(js_divergence(p, disjoint)) == pytest.approx(math.log(2))


def test_hull_weights_are_vertices_then_convex_draws():
    weights = hull_weights(3, 5, seed=1)
    assert weights.shape == (8, 3)
    np.testing.assert_array_equal(weights[:3], np.eye(3))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert (weights >= 0).all()
    np.testing.assert_array_equal(hull_weights(3, 5, seed=1), weights)
    assert hull_weights(1, 5, seed=1).shape == (1, 1)


def test_diversity_term_rejects_negative_weight_and_unknown_kind():
    base = dict(own_population=np.zeros((1, 2)), own_meta_strategy=np.ones(1), own_payoffs=np.zeros((1, 1)),
                opponent_population=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        DiversityTerm(kind="dpp", weight=-0.1, **base)
    with pytest.raises(UnknownComponentError, match="accepted: dpp, bdrd, psd"):
        DiversityTerm(kind="entropy", weight=0.1, **base)



@pytest.mark.parametrize("kind, per_decision, whole_policy", [("dpp", False, True), ("bdrd", True, True),
                                                              ("psd", True, False)])
def test_built_in_terms_are_registered_measures_with_hooks_for_both_game_kinds(kind, per_decision, whole_policy):
    measure = DIVERSITY_TERMS.get(kind)
    assert isinstance(measure, DiversityMeasure)
    assert measure.supports("tabular") and measure.supports("mixture") and not measure.supports("chess")
    assert measure.default_weight == 0.1
    compiled, _, term = _kuhn_term(kind, 1.0)
    assert term.measure is measure
    diversity = measure.for_tabular(compiled, 0, term)
    assert (diversity.bonus_table is not None, diversity.score is not None) == (per_decision, whole_policy)
    policy = uniform_policy(compiled, 0)
    if per_decision:
        table = diversity.bonus_table(policy)
        assert table.shape == policy.shape and np.isfinite(table).all()
    if whole_policy:
        assert np.isfinite(diversity.score(policy, policy))


def test_a_registered_term_reaches_the_oracles_only_through_its_hooks():
    """A new term is one class: the gradient oracle ascends it, the DQN refuses it (no tabular form)."""

    class NearHumpZero(DiversityMeasure):
        game_kinds = ("mixture",)

        def for_points(self, game, term):
            return lambda activation: activation[0]

    register_diversity_term("near-hump-0", NearHumpZero())
    try:
        game = MixtureGame()
        opponents = np.zeros((1, 2))
        term = DiversityTerm(kind="near-hump-0", weight=5.0, own_population=opponents, own_meta_strategy=np.ones(1),
                             own_payoffs=np.zeros((1, 1)), opponent_population=opponents)
        oracle = GradientOracle(game, GradientConfig(steps=300))
        result = oracle.best_response(BestResponseRequest(player=0, opponent_population=opponents,
                                                          opponent_meta_strategy=np.ones(1), seed=0, diversity=term))
        assert np.linalg.norm(result.policy - game.centres[0]) < 0.5
        assert result.metrics.diversity == pytest.approx(game.activations(result.policy[None])[0, 0])
        kuhn = compile_game("kuhn_poker")
        with pytest.raises(OracleError, match="cannot optimize the 'near-hump-0' diversity term on tabular games"):
            DQNOracle(kuhn).best_response(BestResponseRequest(
                player=0, opponent_population=uniform_policy(kuhn, 1)[None], opponent_meta_strategy=np.ones(1),
                diversity=term))
    finally:
        DIVERSITY_TERMS.unregister("near-hump-0")

def _mixture_case():
    """Opponent: every hump, uniformly. Own population: one local maximum of the payoff.

    The member is where a long plain ascent from hump 0 ends, so without diversity a best
    response started on it has nowhere to go.
    """
    game = MixtureGame()
    opponents = game.centres.copy()
    weights = np.full(len(opponents), 1.0 / len(opponents))
    settle = GradientOracle(game, GradientConfig(steps=2000, lr=0.01))
    local_max = settle.best_response(BestResponseRequest(
        player=0, opponent_population=opponents, opponent_meta_strategy=weights,
        initial_parameters={"point": torch.tensor(game.centres[0])})).policy
    own = local_max[None]
    own_payoffs = game.payoff_matrix(own, opponents)
    return game, opponents, own, own_payoffs


@pytest.mark.parametrize("kind", ["dpp", "bdrd", "psd"])
def test_each_diversity_term_pushes_the_gradient_best_response_away_from_the_population(kind):
    """Starting on the population's only member, diversity moves the response further away.

    The start is a local maximum of the payoff, so without diversity the ascent stays
    there; with the term it leaves, and the term's value at the end is larger.
    """
    game, opponents, own, own_payoffs = _mixture_case()
    oracle = GradientOracle(game, GradientConfig(steps=100, lr=0.1))
    weights = np.full(len(opponents), 1.0 / len(opponents))
    start = {"point": torch.tensor(own[0])}
    ends, diversities = {}, {}
    for weight in (0.0, 2.0):
        term = DiversityTerm(kind=kind, weight=weight, own_population=own, own_meta_strategy=np.ones(1),
                             own_payoffs=own_payoffs, opponent_population=opponents, seed=0)
        result = oracle.best_response(BestResponseRequest(player=0, opponent_population=opponents,
                                                          opponent_meta_strategy=weights,
                                                          initial_parameters=start, diversity=term))
        ends[weight] = result.policy
        probe = DiversityTerm(kind=kind, weight=1.0, own_population=own, own_meta_strategy=np.ones(1),
                              own_payoffs=own_payoffs, opponent_population=opponents, seed=0)
        with torch.no_grad():
            diversity = probe.measure.for_points(game, probe)
            diversities[weight] = float(diversity(game.torch_activations(torch.tensor(result.policy))))
    moved = {w: float(np.linalg.norm(ends[w] - own[0])) for w in ends}
    assert moved[0.0] < 0.05
    assert moved[2.0] > moved[0.0] + 0.5
    assert diversities[2.0] > diversities[0.0]


def test_zero_weight_is_plain_psro():
    game, opponents, own, own_payoffs = _mixture_case()
    oracle = GradientOracle(game)
    weights = np.full(len(opponents), 1.0 / len(opponents))
    request = dict(player=1, opponent_population=opponents, opponent_meta_strategy=weights, seed=3)
    plain = oracle.best_response(BestResponseRequest(**request))
    term = DiversityTerm(kind="psd", weight=0.0, own_population=own, own_meta_strategy=np.ones(1),
                         own_payoffs=own_payoffs, opponent_population=opponents)
    with_zero = oracle.best_response(BestResponseRequest(**request, diversity=term))
    np.testing.assert_array_equal(plain.policy, with_zero.policy)


def test_gradient_oracle_records_its_start_and_reaches_a_local_maximum():
    game = MixtureGame()
    oracle = GradientOracle(game, GradientConfig(steps=300))
    opponents = np.array([[0.0, 0.0]])
    result = oracle.best_response(BestResponseRequest(player=0, opponent_population=opponents,
                                                      opponent_meta_strategy=np.ones(1), seed=5))
    start = oracle.scratch_parameters(0, "normal", 5)["point"].numpy()
    np.testing.assert_allclose(result.metrics.start, start)
    assert result.metrics.value == pytest.approx(game.payoff(result.policy, opponents[0]))
    assert result.metrics.to_json() == {"player": 0, "value": result.metrics.value, "steps": 300,
                                        "start": start.tolist(), "point": result.policy.tolist()}
    assert GradientMetrics.from_json(result.metrics.to_json()) == result.metrics
    # Against the origin the objective is 0.5 * sum_k p_k: a local maximum has zero gradient.
    c, _ = game.response_coefficients(opponents, np.ones(1))
    gradient = game._objective(c)(result.policy)[1]
    assert np.linalg.norm(gradient) < 1e-3
    with pytest.raises(OracleError, match="accepted: normal, inherit, fusion"):
        oracle.scratch_parameters(0, "kaiming", 0)
    with pytest.raises(OracleError, match="initial_parameters"):
        oracle.best_response(BestResponseRequest(player=0, opponent_population=opponents, opponent_meta_strategy=np.ones(1),
                                                 initial_parameters={"point": torch.zeros(3)}))
    with pytest.raises(ConfigError, match="steps"):
        GradientConfig(steps=0)


def test_hull_behaviour_of_a_mixture_is_the_realization_weighted_average():
    compiled = compile_game("kuhn_poker")
    rng = np.random.default_rng(0)
    population = np.stack([random_policy(compiled, 0, rng) for _ in range(3)])
    weights = np.array([[0.2, 0.3, 0.5]])
    behaviour = hull_behaviour_policies(compiled, 0, population, weights)[0]
    info = compiled.players[0]
    from fusion_psro.evaluation.sequence_form import realization_plans

    plans = realization_plans(compiled, 0, population)
    reach = plans[:, info.parent_sequence]  # [K, I]
    expected = np.einsum("k,ki,kia->ia", weights[0], reach, population) / (weights[0] @ reach)[:, None]
    uniform = info.legal_mask / info.legal_mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(behaviour, 0.99 * expected + 0.01 * uniform, atol=1e-12)
    # Unsmoothed, one mixture at a time: the behaviour strategy itself.
    np.testing.assert_allclose(mixture_behaviour(compiled, 0, population, weights[0]), expected, atol=1e-12)


def test_mixture_behaviour_plays_like_the_mixture_against_any_opponent():
    from fusion_psro.evaluation import payoff_matrix

    compiled = compile_game("leduc_poker")
    rng = np.random.default_rng(4)
    population = np.stack([random_policy(compiled, 1, rng) for _ in range(3)])
    weights = np.array([0.5, 0.0, 0.5])  # a member with no weight: its states may go unreached
    behaviour = mixture_behaviour(compiled, 1, population, weights)
    assert behaviour.shape == population.shape[1:]
    opponents = np.stack([random_policy(compiled, 0, rng) for _ in range(4)])
    np.testing.assert_allclose(payoff_matrix(compiled, opponents, behaviour[None])[:, 0],
                               payoff_matrix(compiled, opponents, population) @ weights, atol=1e-12)
    with pytest.raises(ValueError, match="mixture weights"):
        mixture_behaviour(compiled, 1, population, np.array([0.5, 0.5]))


def test_psd_bonus_is_near_zero_for_a_population_member_and_positive_for_a_new_policy():
    compiled = compile_game("kuhn_poker")
    oracle = DQNOracle(compiled, DQNConfig(hidden_sizes=(16,)))
    own_greedy = oracle.greedy_policy(0, oracle.scratch_parameters(0, "normal", 1))
    reach = realization_plans_of(compiled, own_greedy)
    info = compiled.players[0]

    def expected_bonus(population):
        size = len(population)
        term = DiversityTerm(kind="psd", weight=1.0, own_population=population, own_meta_strategy=np.full(size, 1 / size),
                             own_payoffs=np.zeros((size, 1)), opponent_population=uniform_policy(compiled, 1)[None],
                             seed=0, hull_samples=8)
        diversity = term.measure.for_tabular(compiled, 0, term)
        assert diversity.score is None  # PSD is a per-decision term only
        table = diversity.bonus_table(own_greedy)
        return float((reach[:, None] * own_greedy * table).sum())

    member = expected_bonus(np.stack([uniform_policy(compiled, 0), own_greedy]))
    stranger = expected_bonus(np.stack([1.0 - own_greedy]))  # the other action everywhere (Kuhn: 2 actions)
    assert member == pytest.approx(0.0, abs=0.02 * info.num_infostates)  # only the 1% smoothing
    assert stranger > 10 * max(member, 1e-3)


def realization_plans_of(compiled, policy):
    from fusion_psro.evaluation.sequence_form import realization_plans

    return realization_plans(compiled, 0, policy)[compiled.players[0].parent_sequence]


def _kuhn_term(kind, weight, oracle_seed=0):
    compiled = compile_game("kuhn_poker")
    rng = np.random.default_rng(oracle_seed)
    own = np.stack([uniform_policy(compiled, 0), random_policy(compiled, 0, rng)])
    opponents = np.stack([uniform_policy(compiled, 1), random_policy(compiled, 1, rng)])
    from fusion_psro.evaluation import payoff_matrix

    own_payoffs = payoff_matrix(compiled, own, opponents)
    term = DiversityTerm(kind=kind, weight=weight, own_population=own, own_meta_strategy=np.array([0.5, 0.5]),
                         own_payoffs=own_payoffs, opponent_population=opponents, seed=1)
    return compiled, opponents, term


@pytest.mark.parametrize("kind", ["dpp", "bdrd"])
def test_dqn_returns_the_training_snapshot_with_the_best_diversified_objective(kind):
    small = DQNConfig(hidden_sizes=(16,), episodes=600, num_envs=32, batch_size=32, min_replay_before_learning=32,
                      diversity_candidates=6)
    compiled, opponents, term = _kuhn_term(kind, 5.0)
    oracle = DQNOracle(compiled, small)
    request = BestResponseRequest(player=0, opponent_population=opponents, opponent_meta_strategy=np.array([0.3, 0.7]),
                                  seed=2, diversity=term)
    result = oracle.best_response(request)
    metrics = result.metrics
    assert metrics.diversity_candidates == 6
    # The numbers it reports are the exact value and diversity of the policy it returns.
    from fusion_psro.evaluation import payoff_matrix

    payoffs = payoff_matrix(compiled, result.policy[None], opponents)[0]
    assert metrics.selected_value == pytest.approx(payoffs @ [0.3, 0.7], abs=1e-9)
    if kind == "dpp":
        expected = float(dpp_expected_cardinality(torch.as_tensor(np.vstack([term.own_payoffs, payoffs]))))
        assert metrics.diversity == pytest.approx(expected, abs=1e-9)
    np.testing.assert_array_equal(oracle.greedy_policy(0, result.parameters), result.policy)
    # Weight 0: plain PSRO, the final network, bit for bit.
    plain = oracle.best_response(BestResponseRequest(player=0, opponent_population=opponents,
                                                     opponent_meta_strategy=np.array([0.3, 0.7]), seed=2))
    zero = oracle.best_response(BestResponseRequest(player=0, opponent_population=opponents,
                                                    opponent_meta_strategy=np.array([0.3, 0.7]), seed=2,
                                                    diversity=_kuhn_term(kind, 0.0)[2]))
    np.testing.assert_array_equal(plain.policy, zero.policy)
    assert "diversity_candidate" not in zero.metrics.to_json()
    selection = ["diversity_candidate", "diversity_candidates", "selected_value", "diversity"]
    bonus = ["diversity_bonus_mean"] if kind == "bdrd" else []
    assert list(result.metrics.to_json())[-5:] == ["device", *bonus, *selection][-5:]
    assert list(zero.metrics.to_json())[-1] == "device"


def test_dqn_diversity_variants_run_in_the_loop_on_an_openspiel_game():
    from fusion_psro.psro import PSRO, PSROConfig

    small = {"hidden_sizes": [16], "num_envs": 32, "batch_size": 32, "min_replay_before_learning": 32}
    for variant in ("dpp", "bdrd", "psd"):
        rows = PSRO(PSROConfig(game="kuhn_poker", oracle="dqn", variant=variant, init="fusion", iterations=2,
                               episodes=200, seed=0, oracle_options=small)).run()
        assert rows[-1].inits == ["fusion", "fusion"]
        key = "diversity_bonus_mean" if variant in ("psd", "bdrd") else "diversity"
        assert all(key in entry for entry in rows[-1].oracle)
