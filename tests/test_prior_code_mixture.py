"""The prior code's mixture-game setup: fictitious-play meta-solver, symmetric population,
the prior code's diversity schedule and its exploitability estimate, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fusion_psro.cli import main
from fusion_psro.errors import ConfigError
from fusion_psro.experiments import read_metrics, resume_psro, run_psro
from fusion_psro.experiments.trajectories import LearnerPath, learner_paths, start_statistics
from fusion_psro.games.mixture import DPP_PSRO_CENTRES, MixtureGame
from fusion_psro.meta import MetaSolution, get_meta_solver, meta_nash_conv
from fusion_psro.meta.solvers import InvalidMetaSolverError, solve_fictitious_play, takes_seed
from fusion_psro.oracles.base import BestResponseRequest
from fusion_psro.oracles.diversity import DiversityTerm
from fusion_psro.oracles.point_gradient import GradientConfig, GradientOracle
from fusion_psro.psro import PSRO, PSROConfig
from fusion_psro.psro.schedules import DIVERSITY_SCHEDULES, prior_code_payoff_weight
from fusion_psro.psro.variants import PSROVariant
from fusion_psro.registry import INITS, META_SOLVERS, VARIANTS, register_meta_solver, register_variant

RPS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
VARIANTS_TESTED = ["psro", "psro-rn", "p-psro", "dpp", "bdrd", "psd"]
#: The experiment's settings at a small scale.
PRIOR_CODE = dict(game="mixture_dpp_code", meta_solver="fp", meta_solver_options={"iterations": 200},
                  population="symmetric", oracle_options={"steps": 5, "start_scale": 0.01},
                  variant_options={"learners": 3, "max_iterations": 1}, diversity_schedule="prior-code",
                  exploitability_prior_code=True)


# ---------------------------------------------------------------------------- fictitious play


def test_fictitious_play_approaches_the_rps_nash_as_iterations_grow():
    worst = {}
    for iterations in (30, 300, 3000):
        worst[iterations] = max(meta_nash_conv(RPS, *solve_fictitious_play(RPS, iterations, seed=s).strategies)
                                for s in range(8))
    # NashConv of the average falls about as 1 / sqrt(iterations) (measured 1.4 / sqrt(n)).
    assert worst[30] < 0.5 and worst[300] < 0.15 and worst[3000] < 0.05
    assert worst[3000] < worst[300] < worst[30]
    sigma = solve_fictitious_play(RPS, 3000, seed=0).strategies[0]
    np.testing.assert_allclose(sigma, np.full(3, 1 / 3), atol=0.02)


def test_fictitious_play_is_seeded_noisy_and_symmetric_on_antisymmetric_games():
    a, b = (solve_fictitious_play(RPS, 1000, seed=s) for s in (0, 1))
    assert not np.allclose(a.strategies[0], b.strategies[0])  # the random start shows
    np.testing.assert_array_equal(solve_fictitious_play(RPS, 1000, seed=0).strategies[0], a.strategies[0])
    np.testing.assert_array_equal(a.strategies[0], a.strategies[1])  # one start for a symmetric game
    rectangular = np.random.default_rng(3).normal(size=(4, 6))
    solution = solve_fictitious_play(rectangular, 2000, seed=2)
    assert solution.solver == "fp"
    assert [s.shape for s in solution.strategies] == [(4,), (6,)]
    assert all(abs(s.sum() - 1.0) < 1e-12 and (s >= 0).all() for s in solution.strategies)
    assert meta_nash_conv(rectangular, *solution.strategies) < 0.1
    assert takes_seed(solve_fictitious_play) and takes_seed(get_meta_solver("fp", iterations=5))
    assert not takes_seed(get_meta_solver("nash"))


@pytest.mark.parametrize("iterations", [0, -3, 1.5, "many", True])
def test_fictitious_play_refuses_bad_iteration_counts(iterations):
    with pytest.raises(InvalidMetaSolverError, match=r"^iterations must be an integer >= 1, got "):
        solve_fictitious_play(RPS, iterations)


# ---------------------------------------------------------------------------- meta-solver options


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"iterations": 0}, "meta-solver fp: iterations must be an integer >= 1, got 0"),
        ({"iterations": -5}, "meta-solver fp: iterations must be an integer >= 1, got -5"),
        ({"iterations": 2.5}, "meta-solver fp: iterations must be an integer >= 1, got 2.5"),
        ({"steps": 3}, "invalid arguments for meta-solver 'fp'.*its keyword arguments: iterations, seed"),
        ({"seed": 3}, "its seed comes from the run's --seed"),
    ],
)
def test_bad_meta_solver_options_are_one_line_errors(options, message):
    with pytest.raises(ConfigError, match=message) as info:
        PSROConfig(game="mixture", meta_solver="fp", meta_solver_options=options).resolved()
    assert "\n" not in str(info.value)


def test_options_of_a_solver_without_them_are_refused():
    with pytest.raises(ConfigError, match="meta-solver 'nash'.*its keyword arguments: none"):
        PSROConfig(game="kuhn_poker", meta_solver_options={"iterations": 10}).resolved()


def test_the_loop_passes_a_fresh_reproducible_seed_to_each_call_of_a_seeded_solver():
    seen: list[int] = []

    def solve_recording(M, *, seed: int) -> MetaSolution:
        seen.append(seed)
        return get_meta_solver("fp", iterations=50)(M, seed=seed)

    register_meta_solver("recording-fp", solve_recording)
    try:
        def run(seed):
            seen.clear()
            rows = PSRO(PSROConfig(game="mixture", meta_solver="recording-fp", iterations=3, seed=seed,
                                   variant="p-psro", variant_options={"learners": 2}, oracle_options={"steps": 5})).run()
            return list(seen), [r.meta_strategies for r in rows]

        first, again, other = run(0), run(0), run(1)
    finally:
        META_SOLVERS.unregister("recording-fp")
    assert len(first[0]) > 3 and len(set(first[0])) == len(first[0])  # several calls an iteration, all distinct
    assert first == again
    assert set(first[0]).isdisjoint(other[0])


# ---------------------------------------------------------------------------- symmetric population


@pytest.mark.parametrize("variant", VARIANTS_TESTED)
@pytest.mark.parametrize("init", INITS.names(lambda i: i.unsupported_by(GradientOracle) is None))
def test_symmetric_population_repeats_player_zero_and_keeps_the_meta_game_antisymmetric(variant, init):
    psro = PSRO(PSROConfig(game="mixture", population="symmetric", variant=variant, init=init, iterations=3,
                           seed=4, oracle_options={"steps": 10}))
    rows = psro.run()
    populations = psro.state.populations
    assert len(populations[0]) == len(populations[1]) > 1
    assert all(a is b for a, b in zip(*populations))
    matrix = psro.state.meta_game.matrix
    np.testing.assert_allclose(matrix, -matrix.T, atol=1e-12)
    for row in rows:
        assert row.meta_strategies[0] == row.meta_strategies[1]
        assert {entry["player"] for entry in row.oracle if entry} == {0}  # one seat's best responses only
    points = np.stack([m.policy for m in populations[0]])
    sigma = np.array(rows[-1].meta_strategies[0])
    assert rows[-1].exploitability == pytest.approx(psro.space.game.exploitability(points, sigma), abs=1e-12)


def test_symmetric_psro_approaches_the_mixture_game_equilibrium():
    rows = PSRO(PSROConfig(game="mixture_dpp_code", population="symmetric", iterations=8, seed=0)).run()
    assert rows[0].exploitability > 0.3
    assert rows[-1].exploitability < 0.03


def test_symmetric_population_is_refused_for_games_not_declared_symmetric():
    with pytest.raises(ConfigError, match=r"needs a symmetric game; 'kuhn_poker' is a tabular OpenSpiel game.*"
                                          r"Game kinds that are: mixture; or use --population per-player or shared"):
        PSROConfig(game="kuhn_poker", population="symmetric").resolved()


def test_a_variant_that_plans_for_the_mirrored_player_is_stopped():
    class BothSeats(PSROVariant):
        def plan(self, run, round):
            plans = super().plan(run, round)
            return plans + [dataclass_copy(plans[0], player=1)] if plans else plans

    def dataclass_copy(plan, **changes):
        import dataclasses

        return dataclasses.replace(plan, **changes)

    register_variant("both-seats", BothSeats)
    try:
        psro = PSRO(PSROConfig(game="mixture", population="symmetric", variant="both-seats", iterations=1))
        with pytest.raises(ConfigError, match=r"planned best responses of player\(s\) \[1\].*players \[0\] only"):
            psro.step()
    finally:
        VARIANTS.unregister("both-seats")


def test_symmetric_fp_run_resumes_to_the_uninterrupted_result(tmp_path):
    config = PSROConfig(**{**PRIOR_CODE, "variant": "p-psro", "init": "fusion", "iterations": 5, "seed": 2})
    whole = run_psro(config, tmp_path / "whole", progress=False)
    run_psro(PSROConfig(**{**config.__dict__, "iterations": 2}), tmp_path / "part", progress=False)
    resumed = resume_psro(tmp_path / "part", iterations=5, progress=False)
    untimed = lambda rows: [{k: v for k, v in r.to_json().items() if not k.endswith("_s")} for r in rows]  # noqa: E731
    assert untimed(resumed) == untimed(whole)


# ---------------------------------------------------------------------------- diversity schedule


def test_prior_code_schedule_values():
    assert prior_code_payoff_weight(0) == pytest.approx(1 - 0.7 / (1 + np.exp(6.25)))
    assert prior_code_payoff_weight(0) == pytest.approx(0.998651, abs=1e-6)
    assert prior_code_payoff_weight(25) == pytest.approx(0.65, abs=1e-12)
    assert prior_code_payoff_weight(50) == pytest.approx(0.301349, abs=1e-6)
    # Iterations count from 1 here and from 0 in the prior code.
    assert DIVERSITY_SCHEDULES["prior-code"].factors(26) == pytest.approx((0.65, 0.35))
    assert DIVERSITY_SCHEDULES["constant"].factors(26) == (1.0, 1.0)


def test_the_loop_weighs_the_terms_by_the_schedule_and_the_prior_code_scale():
    scheduled = PSRO(PSROConfig(game="mixture", variant="psd", diversity_schedule="prior-code", iterations=30))
    assert scheduled.config.diversity_weight == 0.3  # the PSD code's scale when none is given
    scheduled.state.iteration = 26
    term = scheduled.diversity_term(0, seed=1)
    assert (term.payoff_weight, term.weight) == pytest.approx((0.65, 0.35 * 0.3))
    constant = PSRO(PSROConfig(game="mixture", variant="psd", diversity_weight=0.2))
    constant.state.iteration = 26
    term = constant.diversity_term(0, seed=1)
    assert (term.payoff_weight, term.weight) == (1.0, 0.2)
    assert PSROConfig(game="mixture", variant="dpp", diversity_schedule="prior-code").resolved().diversity_weight == 1.0


def test_the_gradient_oracle_ascends_the_weighted_payoff():
    # lambda * payoff + w * diversity points where payoff + (w / lambda) * diversity does; with
    # the payoff weight ignored the second ascent would follow payoff + w * diversity instead.
    game = MixtureGame(centres=DPP_PSRO_CENTRES)
    oracle = GradientOracle(game, GradientConfig(steps=40))
    own = np.array([[0.3, -0.2], [2.5, 0.4], [-1.0, 2.0]])
    opponents = np.array([[1.0, 1.0], [-2.0, -1.0]])

    def respond(payoff_weight, weight):
        term = DiversityTerm(kind="psd", weight=weight, own_population=own, own_meta_strategy=np.full(3, 1 / 3),
                             own_payoffs=game.payoff_matrix(own, opponents), opponent_population=opponents,
                             payoff_weight=payoff_weight)
        return oracle.best_response(BestResponseRequest(
            player=0, opponent_population=opponents, opponent_meta_strategy=np.array([0.5, 0.5]), seed=3,
            diversity=term)).policy

    scaled, plain, unscaled = respond(0.4, 0.6), respond(1.0, 1.5), respond(1.0, 0.6)
    np.testing.assert_allclose(scaled, plain, atol=1e-4)  # Adam: only its epsilon sees the scale
    assert np.abs(scaled - unscaled).max() > 1e-2


def test_schedules_that_weigh_the_payoff_need_an_oracle_that_does():
    with pytest.raises(ConfigError, match="diversity-schedule prior-code weighs the payoff too, which the dqn oracle "
                                          "does not; use --diversity-schedule constant"):
        PSROConfig(game="kuhn_poker", oracle="dqn", variant="psd", diversity_schedule="prior-code").resolved()
    with pytest.raises(ConfigError, match="unknown diversity schedule 'linear'; accepted: constant, prior-code"):
        PSROConfig(game="mixture", diversity_schedule="linear").resolved()


# ---------------------------------------------------------------------------- prior-code exploitability


def test_prior_code_exploitability_is_a_lower_bound_of_the_certified_one():
    rows = PSRO(PSROConfig(**{**PRIOR_CODE, "variant_options": {}, "iterations": 6, "seed": 1})).run()
    gaps = [row.exploitability - row.extra["exploitability_prior_code"] for row in rows]
    assert min(gaps) >= -1e-9
    assert max(gaps) > 1e-3  # the local ascent misses the best hump somewhere (not the same number)


def test_prior_code_exploitability_equals_the_certified_one_when_every_hump_is_as_good():
    # Against the origin every hump scores the same (the regular heptagon), so any hump the
    # ascent climbs is a global best response.
    angles = 2.0 * np.pi * np.arange(7) / 7
    game = MixtureGame(centres=2.8723 * np.stack([np.cos(angles), np.sin(angles)], axis=1))
    origin, one = np.zeros((1, 2)), np.ones(1)
    for seed in range(3):
        estimate = game.prior_code_nash_conv(origin, one, origin, one, seeds=(seed, seed + 10))
        exact = game.nash_conv(origin, one, origin, one)
        assert estimate <= exact + 1e-9
        assert estimate == pytest.approx(exact, abs=1e-4)


def test_prior_code_exploitability_is_recorded_only_when_asked_and_only_for_the_mixture_game(tmp_path):
    row = PSRO(PSROConfig(game="mixture", iterations=1, oracle_options={"steps": 5})).step()
    assert "exploitability_prior_code" not in row.to_json()
    with pytest.raises(ConfigError, match="does not apply to 'kuhn_poker'.*game kinds that define it: mixture"):
        PSROConfig(game="kuhn_poker", exploitability_prior_code=True).resolved()


# ---------------------------------------------------------------------------- command line


def test_cli_runs_the_prior_code_setup_and_names_bad_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--game", "mixture_dpp_code", "--meta-solver", "fp", "--meta-solver-option", "iterations=100",
                 "--population", "symmetric", "--variant", "psd", "--init", "fusion", "--steps", "5",
                 "--diversity-schedule", "prior-code", "--exploitability-prior-code", "--iterations", "2",
                 "--out", str(out), "--quiet"]) == 0
    recorded = json.loads((out / "config.json").read_text())["psro"]
    assert recorded["meta_solver_options"] == {"iterations": 100}
    assert recorded["population"] == "symmetric" and recorded["exploitability_prior_code"] is True
    assert all("exploitability_prior_code" in row for row in read_metrics(out))
    capsys.readouterr()
    for arguments, message in [
        (["--meta-solver", "fp", "--meta-solver-option", "iterations=0"], "iterations must be an integer >= 1, got 0"),
        (["--meta-solver", "fp", "--meta-solver-option", "iterations=x"], "iterations must be an integer >= 1, got 'x'"),
        (["--game", "kuhn_poker", "--population", "symmetric"], "needs a symmetric game"),
        (["--game", "kuhn_poker", "--exploitability-prior-code"], "game kinds that define it: mixture"),
    ]:
        assert main(["run", *arguments, "--out", str(tmp_path / "bad"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------------- start analysis


def test_learner_paths_follow_pipeline_learners_to_the_members_they_become():
    psro = PSRO(PSROConfig(**{**PRIOR_CODE, "variant": "p-psro", "init": "fusion", "iterations": 6,
                              "exploitability_prior_code": False}))
    rows = [row.to_json() for row in psro.run()]
    paths = learner_paths(rows, "fusion")
    population = psro.state.populations[0]
    fixed = population[1: len(population) - len(psro.variant.active[0])]  # after the initial point
    joined = [p for p in paths if p.joined]
    np.testing.assert_array_equal(np.stack([p.points[-1] for p in joined]), np.stack([m.policy for m in fixed]))
    # One learner freezes per iteration after training as many iterations as there are learners
    # (those of the first iteration: their slot + 1).
    assert [len(p.points) for p in joined] == [1, 2, 3, 3, 3, 3]
    assert all(p.init == "fusion" for p in paths)
    plain = learner_paths([row.to_json() for row in PSRO(PSROConfig(game="mixture", iterations=3)).run()], "normal")
    assert [(p.iteration, len(p.points), p.joined) for p in plain] == [(1, 1, True), (2, 1, True), (3, 1, True)]


def test_start_statistics_measure_distances_to_centres_and_repeated_points():
    centres = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0]])
    path = lambda start, end: LearnerPath(1, "fusion", np.array(start), [np.array(end)], joined=True)  # noqa: E731
    paths = [path([1.0, 0.2], [2.0, 2.0]), path([0.0, 0.0], [2.0, 2.0]), path([-1.0, 0.0], [2.0, 2.005]),
             path([0.0, 2.0], [5.0, 5.0])]
    stats = start_statistics(paths, centres)
    assert stats["starts"] == 4 and stats["joined"] == 4
    assert stats["start_distance_mean"] == pytest.approx((0.2 + 1.0 + 0.0 + 1.0) / 4)
    assert stats["starts_within_0.5"] == 0.5
    assert (stats["repeated_identical"], stats["repeated_near"]) == (1, 2)


# ---------------------------------------------------------------------------- pipeline diversity variants


@pytest.mark.parametrize("variant", ["p-dpp", "p-bdrd", "p-psd"])
@pytest.mark.parametrize("population", ["per-player", "symmetric"])
def test_pipeline_diversity_variants_measure_each_learner_against_the_members_below_it(variant, population):
    psro = PSRO(PSROConfig(game="mixture", variant=variant, init="fusion", population=population, iterations=2,
                           variant_options={"learners": 3, "max_iterations": 1}, oracle_options={"steps": 10}))
    seen = []
    measure = psro.diversity_term

    def recording(player, seed, **view):
        term = measure(player, seed, **view)
        seen.append((player, len(term.own_population), len(term.opponent_population), term.own_payoffs.shape))
        return term

    psro.diversity_term = recording
    row = psro.step()
    # Iteration 1: one initial member below three learners; learner s sees 1 + s members a side.
    players = psro.players
    assert seen == [(p, 1 + s, 1 + s, (1 + s, 1 + s)) for p in players for s in range(3)]
    assert all("diversity" in entry for entry in row.oracle if entry)
    assert psro.run()[-1].exploitability >= 0


def test_the_recorded_command_reruns_the_prior_code_settings():
    from fusion_psro.cli import _config_from_args, build_parser
    from fusion_psro.experiments.runner import run_command

    config = PSROConfig(**{**PRIOR_CODE, "variant": "p-psd", "init": "fusion"}).resolved()
    command = run_command(config, "somewhere")
    assert "--exploitability-prior-code" in command and "--meta-solver-option" in command
    args = build_parser("run").parse_args(command[1:])
    assert _config_from_args(args).resolved() == config
