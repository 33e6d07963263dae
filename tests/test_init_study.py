"""The initialization study: rebuilt states, paired cells, exact measurements, resume, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fusion_psro.cli import main
from fusion_psro.evaluation import mixture_best_response, mixture_plan, realization_plans
from fusion_psro.evaluation.sequence_form import sequence_form
from fusion_psro.experiments import run_psro
from fusion_psro.experiments.init_study import (
    StudyError,
    StudySettings,
    cell_seed,
    load_study,
    parse_iterations,
    plan_study,
    run_study,
)
from fusion_psro.experiments.init_study_report import paired_difference, write_study_report
from fusion_psro.experiments.results import load_run
from fusion_psro.psro import PSROConfig

SMALL_DQN = {"hidden_sizes": (16,), "num_envs": 32, "min_replay_before_learning": 64, "batch_size": 32,
             "replay_capacity": 2000}


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "run"
    run_psro(PSROConfig(game="kuhn_poker", oracle="dqn", init="fusion", iterations=4, episodes=300, seed=1,
                        oracle_options=SMALL_DQN), out, progress=False)
    return out


def test_cells_are_measured_exactly_and_share_their_random_numbers(source_run, tmp_path):
    settings = StudySettings(budgets=(100, 300), seed=2)
    cells = plan_study([source_run], ["normal", "fusion", "inherit"], at=(3,), repeats=2)
    assert len(cells) == 1 * 2 * 3 * 2
    assert len({cell_seed(settings, c) for c in cells if c.player == 0 and c.repeat == 1}) == 1  # shared across inits
    summary = run_study(cells, settings, tmp_path / "study", workers=1, progress=False)
    assert summary == {"cells": 12, "skipped": 0, "ran": 12, "failed": []}
    records = load_study(tmp_path / "study")
    run = load_run(source_run)
    sigma = run.meta_strategies(3)
    populations = run.population_at(3)
    for record in records:
        player = record["player"]
        opponents = np.stack([m.policy for m in populations[1 - player]])
        best = mixture_best_response(run_compiled(run), player, opponents, sigma[1 - player]).value
        assert [m["budget"] for m in record["measurements"]] == [0, 100, 300]
        for m in record["measurements"]:
            assert m["best_response_value"] == pytest.approx(best, abs=1e-12)
            assert m["gap"] == pytest.approx(best - m["value"], abs=1e-12) and m["gap"] >= -1e-12
            assert len(m["dead_relu"]) == 1 and m["parameter_norm"] > 0
        assert record["measurements"][0]["training_return"] is None
    # Fusion at budget 0 is the fused network: its value is the fused start's exact value.
    from fusion_psro.psro import fuse_parameters
    from fusion_psro.psro.loop import make_oracle
    from fusion_psro.psro.spaces import make_space

    config = run.config.resolved()
    oracle = make_oracle(config, make_space(config))
    own = [m for m in populations[0] if m.parameters is not None]
    weights = np.array([w for m, w in zip(populations[0], sigma[0]) if m.parameters is not None])
    fused = fuse_parameters([m.parameters for m in own], weights / weights.sum())
    compiled = run_compiled(run)
    opponent = mixture_plan(compiled, 1, np.stack([m.policy for m in populations[1]]), sigma[1])
    value = realization_plans(compiled, 0, oracle.greedy_policy(0, fused)) @ (sequence_form(compiled).matrices[0] @ opponent)
    fusion = next(r for r in records if r["init"] == "fusion" and r["player"] == 0 and r["repeat"] == 0)
    assert fusion["init_used"] == "fusion"
    assert fusion["measurements"][0]["value"] == pytest.approx(float(value), abs=1e-12)


def run_compiled(run):
    from fusion_psro.games import compile_game

    return compile_game(run.config.game)


def test_a_study_resumes_and_reports(source_run, tmp_path):
    settings = StudySettings(budgets=(100,), seed=0)
    cells = plan_study([source_run], ["normal", "fusion"], at=(3, 4), repeats=1)
    first = run_study(cells, settings, tmp_path / "study", workers=1, progress=False, shard=(0, 2))
    assert first["ran"] == len(cells[0::2])
    second = run_study(cells, settings, tmp_path / "study", workers=1, progress=False)
    assert second["skipped"] == first["ran"] and second["ran"] == len(cells) - first["ran"]
    report, figures = write_study_report(tmp_path / "study")
    text = report.read_text()
    assert "Paired differences against fusion" in text and figures[0].stat().st_size > 5000
    assert f"{len(cells)} cells. Compute time of the {len(cells)} timed cells" in text
    with pytest.raises(StudyError, match="holds a study with"):
        run_study(cells, StudySettings(budgets=(200,)), tmp_path / "study", workers=1, progress=False)


def test_the_report_splits_units_by_the_source_runs_init(tmp_path, monkeypatch):
    from fusion_psro.experiments import init_study_report

    def cell(run, source, init, gap):
        return {"game": "g", "run_key": run, "source": {"init": source}, "iteration": 3, "player": 0, "init": init,
                "repeat": 0, "fusion_equals_inherit": False, "measurements": [{"budget": 0, "gap": gap, "value": 0.0}]}

    cells = [cell("a", "normal", "normal", 1.0), cell("a", "normal", "fusion", 0.5),
             cell("b", "fusion", "normal", 1.0), cell("b", "fusion", "fusion", 2.0)]
    monkeypatch.setattr(init_study_report, "load_study", lambda out: cells)
    monkeypatch.setattr(init_study_report, "plot_gaps", lambda rows, prefix: [prefix.with_suffix(".png")])
    text = write_study_report(tmp_path)[0].read_text()
    by_normal = text.split("states from runs with init normal (1 unit)")[1].split("###")[0]
    by_fusion = text.split("states from runs with init fusion (1 unit)")[1].split("###")[0]
    assert "| normal | 0 | 1 (1) | +0.500 | – | – | – | 1 / 0 / 0 |" in by_normal  # one run: no interval
    assert "| normal | 0 | 1 (1) | -1.000 | – | – | – | 0 / 1 / 0 |" in by_fusion
    assert "2 units (state x player) from 2 runs, 1 repeat;" in text
    assert "Fusion differs from inherit in every unit" in text and "units where fusion differs from inherit\n" not in text
    cells[2]["measurements"][0]["gap"] = 2.0 - 1e-15  # a difference of -1e-15 prints as +0.000, not -0.000
    text = write_study_report(tmp_path)[0].read_text()
    assert "| normal | 0 | 1 (1) | +0.000 | – | – | – | 0 / 0 / 1 |" in text and "-0.000" not in text
    single = [c for c in cells if c["run_key"] == "a"]
    monkeypatch.setattr(init_study_report, "load_study", lambda out: single)
    assert "states from runs with init" not in write_study_report(tmp_path)[0].read_text()


def test_paired_difference_counts_and_interval():
    rows = [{"run": f"r{i % 2}", "iteration": i, "player": 0, "init": init, "gap": gap}
            for i, (a, b) in enumerate([(1.0, 0.5), (2.0, 1.0), (0.5, 0.5), (1.0, 1.5)])
            for init, gap in (("normal", a), ("fusion", b))]
    d = paired_difference(rows, "normal")
    assert (d["n"], d["runs"], d["fusion_wins"], d["fusion_loses"], d["ties"]) == (4, 2, 2, 1, 1)
    assert d["mean"] == pytest.approx(0.25) and d["low"] < 0.25 < d["high"] and 0 < d["p"] <= 1
    differences = np.array([0.5, 1.0, 0.0, -0.5])
    t = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    assert (d["t_low"], d["t_high"]) == pytest.approx((t.low, t.high))


def test_the_init_study_interval_is_clustered_by_source_run(tmp_path, monkeypatch):
    """Units nested in runs: every unit of a run shares the run's effect, so the clustered
    interval is wider than the t interval over units; the table's p-values are Holm-adjusted."""
    from fusion_psro.experiments import init_study_report
    from fusion_psro.experiments.statistics import holm

    rng = np.random.default_rng(0)
    effects = {"a": 0.3, "b": -0.2, "c": 0.1, "d": 0.4}
    rows = []
    for run, effect in effects.items():
        for iteration in range(10):
            difference = effect + rng.normal(0, 0.02)
            for init, gap in (("normal", 1.0 + difference), ("fusion", 1.0), ("inherit", 1.0 + difference / 2)):
                rows.append({"run": run, "iteration": iteration, "player": 0, "init": init, "gap": gap, "budget": 0})
    d = paired_difference(rows, "normal")
    assert (d["n"], d["runs"]) == (40, 4)
    assert d["high"] - d["low"] > 2 * (d["t_high"] - d["t_low"])  # about sqrt(10 units per run) wider
    table = init_study_report._differences_table(rows, ["fusion", "inherit", "normal"], [0])
    assert "Holm-adjusted over the 2 rows of this table" in table[0]
    p_values = [paired_difference(rows, init)["p"] for init in ("inherit", "normal")]
    for line, adjusted in zip(table[4:], holm(p_values)):
        assert f"| {adjusted:.3f} |" in line


