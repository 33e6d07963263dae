"""The exact policy-gradient oracle: differentiable sequence form, training, settings, requests."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import KUHN, LEDUC

from fusion_psro.errors import ConfigError, OracleError
from fusion_psro.evaluation import mixture_best_response, mixture_plan
from fusion_psro.evaluation.sequence_form import expected_values, realization_plans
from fusion_psro.games import compile_game
from fusion_psro.oracles import BestResponseRequest, DiversityTerm
from fusion_psro.evaluation.behaviour import opponent_reach
from fusion_psro.oracles.pg import (
    DifferentiablePlan,
    PGConfig,
    PolicyGradientOracle,
    SequenceFormObjective,
    masked_softmax,
)
from fusion_psro.policies import random_deterministic_policy, random_policy, uniform_policy
from fusion_psro.psro.initialization import fuse_parameters
from fusion_psro.psro.spaces import TabularSpace
from fusion_psro.registry import ORACLES

CPU = torch.device("cpu")
#: A small network keeps each best response well under a second on one thread.
SMALL = PGConfig(hidden_sizes=(32,), learning_rate=1e-2, steps=200, device="cpu")
#: Measured to reach the exact best response on Leduc in 400 steps (both players, uniform
#: and mixed opponents, two seeds: largest gap 5e-5); default learning rate and entropy.
LEDUC_SMALL = PGConfig(hidden_sizes=(64, 64), steps=400, device="cpu")


def request(player, population, weights=None, seed=0, **kwargs):
    population = population[None] if population.ndim == 2 else population
    if weights is None:
        weights = np.full(population.shape[0], 1.0 / population.shape[0])
    return BestResponseRequest(player, population, np.asarray(weights, dtype=np.float64), seed=seed, **kwargs)


def mixed_opponent(compiled, player, rng, members=3):
    population = np.stack([random_policy(compiled, 1 - player, rng) for _ in range(members)])
    return population, rng.dirichlet(np.ones(members))


def network_logits(oracle, player, seed):
    network = oracle.network(player, oracle.scratch_parameters(player, "normal", seed))
    with torch.no_grad():
        return network(torch.from_numpy(oracle.compiled.players[player].tensors))


# ---------------------------------------------------------------- differentiable sequence form


@pytest.mark.parametrize("game", [KUHN, LEDUC])
def test_differentiable_plan_equals_realization_plans(game):
    compiled = compile_game(game)
    rng = np.random.default_rng(0)
    oracle = PolicyGradientOracle(compiled, SMALL)
    for player in (0, 1):
        info = compiled.players[player]
        plans = DifferentiablePlan(info, CPU)
        legal = torch.from_numpy(info.legal_mask)
        softmax = masked_softmax(network_logits(oracle, player, seed=3), legal).numpy()
        for policy in (random_policy(compiled, player, rng), random_deterministic_policy(compiled, player, rng), softmax):
            plan = plans.plan(torch.from_numpy(policy)).numpy()
            np.testing.assert_allclose(plan, realization_plans(compiled, player, policy), rtol=0, atol=1e-9)
        # A float32 policy gives the same plan up to float32 rounding, once cast.
        plan32 = plans.plan(torch.from_numpy(softmax.astype(np.float32))).double().numpy()
        np.testing.assert_allclose(plan32, realization_plans(compiled, player, softmax), rtol=0, atol=1e-6)


@pytest.mark.parametrize("game", [KUHN, LEDUC])
def test_training_value_equals_engine_expected_values(game):
    compiled = compile_game(game)
    rng = np.random.default_rng(1)
    oracle = PolicyGradientOracle(compiled, SMALL)
    for player in (0, 1):
        population, weights = mixed_opponent(compiled, player, rng)
        opponent_plan = mixture_plan(compiled, 1 - player, population, weights)
        objective = SequenceFormObjective(compiled, player, opponent_plan, CPU)
        logits = network_logits(oracle, player, seed=4)
        regularized, value = objective(logits)
        assert float(regularized) == float(value)
        policy = masked_softmax(logits, objective.legal).numpy()
        plans = [realization_plans(compiled, player, policy), opponent_plan]
        expected = expected_values(compiled, *(plans if player == 0 else plans[::-1]))[player]
        assert abs(float(value) - expected) < 1e-12


def test_opponent_reach_times_own_reach_is_visit_probability(kuhn):
    # Kuhn, player 0 against the uniform opponent: each card (1/3) and, at the second
    # decision (after check, bet), the opponent's bet (1/2).
    reach = opponent_reach(kuhn, 0, realization_plans(kuhn, 1, uniform_policy(kuhn, 1)))
    levels = kuhn.players[0].level
    np.testing.assert_allclose(reach[levels == 0], 1 / 3)
    np.testing.assert_allclose(reach[levels == 1], 1 / 6)


def test_value_gradient_matches_finite_differences(kuhn):
    rng = np.random.default_rng(2)
    for player in (0, 1):
        population, weights = mixed_opponent(kuhn, player, rng)
        objective = SequenceFormObjective(kuhn, player, mixture_plan(kuhn, 1 - player, population, weights), CPU)
        for entropy_weight in (0.0, 0.7):
            logits = torch.from_numpy(rng.normal(size=kuhn.players[player].legal_mask.shape))
            logits.requires_grad_(True)
            objective(logits, entropy_weight)[0].backward()
            numeric = np.zeros(logits.shape)
            step = 1e-6
            for index in np.ndindex(*logits.shape):
                shifted = logits.detach().clone()
                shifted[index] += step
                up = float(objective(shifted, entropy_weight)[0])
                shifted[index] -= 2 * step
                down = float(objective(shifted, entropy_weight)[0])
                numeric[index] = (up - down) / (2 * step)
            np.testing.assert_allclose(logits.grad.numpy(), numeric, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- training


def gap_of(compiled, player, population, weights, policy):
    opponent_plan = mixture_plan(compiled, 1 - player, population, weights)
    plans = [realization_plans(compiled, player, policy), opponent_plan]
    value = expected_values(compiled, *(plans if player == 0 else plans[::-1]))[player]
    return mixture_best_response(compiled, player, population, weights).value - value, value


def test_reaches_best_response_on_kuhn(kuhn):
    rng = np.random.default_rng(3)
    oracle = PolicyGradientOracle(kuhn, SMALL)
    for player in (0, 1):
        for population, weights in [(uniform_policy(kuhn, 1 - player)[None], np.ones(1)), mixed_opponent(kuhn, player, rng)]:
            result = oracle.best_response(request(player, population, weights))
            gap, value = gap_of(kuhn, player, population, weights, result.policy)
            assert gap < 1e-3, (player, gap)
            assert result.metrics.value == pytest.approx(value, abs=1e-12)
            assert result.metrics.gap == pytest.approx(gap, abs=1e-12)
            assert result.metrics.gap >= -1e-12
            assert result.metrics.value >= result.metrics.initial_value


@pytest.mark.parametrize("player", [0, 1])
def test_reaches_best_response_on_leduc(leduc, player):
    oracle = PolicyGradientOracle(leduc, LEDUC_SMALL)
    rng = np.random.default_rng(4)
    cases = [(uniform_policy(leduc, 1 - player)[None], np.ones(1)), mixed_opponent(leduc, player, rng)]
    population, weights = cases[player]  # one case per player keeps the test short
    result = oracle.best_response(request(player, population, weights))
    gap, value = gap_of(leduc, player, population, weights, result.policy)
    assert gap < 1e-3, gap
    assert result.metrics.best_response_value - result.metrics.softmax_value < 1e-2
    assert result.episodes == LEDUC_SMALL.steps == result.metrics.steps


def test_same_seed_same_parameters_different_seeds_differ(kuhn):
    oracle = PolicyGradientOracle(kuhn, dataclasses.replace(SMALL, steps=20))
    population = uniform_policy(kuhn, 1)[None]
    first, again, other = (oracle.best_response(request(0, population, seed=s)) for s in (7, 7, 8))
    for name, tensor in first.parameters.items():
        assert torch.equal(tensor, again.parameters[name])
    np.testing.assert_array_equal(first.policy, again.policy)
    assert first.metrics.value == again.metrics.value
    assert any(not torch.equal(tensor, other.parameters[name]) for name, tensor in first.parameters.items())


def test_scratch_parameters_are_deterministic_and_leave_global_rng_alone(kuhn):
    oracle = PolicyGradientOracle(kuhn, SMALL)
    torch.manual_seed(0)
    expected_draw = torch.rand(1)
    torch.manual_seed(0)
    for scheme in PolicyGradientOracle.scratch_schemes:
        a, b = oracle.scratch_parameters(1, scheme, 5), oracle.scratch_parameters(1, scheme, 5)
        assert all(torch.equal(a[name], b[name]) for name in a)
    assert torch.equal(torch.rand(1), expected_draw)
    # The same tensor names as the DQN's network: fusion averages them unchanged.
    assert sorted(a) == ["layers.0.bias", "layers.0.weight", "layers.1.bias", "layers.1.weight"]


def test_greedy_and_stochastic_population_policies(kuhn):
    population, weights = mixed_opponent(kuhn, 1, np.random.default_rng(5))
    results = {}
    for kind in ("greedy", "stochastic"):
        oracle = PolicyGradientOracle(kuhn, dataclasses.replace(SMALL, steps=5, population_policy=kind))
        results[kind] = oracle.best_response(request(1, population, weights, seed=2))
    greedy, stochastic = results["greedy"], results["stochastic"]
    # The same training (the setting only decides what joins the population).
    for name, tensor in greedy.parameters.items():
        assert torch.equal(tensor, stochastic.parameters[name])
    legal = kuhn.players[1].legal_mask
    assert set(np.unique(greedy.policy)) <= {0.0, 1.0}
    np.testing.assert_array_equal(greedy.policy.sum(axis=1), 1.0)
    np.testing.assert_array_equal(greedy.policy.argmax(axis=1), np.where(legal, stochastic.policy, -1).argmax(axis=1))
    np.testing.assert_allclose(stochastic.policy.sum(axis=1), 1.0, atol=1e-15)
    assert (stochastic.policy[legal] > 0).all() and (stochastic.policy[~legal] == 0).all()
    assert stochastic.metrics.value == stochastic.metrics.softmax_value
    for result in results.values():
        assert result.metrics.value == pytest.approx(gap_of(kuhn, 1, population, weights, result.policy)[1], abs=1e-12)


def test_starting_parameters_are_respected(kuhn):
    oracle = PolicyGradientOracle(kuhn, dataclasses.replace(SMALL, steps=1, population_policy="stochastic"))
    population = uniform_policy(kuhn, 0)[None]
    starts = [oracle.scratch_parameters(1, "normal", seed) for seed in (10, 11)]
    results = [oracle.best_response(request(1, population, initial_parameters=start, seed=0)) for start in starts]
    for start, result in zip(starts, results):
        start_policy = oracle.tabular_policy(1, start)
        assert result.metrics.initial_value == pytest.approx(gap_of(kuhn, 1, population, np.ones(1), start_policy)[1], abs=1e-12)
        # One Adam step moves every parameter by about the learning rate, no more.
        for name, tensor in start.items():
            assert (result.parameters[name] - tensor).abs().max() <= 1.01 * SMALL.learning_rate
    assert results[0].metrics.initial_value != results[1].metrics.initial_value
    # Without starting parameters, the seed's normal scratch draw is the start.
    implicit = oracle.best_response(request(1, population, seed=10))
    assert all(torch.equal(implicit.parameters[name], results[0].parameters[name]) for name in implicit.parameters)


def test_fused_parameters_load(kuhn):
    oracle = PolicyGradientOracle(kuhn, dataclasses.replace(SMALL, steps=3))
    population = uniform_policy(kuhn, 1)[None]
    members = [oracle.best_response(request(0, population, seed=s)).parameters for s in (1, 2)]
    fused = fuse_parameters(members, [0.25, 0.75])
    result = oracle.best_response(request(0, population, initial_parameters=fused))
    assert result.metrics.initial_value == pytest.approx(
        gap_of(kuhn, 0, population, np.ones(1), oracle.tabular_policy(0, fused))[1], abs=1e-12
    )


# ---------------------------------------------------------------- declaration, settings, errors


def test_registered_with_its_capabilities(kuhn):
    assert ORACLES.get("pg") is PolicyGradientOracle
    assert PolicyGradientOracle.name == "pg"
    assert PolicyGradientOracle.trains_parameters and PolicyGradientOracle.optimizes_diversity
    assert PolicyGradientOracle.takes_checkpoints and PolicyGradientOracle.budget_setting == "steps"
    assert PolicyGradientOracle.game_kinds == ("tabular", "sampled")
    assert PolicyGradientOracle.settings_class is PGConfig
    oracle = PolicyGradientOracle.create(TabularSpace(kuhn), {"steps": 5, "hidden_sizes": [16]})
    assert oracle.config.steps == 5 and oracle.config.hidden_sizes == (16,)
    with pytest.raises(ConfigError, match="unknown pg oracle option"):
        PolicyGradientOracle.create(TabularSpace(kuhn), {"episodes": 5})


@pytest.mark.parametrize(
    "setting, value, accepted",
    [
        ("steps", 0, "integer >= 1"),
        ("steps", 2.5, "integer >= 1"),
        ("steps", True, "integer >= 1"),
        ("learning_rate", 0.0, "positive finite number"),
        ("learning_rate", float("nan"), "positive finite number"),
        ("learning_rate", "fast", "positive finite number"),
        ("hidden_sizes", (64, 0), "integers >= 1"),
        ("hidden_sizes", "64", "integers >= 1"),
        ("entropy_coefficient", -1.0, ">= 0"),
        ("entropy_anneal_fraction", 0.0, r"\(0, 1\]"),
        ("entropy_anneal_fraction", 1.5, r"\(0, 1\]"),
        ("population_policy", "mixed", "greedy, stochastic"),
        ("device", "gpu0", "torch device"),
        ("torch_threads", 0, "integer >= 1 or None"),
    ],
)
def test_bad_settings_name_the_setting(setting, value, accepted):
    with pytest.raises(ConfigError, match=f"{setting} must .*{accepted}"):
        PGConfig(**{setting: value})


def test_bad_requests(kuhn):
    oracle = PolicyGradientOracle(kuhn, SMALL)
    population = uniform_policy(kuhn, 1)[None]
    with pytest.raises(OracleError, match="player must be 0 or 1, got 2"):
        oracle.best_response(request(2, population))
    other_shape = PolicyGradientOracle(kuhn, dataclasses.replace(SMALL, hidden_sizes=(8,))).scratch_parameters(0, "normal", 0)
    with pytest.raises(OracleError, match="do not fit player 0's policy network"):
        oracle.best_response(request(0, population, initial_parameters=other_shape))
    missing = dict(oracle.scratch_parameters(0, "normal", 0))
    del missing["layers.1.bias"]
    with pytest.raises(OracleError, match="do not fit"):
        oracle.best_response(request(0, population, initial_parameters=missing))
    broken = {name: torch.full_like(t, float("nan")) for name, t in oracle.scratch_parameters(0, "normal", 0).items()}
    with pytest.raises(OracleError, match="NaN or infinite"):
        oracle.best_response(request(0, population, initial_parameters=broken))
    with pytest.raises(OracleError, match="policy kind must be one of greedy, stochastic"):
        oracle.tabular_policy(0, oracle.scratch_parameters(0, "normal", 0), "softmax")
    with pytest.raises(OracleError, match="accepted: normal, orthogonal, kaiming"):
        oracle.scratch_parameters(0, "xavier", 0)
    with pytest.raises(OracleError, match="player must be 0 or 1"):
        oracle.scratch_parameters(-1, "normal", 0)
    with pytest.raises(OracleError, match="beyond"):
        oracle.best_response(request(0, population, checkpoints=(10_000,), on_checkpoint=lambda b, s: None))


# ---------------------------------------------------------------- diversity terms and hooks


def test_expected_decision_bonus_counts_the_decisions_of_a_game(kuhn):
    """With a bonus of 1 per decision, the expected bonus is the expected number of decisions.

    Kuhn, both players uniform: player 0 always acts once, and again after check-bet (1/4).
    """
    objective = SequenceFormObjective(kuhn, 0, realization_plans(kuhn, 1, uniform_policy(kuhn, 1)), CPU)
    ones = torch.ones(kuhn.players[0].legal_mask.shape, dtype=torch.float64)
    logits = torch.zeros(ones.shape, dtype=torch.float64)
    assert float(objective.expected_decision_bonus(logits, ones)) == pytest.approx(1.25, abs=1e-12)


@pytest.mark.parametrize("kind", ["psd", "bdrd", "dpp"])
def test_diversity_terms_change_the_objective_and_weight_zero_changes_nothing(kuhn, kind):
    rng = np.random.default_rng(3)
    own = np.stack([random_deterministic_policy(kuhn, 0, rng) for _ in range(3)])
    opponents = np.stack([random_policy(kuhn, 1, rng) for _ in range(2)])
    payoffs = np.array([[expected_values(kuhn, realization_plans(kuhn, 0, a), realization_plans(kuhn, 1, b))[0]
                         for b in opponents] for a in own])
    oracle = PolicyGradientOracle(kuhn, dataclasses.replace(SMALL, steps=60, diversity_candidates=4))

    def respond(weight):
        term = DiversityTerm(kind, weight, own, np.full(3, 1 / 3), payoffs, opponents, seed=1)
        return oracle.best_response(request(0, opponents, seed=4, diversity=term))

    plain, zero, strong = oracle.best_response(request(0, opponents, seed=4)), respond(0.0), respond(5.0)
    assert np.array_equal(plain.policy, zero.policy) and zero.metrics.diversity is None
    if kind in ("psd", "bdrd"):
        assert strong.metrics.diversity_bonus_mean is not None
    if kind in ("dpp", "bdrd"):
        assert strong.metrics.diversity_candidates == 4 and 0 <= strong.metrics.diversity_candidate < 4
        assert strong.metrics.selected_value == pytest.approx(gap_of(kuhn, 0, opponents, np.full(2, 0.5), strong.policy)[1])
    assert not all(torch.equal(a, b) for a, b in zip(plain.parameters.values(), strong.parameters.values()))


def test_checkpoints_see_the_network_along_the_way(kuhn):
    oracle = PolicyGradientOracle(kuhn, dataclasses.replace(SMALL, steps=40))
    seen, progress = {}, []
    population = uniform_policy(kuhn, 1)[None]
    final = oracle.best_response(request(0, population, checkpoints=(0, 10, 40),
                                         on_checkpoint=lambda b, snap: seen.setdefault(b, snap),
                                         on_progress=lambda done, total: progress.append((done, total))))
    assert sorted(seen) == [0, 10, 40] and progress[-1] == (40, 40)
    assert seen[0].metrics.value == pytest.approx(final.metrics.initial_value)
    assert np.array_equal(seen[40].policy, final.policy) and seen[10].metrics.steps == 10
    for snapshot in seen.values():  # each snapshot's policy is its own parameters' policy
        assert np.array_equal(snapshot.policy, oracle.tabular_policy(0, snapshot.parameters))


def test_distill_fits_the_softmax_to_the_mixture(kuhn):
    from fusion_psro.evaluation import mixture_behaviour

    oracle = PolicyGradientOracle(kuhn, SMALL)
    rng = np.random.default_rng(2)
    own = np.stack([random_policy(kuhn, 0, rng) for _ in range(3)])
    weights = np.array([0.2, 0.5, 0.3])
    fitted = oracle.distill(0, oracle.scratch_parameters(0, "normal", 1), own, weights, None, None, steps=300,
                            learning_rate=1e-2)
    target = mixture_behaviour(kuhn, 0, own, weights)
    assert np.abs(oracle.tabular_policy(0, fitted, "stochastic") - target).max() < 0.02


@pytest.mark.parametrize("variant", ["psro", "p-psro"])
def test_every_init_that_applies_runs_in_the_loop(variant):
    from fusion_psro.psro import PSRO, PSROConfig
    from fusion_psro.registry import INITS

    for init in INITS.names(lambda i: i.unsupported_by(PolicyGradientOracle) is None):
        config = PSROConfig(game=KUHN, oracle="pg", init=init, variant=variant, iterations=3,
                            variant_options={"learners": 2} if variant == "p-psro" else {},
                            oracle_options={"hidden_sizes": (16,), "steps": 5},
                            init_options={"steps": 20} if init == "nash-distill" else {})
        rows = PSRO(config).run()
        assert rows[-1].exploitability >= 0
        assert any(init in r.inits for r in rows), (init, [r.inits for r in rows])


def test_the_pg_oracle_plays_sampled_games_of_a_game_that_compiles(tmp_path):
    """With evaluation=sampled its members are network vectors, and its first best responses are
    the tabular run's (the same exact objective against the uniform policy, the same start)."""
    from fusion_psro.oracles.episode_sources import tabulate_member
    from fusion_psro.psro import PSRO, PSROConfig

    common = dict(game="kuhn_poker", oracle="pg", iterations=1, seed=4,
                  oracle_options={"hidden_sizes": [8], "steps": 20, "population_policy": "stochastic"})
    tabular = PSRO(PSROConfig(**common))
    tabular.run()
    sampled = PSRO(PSROConfig(**common, evaluation="sampled", sims_per_entry=200))
    row = sampled.run()[-1]
    kuhn = compile_game("kuhn_poker")
    for player in range(2):
        vector = sampled.state.populations[player][1].policy
        assert vector.ndim == 1  # a network vector, not a table
        np.testing.assert_allclose(tabulate_member(vector, kuhn, player), tabular.state.populations[player][1].policy,
                                   atol=1e-9)
    assert np.isfinite(row.exploitability) and row.to_json()["meta_game"]["games"] > 0
    with pytest.raises(ConfigError, match="too large to compile; use --oracle dqn"):
        PSRO(PSROConfig(game="liars_dice(numdice=2)", oracle="pg", iterations=1))
