"""The PSRO loop: convergence with the exact oracle, variant bookkeeping, configs, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion_psro.evaluation import evaluate_mixture, mixture_best_response
from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, Oracle
from fusion_psro.psro import PSRO, ConfigError, PSROConfig


def test_exact_psro_solves_kuhn():
    rows = PSRO(PSROConfig(game="kuhn_poker", iterations=15)).run()
    assert rows[-1].exploitability < 1e-3
    assert rows[-1].nash_conv == pytest.approx(2 * rows[-1].exploitability, abs=1e-12)
    # Kuhn poker's value for player 0 is -1/18.
    assert rows[-1].meta_game_value == pytest.approx(-1 / 18, abs=1e-3)


def test_metrics_rows_are_complete_and_consistent():
    psro = PSRO(PSROConfig(game="kuhn_poker", iterations=4))
    rows = psro.run()
    assert [r.iteration for r in rows] == [1, 2, 3, 4]
    for row in rows:
        for key in ("exploitability", "nash_conv", "wall_s", "episodes", "fusion_s", "population_sizes", "meta_strategies"):
            assert key in row.to_json()
    assert all(b.wall_s >= a.wall_s for a, b in zip(rows, rows[1:]))
    # The recorded exploitability is that of the recorded meta-strategies, recomputed independently.
    last = rows[-1]
    populations = [np.stack([m.policy for m in pop]) for pop in psro.state.populations]
    check = evaluate_mixture(psro.compiled, populations, [np.array(s) for s in last.meta_strategies])
    assert check.exploitability == pytest.approx(last.exploitability, abs=1e-12)


def test_meta_game_matches_a_fresh_payoff_matrix():
    from fusion_psro.evaluation import payoff_matrix

    psro = PSRO(PSROConfig(game="leduc_poker", iterations=5))
    psro.run()
    populations = [np.stack([m.policy for m in pop]) for pop in psro.state.populations]
    np.testing.assert_allclose(psro.state.meta_game.matrix, payoff_matrix(psro.compiled, *populations), atol=1e-12)


def test_each_best_response_is_exact_against_the_meta_strategy():
    psro2 = PSRO(PSROConfig(game="leduc_poker", iterations=3))
    for _ in range(2):
        psro2.step()
    sigma_before = psro2.state.meta_strategies
    opponents = np.stack([m.policy for m in psro2.state.populations[1]])
    row = psro2.step()
    assert row.population_sizes == [4, 4]
    expected = mixture_best_response(psro2.compiled, 0, opponents, sigma_before[1]).policy
    np.testing.assert_array_equal(psro2.state.populations[0][-1].policy, expected)


def test_rectified_variant_adds_rn_learners_per_player():
    rows = PSRO(PSROConfig(game="kuhn_poker", variant="psro-rn", iterations=4, variant_options={"learners": 2})).run()
    sizes = [r.population_sizes for r in rows]
    # Iteration 1: the meta-Nash support is the uniform member only, so one learner each.
    assert sizes[0] == [2, 2]
    for before, after, row in zip(sizes, sizes[1:], rows[1:]):
        added = [a - b for a, b in zip(after, before)]
        assert all(1 <= n <= 2 for n in added)
        assert len(row.inits) == sum(added)


def test_rectified_learner_trains_only_against_opponents_it_beats():
    class Spy(Oracle):
        name, trains_parameters, game_kinds = "spy", False, ("tabular",)

        def __init__(self, inner):
            self.inner, self.requests = inner, []

        def best_response(self, request):
            self.requests.append(request)
            return self.inner.best_response(request)

    from fusion_psro.games import compile_game
    from fusion_psro.oracles.exact import ExactOracle

    compiled = compile_game("leduc_poker")
    spy = Spy(ExactOracle(compiled))
    psro = PSRO(PSROConfig(game="leduc_poker", variant="psro-rn", iterations=4), oracle=spy, compiled=compiled)
    for _ in range(3):
        psro.step()
    sigma = psro.state.meta_strategies
    payoffs = psro.state.meta_game.payoffs(0)
    learner = int(np.argmax(sigma[0]))
    spy.requests.clear()
    psro.step()
    request = spy.requests[0]
    beaten = np.flatnonzero((payoffs[learner] >= 0) & (sigma[1] > 0))
    targets = beaten if len(beaten) else np.flatnonzero(sigma[1] > 0)  # beats nobody: full meta-Nash
    assert request.opponent_population.shape[0] == len(targets)
    opponents = np.stack([m.policy for m in psro.state.populations[1][: payoffs.shape[1]]])
    np.testing.assert_array_equal(request.opponent_population, opponents[targets])
    np.testing.assert_allclose(request.opponent_meta_strategy, sigma[1][targets] / sigma[1][targets].sum())


def test_pipeline_variant_keeps_active_learners_and_freezes_the_lowest():
    psro = PSRO(PSROConfig(game="kuhn_poker", variant="p-psro", iterations=6,
                           variant_options={"learners": 3, "max_iterations": 2}))
    rows = psro.run()
    for row in rows:
        assert row.extra["active_learners"] == [2, 2] or row.extra["active_learners"] == [3, 3]
        fixed = [size - active for size, active in zip(row.population_sizes, row.extra["active_learners"])]
        assert fixed[0] >= 1 and fixed[1] >= 1
    # Every iteration freezes at most one learner per player, and with the exact oracle the
    # lowest learner stops improving (plateau) or reaches its budget within two iterations.
    assert sum(len(r.extra["frozen"]) for r in rows) >= 2 * (len(rows) // 2)
    assert rows[-1].exploitability < rows[0].exploitability


def test_pipeline_exact_on_kuhn_converges():
    rows = PSRO(PSROConfig(game="kuhn_poker", variant="p-psro", iterations=15)).run()
    assert rows[-1].exploitability < 1e-3


def test_exact_runs_are_deterministic():
    a = PSRO(PSROConfig(game="leduc_poker", iterations=6)).run()
    b = PSRO(PSROConfig(game="leduc_poker", iterations=6)).run()
    assert [r.exploitability for r in a] == [r.exploitability for r in b]
    assert [r.meta_strategies for r in a] == [r.meta_strategies for r in b]


class TinyLearnedOracle(Oracle):
    """A stand-in learned oracle: exact best response, plus parameters that record their start.

    Its "network" is one tensor; training adds a seeded random step. That is enough to
    test the loop's handling of initializations, fusion timing and seeding without DQN.
    """

    name, trains_parameters, game_kinds = "tiny", True, ("tabular",)
    scratch_schemes = ("normal", "orthogonal", "kaiming")

    def __init__(self, compiled):
        from fusion_psro.oracles.exact import ExactOracle

        self.exact = ExactOracle(compiled)
        self.starts: list[dict] = []

    def scratch_parameters(self, player, scheme, seed):
        generator = torch.Generator().manual_seed(seed)
        return {"w": torch.randn(3, generator=generator)}

    def best_response(self, request: BestResponseRequest) -> BestResponseResult:
        self.starts.append({k: v.clone() for k, v in request.initial_parameters.items()})
        generator = torch.Generator().manual_seed(request.seed)
        trained = {"w": request.initial_parameters["w"] + torch.randn(3, generator=generator)}
        result = self.exact.best_response(request)
        return BestResponseResult(policy=result.policy, parameters=trained, episodes=10)


@pytest.mark.parametrize("init", ["normal", "orthogonal", "kaiming", "inherit", "fusion"])
def test_learned_oracle_loop_with_every_init(init):
    from fusion_psro.games import compile_game

    compiled = compile_game("kuhn_poker")
    config = PSROConfig(game="kuhn_poker", oracle="dqn", init=init, iterations=4, fusion_start=2)
    oracle = TinyLearnedOracle(compiled)
    psro = PSRO(config, oracle=oracle, compiled=compiled)
    rows = psro.run()
    assert rows[-1].episodes == 4 * 2 * 10
    inits = [r.inits for r in rows]
    if init == "fusion":
        assert inits[0] == ["normal", "normal"]  # before fusion_start
        assert all(i == ["fusion", "fusion"] for i in inits[1:])
        assert all(r.fusion_s > 0 for r in rows[1:])
        # The fused start is the meta-Nash-weighted average of the members' parameters.
        sigma = rows[-2].meta_strategies[0]
        members = psro.state.populations[0][:-1]
        weights = np.array([s for s, m in zip(sigma, members) if m.parameters is not None])
        if weights.sum() > 0:
            weights = weights / weights.sum()
            expected = sum(w * m.parameters["w"].double() for w, m in
                           zip(weights, [m for m in members if m.parameters is not None])).float()
            torch.testing.assert_close(oracle.starts[-2]["w"], expected, rtol=0, atol=1e-6)
    elif init == "inherit":
        assert inits[0] == ["normal", "normal"] and all(i == ["inherit", "inherit"] for i in inits[1:])
        assert torch.equal(oracle.starts[2]["w"], psro.state.populations[0][1].parameters["w"])
    else:
        assert all(i == [init, init] for i in inits)


def test_same_seed_same_learned_run_and_other_seed_differs():
    from fusion_psro.games import compile_game

    compiled = compile_game("kuhn_poker")

    def run(seed):
        psro = PSRO(PSROConfig(game="kuhn_poker", oracle="dqn", init="fusion", iterations=3, seed=seed),
                    oracle=TinyLearnedOracle(compiled), compiled=compiled)
        psro.run()
        return torch.stack([m.parameters["w"] for m in psro.state.populations[0][1:]])

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"oracle": "ppo"}, "unknown oracle 'ppo'; accepted: exact, dqn"),
        ({"variant": "alpha"}, "unknown variant 'alpha'; accepted: psro, psro-rn, p-psro"),
        ({"meta_solver": "lemke"}, "unknown meta-solver 'lemke'; accepted: nash, uniform, prd, rm, fp"),
        ({"init": "fusion"}, "does not apply to the exact oracle"),
        ({"oracle": "dqn", "init": "xavier"}, "unknown init 'xavier'"),
        ({"iterations": 0}, "iterations must be an integer >= 1"),
        ({"fusion_start": 0}, "fusion_start must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"fusion_fallback": "fusion"}, "unknown fusion fallback"),
    ],
)
def test_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PSROConfig(game="kuhn_poker", **changes).resolved()


@pytest.mark.parametrize("variant", ["psro", "p-psro"])
def test_shared_population_uses_symmetric_meta_nash_and_solves_kuhn(variant):
    psro = PSRO(PSROConfig(game="kuhn_poker", population="shared", variant=variant, iterations=20))
    rows = psro.run()
    for row in rows:
        assert row.population_sizes[0] == row.population_sizes[1]
        assert row.meta_strategies[0] == row.meta_strategies[1]
    assert rows[-1].exploitability < 1e-3
    # The symmetric meta-Nash is an equilibrium of the seat-averaged agent game.
    matrix = psro.state.meta_game.matrix
    agent_game = 0.5 * (matrix - matrix.T)
    sigma = np.array(rows[-1].meta_strategies[0])
    assert (sigma @ agent_game).min() >= -1e-9


def test_shared_population_with_a_learned_oracle_is_refused():
    with pytest.raises(ConfigError, match="shared population needs one learner that plays both seats; the dqn oracle"):
        PSROConfig(game="kuhn_poker", population="shared", oracle="dqn").resolved()


SMALL_DQN = {"hidden_sizes": (32,), "num_envs": 32, "min_replay_before_learning": 64, "batch_size": 64}


@pytest.mark.parametrize("variant", ["psro", "psro-rn", "p-psro"])
def test_dqn_psro_end_to_end_is_deterministic(variant):
    def run(seed):
        config = PSROConfig(game="kuhn_poker", oracle="dqn", init="fusion", variant=variant, iterations=3,
                            episodes=300, seed=seed, oracle_options=SMALL_DQN,
                            variant_options={"learners": 2} if variant == "p-psro" else {})
        psro = PSRO(config)
        rows = psro.run()
        return rows, psro

    rows_a, psro_a = run(5)
    rows_b, _ = run(5)
    strip = lambda rows: [{k: v for k, v in r.to_json().items() if not k.endswith("_s") and k != "oracle"} for r in rows]  # noqa: E731
    assert strip(rows_a) == strip(rows_b)
    assert rows_a[-1].episodes > 0
    assert any("fusion" in r.inits for r in rows_a)
    members = [m for pop in psro_a.state.populations for m in pop if m.parameters is not None]
    assert members and all(set(m.parameters) == set(members[0].parameters) for m in members)


def test_plans_and_the_snapshot_that_take_sees_are_as_planned():
    from fusion_psro.psro.variants import PSROVariant
    from fusion_psro.registry import VARIANTS, register_variant

    seen = []

    class Checking(PSROVariant):
        def take(self, run, plans, responses):
            sizes = run.planned.sizes
            for plan, response in zip(plans, responses):
                run.add(plan.player, response.member)
                # The live population grew; the plan and the snapshot did not.
                assert isinstance(plan.opponents, tuple) and isinstance(plan.own, tuple)
                assert plan.own_count == sizes[plan.player] == len(run.state.populations[plan.player]) - 1
                assert run.planned.sizes == sizes and run.planned.matrix.shape == sizes
                with pytest.raises(ValueError):
                    plan.opponent_weights[0] = 0.5
                seen.append(plan.own_count)

    register_variant("checking-frozen", Checking)
    try:
        PSRO(PSROConfig(game="kuhn_poker", variant="checking-frozen", iterations=3)).run()
    finally:
        VARIANTS.unregister("checking-frozen")
    assert seen == [1, 1, 2, 2, 3, 3]


def test_old_flat_variant_settings_load_and_new_code_is_told_where_they_went():
    record = {**PSROConfig(variant="p-psro").to_json(), "pipeline_learners": 3, "pipeline_max_iterations": 1,
              "rn_learners": 1, "pipeline_plateau": 0.001, "pipeline_parallel": False}
    del record["variant_options"]
    config = PSROConfig.from_record(record)
    assert config.variant_options == {"learners": 3, "max_iterations": 1, "plateau": 0.001, "parallel": False}
    # A record of that time holds every old setting, also those its variant did not read.
    old_psro = PSROConfig.from_record({**record, "variant": "psro"})
    assert old_psro.variant_options == {}
    assert PSROConfig(variant="psro-rn", rn_learners=2).variant_options == {"learners": 2}
    with pytest.raises(ConfigError, match="pipeline_learners does not apply to the psro variant; variants that have "
                                          "it: p-psro, p-dpp, p-bdrd, p-psd"):
        PSROConfig(variant="psro", pipeline_learners=2)
    with pytest.raises(ConfigError, match="learners is given twice"):
        PSROConfig(variant="psro-rn", rn_learners=2, variant_options={"learners": 3})
    with pytest.raises(ConfigError, match="unknown p-psro variant option"):
        PSROConfig(variant="p-psro", variant_options={"window": 2}).resolved()


def test_fusion_start_applies_to_the_inits_that_declare_they_build_on_the_population():
    from fusion_psro.experiments.runner import unused_settings
    from fusion_psro.psro import Initialization, InitializationChoice, fall_back, fused_population
    from fusion_psro.registry import INITS

    class HalfFused(Initialization):
        builds_on_population = True

        def choose(self, context):
            fused = fused_population(context)
            return fall_back(context) if fused is None else InitializationChoice(fused.parameters, "half-fused")

    INITS.register("half-fused", HalfFused())
    try:
        config = PSROConfig(game="kuhn_poker", oracle="dqn", init="half-fused").resolved()
        assert unused_settings(config, {"fusion_start", "fusion_fallback"}) == {}
        assert "half-fused" in INITS.names(lambda i: i.builds_on_population)
        with pytest.raises(ConfigError, match="unknown fusion fallback 'half-fused'"):
            PSROConfig(game="kuhn_poker", oracle="dqn", init="fusion", fusion_fallback="half-fused").resolved()
        inherit = PSROConfig(game="kuhn_poker", oracle="dqn", init="inherit").resolved()
        assert "fusion_start" in unused_settings(inherit, {"fusion_start"})
    finally:
        INITS.unregister("half-fused")


def test_every_setting_is_in_one_section_and_the_flat_record_is_unchanged():
    import dataclasses

    from fusion_psro.psro.config import SECTIONS

    named = [setting for settings in SECTIONS.values() for setting in settings]
    assert sorted(named) == sorted(f.name for f in dataclasses.fields(PSROConfig))
    assert len(named) == len(set(named))
    config = PSROConfig(game="kuhn_poker", iterations=3, variant="psro-rn", variant_options={"learners": 2})
    assert config.section("loop")["iterations"] == 3
    assert config.section("variant") == {"variant": "psro-rn", "variant_options": {"learners": 2},
                                         "diversity_weight": None, "diversity_schedule": "constant"}
    assert set(config.to_json()) == set(named)  # config.json stays flat
    with pytest.raises(ConfigError, match="unknown settings section 'oracle'; accepted: loop, variant, evaluation"):
        config.section("oracle")