@pytest.mark.parametrize(("args", "message"), [
    (["--budgets", "0,100"], "budgets must be positive integers"),
    (["--inits", "xavier"], "unknown init 'xavier'"),
    (["--at", "9"], "never reached iteration 9"),
    (["--at", "a-b"], "--at takes iterations like"),
    (["--repeats", "0"], "repeats must be an integer >= 1"),
    (["--init-option", "shrink=0.5", "--inits", "fusion"], "belongs to none of the inits"),
])
def test_bad_input_is_a_one_line_error(source_run, tmp_path, capsys, args, message):
    assert main(["init-study", str(source_run), "--out", str(tmp_path / "s"), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_runs_that_cannot_be_studied(tmp_path, capsys):
    exact = tmp_path / "exact"
    run_psro(PSROConfig(game="kuhn_poker", iterations=3), exact, progress=False)
    assert main(["init-study", str(exact), "--out", str(tmp_path / "s"), "--quiet"]) == 2
    assert "accepted: runs of dqn" in capsys.readouterr().err
    assert main(["init-study", str(tmp_path), "--out", str(tmp_path / "s2"), "--quiet"]) == 2
    assert "not a fusion-psro run directory" in capsys.readouterr().err


def test_parse_iterations():
    assert parse_iterations("5,3-4, 10") == (3, 4, 5, 10)
    with pytest.raises(StudyError):
        parse_iterations("0")


def test_compute_time_is_written_in_the_unit_that_shows_it():
    from fusion_psro.experiments.init_study_report import duration

    assert [duration(s) for s in (12.4, 750, 11_520)] == ["12 s", "12.5 min", "3.20 h"]  # never "0.00 h"
