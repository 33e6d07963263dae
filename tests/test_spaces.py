"""PSRO on the mixture game (policy spaces), the diversity variants in the loop, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from fusion_psro.cli import main
from fusion_psro.experiments import read_metrics, resume_psro, run_psro
from fusion_psro.experiments.plots import PlotError
from fusion_psro.experiments.trajectories import plot_mixture_trajectories
from fusion_psro.games.mixture import MixtureGame
from fusion_psro.psro import PSRO, ConfigError, PSROConfig
from fusion_psro.psro.spaces import MixtureMetaGame, make_space

VARIANTS = ["psro", "psro-rn", "p-psro", "dpp", "bdrd", "psd"]


def test_mixture_meta_game_is_the_payoff_matrix_of_the_points():
    game = MixtureGame()
    rng = np.random.default_rng(0)
    points = [rng.normal(size=(4, 2)) * 2, rng.normal(size=(3, 2)) * 2]
    meta = MixtureMetaGame(game)
    for k in range(4):  # interleaved, as the loop adds them
        meta.add(0, points[0][k])
        if k < 3:
            meta.add(1, points[1][k])
    np.testing.assert_allclose(meta.matrix, game.payoff_matrix(points[0], points[1]), atol=1e-12)
    np.testing.assert_allclose(meta.payoffs(1), game.payoff_matrix(points[1], points[0]), atol=1e-12)
    moved = np.array([0.5, -1.0])
    meta.replace(1, 2, moved)
    points[1][2] = moved
    np.testing.assert_allclose(meta.matrix, game.payoff_matrix(points[0], points[1]), atol=1e-12)
    restored = MixtureMetaGame.restore(game, [list(points[0]), list(points[1])], meta.matrix)
    np.testing.assert_array_equal(restored.matrix, meta.matrix)
    np.testing.assert_allclose(restored.mixed_plan(0, np.full(4, 0.25)), game.mixture_activation(points[0], np.full(4, 0.25)))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("init", ["normal", "fusion"])
def test_every_variant_and_init_runs_on_the_mixture_game_with_exact_numbers(variant, init):
    psro = PSRO(PSROConfig(game="mixture", variant=variant, init=init, iterations=4, seed=1,
                           oracle_options={"steps": 20}))
    rows = psro.run()
    state = psro.state
    points = [np.stack([m.policy for m in state.populations[p]]) for p in range(2)]
    game = psro.space.game
    # The meta-game is the payoff matrix of the points; exploitability is the exact one.
    np.testing.assert_allclose(state.meta_game.matrix, game.payoff_matrix(points[0], points[1]), atol=1e-12)
    sigma = [np.array(s) for s in rows[-1].meta_strategies]
    nash_conv = game.nash_conv(points[0], sigma[0], points[1], sigma[1])
    assert rows[-1].nash_conv == pytest.approx(nash_conv, abs=1e-12)
    assert rows[-1].exploitability == pytest.approx(nash_conv / 2, abs=1e-12)
    assert all(row.exploitability >= -1e-9 for row in rows)
    if variant in ("dpp", "bdrd", "psd"):
        assert all("diversity" in entry for entry in rows[-1].oracle)


def test_fusion_starts_each_best_response_from_the_meta_nash_mean_of_the_own_points():
    psro = PSRO(PSROConfig(game="mixture", init="fusion", iterations=5, seed=2))
    previous_sigma = [np.ones(1), np.ones(1)]
    for _ in range(5):
        points = [np.stack([m.policy for m in psro.state.populations[p]]) for p in range(2)]
        row = psro.step()
        assert row.inits == ["fusion", "fusion"]
        for player, entry in enumerate(row.oracle):
            np.testing.assert_allclose(entry["start"], previous_sigma[player] @ points[player], atol=1e-12)
        previous_sigma = [np.array(s) for s in row.meta_strategies]


@pytest.mark.parametrize("init", ["normal", "fusion"])
def test_same_seed_same_run_and_seeds_differ(init):
    # With fusion every start is a function of the population, so seeds differ only
    # through the seeded initial points.
    def final(seed):
        return PSRO(PSROConfig(game="mixture", init=init, iterations=3, seed=seed)).run()[-1].exploitability

    assert final(0) == final(0)
    assert final(0) != final(1)


def test_mixture_run_resumes_to_the_uninterrupted_result(tmp_path):
    config = PSROConfig(game="mixture", variant="psd", init="fusion", iterations=6, seed=3)
    whole = run_psro(config, tmp_path / "whole", progress=False)
    run_psro(PSROConfig(**{**config.__dict__, "iterations": 3}), tmp_path / "part", progress=False)
    # Continue the 3-iteration run as if it had been killed with 3 to go: extended to 6.
    resumed = resume_psro(tmp_path / "part", iterations=6, progress=False)
    assert [r.exploitability for r in resumed] == [r.exploitability for r in whole]
    assert [r["meta_strategies"] for r in read_metrics(tmp_path / "part")] == [r.meta_strategies for r in whole]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(game="mixture", oracle="dqn"), "accepted: gradient"),
        (dict(game="kuhn_poker", oracle="gradient"), "does not apply to 'kuhn_poker' .a tabular OpenSpiel game.; accepted: exact, dqn"),
        (dict(game="mixture", init="orthogonal"), "accepted: normal, inherit, fusion"),
        (dict(game="mixture", variant="psd", diversity_weight=-0.5), "diversity_weight must be a finite number >= 0"),
        (dict(game="mixture", variant="psro", diversity_weight=0.5), "applies to the variants with a diversity term"),
        (dict(game="kuhn_poker", variant="psd"), "Use --oracle dqn"),
        (dict(game="kuhn_poker", variant="bdrd"), "exact oracle supports none. Use --oracle dqn"),
        (dict(game="mixture", oracle_options={"momentum": 0.9}), "accepted: lr, start_scale, steps"),
        (dict(game="mixture", oracle_options={"lr": -1.0}), "lr must be a positive finite number"),
    ],
)
def test_bad_settings_name_what_is_accepted(settings, message):
    with pytest.raises(ConfigError, match=message):
        PSRO(PSROConfig(**settings))


def test_cli_runs_the_mixture_game_and_draws_the_trajectory_figure(tmp_path, capsys):
    for init in ("normal", "fusion"):
        assert main(["run", "--game", "mixture", "--init", init, "--iterations", "3", "--gradient-steps", "30",
                     "--variant", "dpp", "--diversity-weight", "0.2", "--out", str(tmp_path / init), "--quiet"]) == 0
    config = read_metrics(tmp_path / "fusion")
    assert config[-1]["oracle"][0]["steps"] == 30
    assert main(["plot", str(tmp_path / "normal"), str(tmp_path / "fusion"), "--trajectories",
                 "--out", str(tmp_path / "trajectory")]) == 0
    assert (tmp_path / "trajectory.png").stat().st_size > 10_000
    assert (tmp_path / "trajectory.svg").exists()
    # Never overwritten without asking; non-mixture runs are refused with the reason.
    with pytest.raises(PlotError, match="--overwrite"):
        plot_mixture_trajectories([tmp_path / "normal"], tmp_path / "trajectory")
    assert main(["run", "--game", "kuhn_poker", "--iterations", "1", "--out", str(tmp_path / "kuhn"), "--quiet"]) == 0
    with pytest.raises(PlotError, match="trajectory figure is for the mixture game"):
        plot_mixture_trajectories([tmp_path / "kuhn"], tmp_path / "other")
    capsys.readouterr()
    assert main(["run", "--game", "mixture", "--variant", "psd", "--diversity-weight", "-1",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "diversity_weight must be a finite number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_evaluate_and_compile_commands_accept_the_mixture_game(capsys):
    assert main(["evaluate", "--game", "mixture", "--population", "5"]) == 0
    out = capsys.readouterr().out
    assert "5x5" in out and "exploitability" in out and "NashConv" in out
    assert main(["compile", "mixture"]) == 0
    assert "nothing to compile" in capsys.readouterr().out


def test_spaces_ask_the_oracle_hooks_not_its_option_names():
    from fusion_psro.oracles import Oracle
    from fusion_psro.psro.sampled_space import network_hidden_sizes
    from fusion_psro.registry import ORACLES

    wide = make_space(PSROConfig(game="mixture", oracle_options={"start_scale": 0.5}).resolved())
    narrow = make_space(PSROConfig(game="mixture").resolved())
    np.testing.assert_allclose(wide.initial_policy(0), 5 * narrow.initial_policy(0), rtol=1e-12)
    assert network_hidden_sizes(PSROConfig(game="kuhn_poker", oracle="dqn", oracle_options={"hidden_sizes": [8]})) == (8,)
    assert network_hidden_sizes(PSROConfig(game="kuhn_poker", oracle="pg")) == (256, 256, 256)

    class Tabulated(Oracle):
        """Serves sampled play but declares no member networks (the default hook)."""

        game_kinds = ("sampled",)

        def best_response(self, request):
            raise NotImplementedError

    ORACLES.register("no-networks", Tabulated)
    try:
        with pytest.raises(ConfigError, match="the no-networks oracle's members are no networks"):
            network_hidden_sizes(PSROConfig(game="kuhn_poker", oracle="no-networks"))
    finally:
        ORACLES.unregister("no-networks")
