"""Run directories and the `fusion-psro run` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fusion_psro.cli import main
from fusion_psro.evaluation import evaluate_mixture
from fusion_psro.experiments import (
    RunDirectoryError,
    load_population_policies,
    prepare_run_directory,
    read_metrics,
    run_psro,
)
from fusion_psro.games import compile_game
from fusion_psro.psro import PSROConfig


def test_run_writes_config_metrics_and_population(tmp_path):
    out = tmp_path / "run"
    rows = run_psro(PSROConfig(game="kuhn_poker", iterations=5, seed=3), out, progress=False)
    config = json.loads((out / "config.json").read_text())
    assert config["psro"]["iterations"] == 5 and config["psro"]["seed"] == 3
    assert config["psro"]["meta_solver"] == "nash"  # resolved defaults are recorded
    assert config["game_string"] == "kuhn_poker()"
    assert config["versions"]["open_spiel"] == "2.0.2"
    metrics = read_metrics(out)
    assert metrics == json.loads(json.dumps([row.to_json() for row in rows]))
    for row in metrics:
        assert {"iteration", "exploitability", "nash_conv", "wall_s", "episodes", "fusion_s"} <= set(row)
    # The saved population reproduces the last recorded exploitability exactly.
    compiled = compile_game("kuhn_poker")
    populations = [load_population_policies(out, p) for p in range(2)]
    assert [len(p) for p in populations] == metrics[-1]["population_sizes"]
    sigma = [np.array(s) for s in metrics[-1]["meta_strategies"]]
    assert evaluate_mixture(compiled, populations, sigma).exploitability == pytest.approx(metrics[-1]["exploitability"], abs=1e-12)


def test_existing_runs_are_never_overwritten_silently(tmp_path):
    out = tmp_path / "run"
    run_psro(PSROConfig(game="kuhn_poker", iterations=2), out, progress=False)
    before = (out / "metrics.jsonl").read_text()
    # The same finished run again: nothing runs, the recorded metrics come back.
    rows = run_psro(PSROConfig(game="kuhn_poker", iterations=2), out, progress=False)
    assert [row.to_json() for row in rows] == read_metrics(out)
    (out / "population" / "player0.npz").unlink()  # no longer finished
    with pytest.raises(RunDirectoryError, match="already holds a run with this exact configuration"):
        run_psro(PSROConfig(game="kuhn_poker", iterations=2), out, progress=False)
    with pytest.raises(RunDirectoryError, match="holds a different run \\(iterations: 2 there, 3 now\\)"):
        run_psro(PSROConfig(game="kuhn_poker", iterations=3), out, progress=False)
    assert (out / "metrics.jsonl").read_text() == before
    run_psro(PSROConfig(game="kuhn_poker", iterations=3), out, overwrite=True, progress=False)
    assert len(read_metrics(out)) == 3


def test_foreign_directory_is_refused_and_kept(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="holds no run \\(found: notes.txt\\)"):
        prepare_run_directory(tmp_path, {"psro": {}})
    prepare_run_directory(tmp_path, {"psro": {}}, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # --overwrite removes only run files


def test_bad_config_fails_before_the_directory_is_touched(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="does not apply to the exact oracle"):
        run_psro(PSROConfig(game="kuhn_poker", init="fusion"), out, progress=False)
    assert not out.exists()


def test_cli_run(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["run", "--game", "kuhn_poker", "--iterations", "12", "--out", str(out), "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert "12 iterations, exploitability 0.000000" in summary
    assert read_metrics(out)[-1]["exploitability"] < 1e-3
    assert main(["run", "--game", "kuhn_poker", "--iterations", "12", "--out", str(out), "--quiet"]) == 0
    assert "12 iterations, exploitability 0.000000" in capsys.readouterr().out  # finished: reported, not rerun
    assert main(["run", "--game", "kuhn_poker", "--iterations", "13", "--out", str(out), "--quiet"]) == 2
    assert "holds a different run" in capsys.readouterr().err
    assert main(["run", "--game", "kuhn_poker", "--init", "inherit", "--out", str(tmp_path / "x")]) == 2
    assert "does not apply to the exact oracle" in capsys.readouterr().err
    assert main(["run", "--game", "no_such_game", "--out", str(tmp_path / "y")]) == 2
    assert "unknown game 'no_such_game'" in capsys.readouterr().err


def test_cli_rejects_unknown_choices(capsys):
    for argv in (["run", "--variant", "foo", "--out", "x"], ["run", "--meta-solver", "foo", "--out", "x"],
                 ["run", "--oracle", "foo", "--out", "x"], ["run", "--init", "foo", "--out", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "invalid choice: 'foo' (choose from" in capsys.readouterr().err


def test_report_groups_seeds_into_methods(tmp_path, capsys):
    for seed in (0, 1):
        for variant in ("psro", "p-psro"):
            run_psro(PSROConfig(game="kuhn_poker", variant=variant, iterations=3, seed=seed),
                     tmp_path / f"{variant}-{seed}", progress=False)
    report_path = tmp_path / "report.md"
    assert main(["report", *map(str, sorted(tmp_path.glob("*-*"))), "--out", str(report_path)]) == 0
    text = report_path.read_text()
    assert "| PSRO | 2 | 3 |" in text and "| P-PSRO | 2 | 3 |" in text
    finals = [read_metrics(tmp_path / f"psro-{s}")[-1]["exploitability"] for s in (0, 1)]
    assert f"{np.mean(finals):.4f} ± {np.std(finals, ddof=1) / np.sqrt(2):.4f}" in text
    assert main(["report", str(tmp_path / "psro-0"), "--out", str(report_path)]) == 2  # never overwritten silently
    assert main(["report", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    rows = run_psro(PSROConfig(game="kuhn_poker", iterations=3), out, progress=False, tensorboard=True)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("exploitability (NashConv / 2)")
    assert [s.step for s in scalars] == [1, 2, 3]
    assert [s.value for s in scalars] == pytest.approx([r.exploitability for r in rows], abs=1e-6)


def test_a_finished_run_recorded_before_a_setting_existed_is_still_recognized(tmp_path):
    """config.json from an earlier version lacks newer settings; their defaults fill in."""
    from fusion_psro.experiments.runner import finished_run_metrics, same_settings

    config = PSROConfig(game="kuhn_poker", iterations=2)
    rows = run_psro(config, tmp_path / "run", progress=False)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    del record["psro"]["diversity_weight"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(record))
    assert finished_run_metrics(tmp_path / "run", config) == rows
    assert run_psro(config, tmp_path / "run", progress=False) == rows  # reported, not recomputed
    assert not same_settings({**record["psro"], "iterations": 3}, config)
    assert not same_settings({**record["psro"], "no_such_setting": 1}, config)


def test_method_labels_name_the_variant_and_leave_out_unset_settings():
    from fusion_psro.experiments.runs import method_label

    varying = ["variant", "init", "diversity_weight", "seed"]
    psd = {"variant": "psd", "init": "fusion", "diversity_weight": 0.1, "seed": 0}
    plain = {"variant": "psro-rn", "init": "normal", "diversity_weight": None, "seed": 0}
    assert method_label(psd, varying) == "Fusion-PSD-PSRO [diversity_weight=0.1, seed=0]"
    assert method_label(plain, varying) == "PSRO-rN (normal init) [seed=0]"
    assert method_label({"variant": "bdrd", "init": None}, []) == "BD&RD-PSRO"


def test_runs_written_before_a_setting_existed_group_with_current_ones(tmp_path):
    from fusion_psro.experiments.runs import group_by_method, load_runs

    for seed in (0, 1):
        run_psro(PSROConfig(game="kuhn_poker", iterations=1, seed=seed), tmp_path / f"s{seed}", progress=False)
    old = tmp_path / "s0" / "config.json"
    record = json.loads(old.read_text())
    del record["psro"]["diversity_weight"]
    old.write_text(json.dumps(record))
    assert len(group_by_method(load_runs([tmp_path / "s0", tmp_path / "s1"]))) == 1
