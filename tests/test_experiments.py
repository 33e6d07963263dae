"""Run directories and the `fusion-psro run` command."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import as_if_written_before_manifests, run_killed
from fusion_psro.cli import main
from fusion_psro.evaluation import evaluate_mixture
from fusion_psro.experiments import (
    RunDirectoryError,
    load_run,
    prepare_run_directory,
    read_metrics,
    resume_psro,
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
    populations = [load_run(out).policies(p) for p in range(2)]
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
    shutil.rmtree(out)
    run_killed(PSROConfig(game="kuhn_poker", iterations=2), out, before="population")  # not finished
    before = (out / "metrics.jsonl").read_text()
    with pytest.raises(RunDirectoryError, match="holds this run, unfinished.*--resume"):
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
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 0  # a directory of runs is a sweep's: its runs, no protocol
    assert "| PSRO | 2 | 3 |" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2  # neither a run nor a directory of runs
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
    as_if_written_before_manifests(tmp_path / "run")
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
    as_if_written_before_manifests(tmp_path / "s0")
    old = tmp_path / "s0" / "config.json"
    record = json.loads(old.read_text())
    del record["psro"]["diversity_weight"]
    old.write_text(json.dumps(record))
    assert len(group_by_method(load_runs([tmp_path / "s0", tmp_path / "s1"]))) == 1


def test_a_second_writer_is_refused_naming_the_live_process(tmp_path, capsys):
    from fusion_psro.experiments.rundir import RunDirectoryBusyError, RunLock

    out = tmp_path / "run"
    config = PSROConfig(game="kuhn_poker", iterations=3)
    run_killed(config, out, before="population")  # unfinished
    before = (out / "metrics.jsonl").read_text()
    with RunLock(out):  # a live run holds the directory (a lock of another open file, as another process's)
        assert json.loads((out / "run.lock").read_text())["pid"] == os.getpid()
        for argv in (["run", "--resume", str(out)],
                     ["run", "--game", "kuhn_poker", "--iterations", "3", "--out", str(out), "--overwrite"]):
            assert main([*argv, "--quiet"]) == 2
            err = capsys.readouterr().err
            assert f"{out} is being written by process {os.getpid()}" in err and err.count("\n") == 1
        with pytest.raises(RunDirectoryBusyError):
            run_psro(config, out, progress=False)
    assert (out / "metrics.jsonl").read_text() == before
    assert not (out / "run.lock").exists()  # released with the run
    resume_psro(out, progress=False)
    assert [r["iteration"] for r in read_metrics(out)] == [1, 2, 3]


def test_two_processes_resuming_one_run_at_once(tmp_path):
    """The second of two `run --resume DIR` is refused while the first runs; the metrics stay 1..N."""
    from fusion_psro.experiments.rundir import RunLock

    out = tmp_path / "run"
    config = PSROConfig(game="kuhn_poker", oracle="dqn", iterations=40, episodes=300,
                        oracle_options={"hidden_sizes": (16,), "num_envs": 32, "min_replay_before_learning": 64,
                                        "batch_size": 64})
    run_psro(dataclasses.replace(config, iterations=1), out, progress=False)
    resume = [sys.executable, "-m", "fusion_psro.cli", "run", "--resume", str(out), "--iterations", "40", "--quiet"]
    first = subprocess.Popen(resume, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(read_metrics(out)) < 2:  # the first is running
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read().decode()
            time.sleep(0.05)
        second = subprocess.run(resume, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"is being written by process {first.pid}" in second.stderr
        assert "fusion_psro.cli run --resume" in second.stderr or "fusion-psro run --resume" in second.stderr
    finally:
        first.kill()
        first.wait()
    rows = read_metrics(out)
    assert [r["iteration"] for r in rows] == list(range(1, len(rows) + 1))
    with RunLock(out):  # the kernel released the killed process's lock: the run can continue
        pass


def test_a_run_stopped_before_its_first_iteration_starts_again(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--game", "kuhn_poker", "--iterations", "2", "--out", str(out), "--quiet"]
    config = PSROConfig(game="kuhn_poker", iterations=2)
    run_killed(config, out, before="row", at=1)  # killed writing its first metrics row
    assert (out / "metrics.jsonl").read_text().startswith('{"')  # the first row cut short
    assert main(argv) == 0, capsys.readouterr().err
    assert [r["iteration"] for r in read_metrics(out)] == [1, 2]
    shutil.rmtree(out)
    run_killed(config, out, before="manifest", at=1)  # its first row written, not yet vouched for
    assert [r.iteration for r in resume_psro(out, progress=False)] == [1, 2]  # resuming it starts it too


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path, monkeypatch):
    from fusion_psro.psro import PSRO

    def fail(self, *args, **kwargs):
        raise RuntimeError("the oracle broke")

    monkeypatch.setattr(PSRO, "step", fail)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "new" / "run", tmp_path / "empty"):
        with pytest.raises(RuntimeError, match="the oracle broke"):
            run_psro(PSROConfig(game="kuhn_poker", iterations=2), out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "notes.txt"]
    assert not any((tmp_path / "empty").iterdir())


def test_a_torn_last_metrics_line_is_what_a_kill_leaves(tmp_path, capsys, caplog):
    out = tmp_path / "run"
    run_psro(PSROConfig(game="kuhn_poker", iterations=3), out, progress=False)
    text = (out / "metrics.jsonl").read_text()
    (out / "metrics.jsonl").write_text(text + text.splitlines()[-1][:25])
    assert len(read_metrics(out)) == 3
    assert "cut short" in caplog.text
    assert main(["report", str(out)]) == 0
    (out / "metrics.jsonl").write_text(text.splitlines()[0][:25] + "\n" + text)  # damage elsewhere: an error
    with pytest.raises(RunDirectoryError, match="line 1 is not a JSON object"):
        read_metrics(out)


def test_report_counts_a_run_once_and_compares_unequal_seeds_where_the_plot_does(tmp_path, capsys):
    first, second = tmp_path / "seed0", tmp_path / "seed1"
    run_psro(PSROConfig(game="kuhn_poker", variant="psro-rn", iterations=4, seed=0), first, progress=False)
    # seed 1 is still running, at iteration 2 (its row 3 written, not yet vouched for)
    run_killed(PSROConfig(game="kuhn_poker", variant="psro-rn", iterations=4, seed=1), second, before="manifest", at=3)
    (tmp_path / "link").symlink_to(first)
    assert main(["report", str(first), str(tmp_path / "link")]) == 0
    assert "| PSRO-rN | 1 | 4 |" in capsys.readouterr().out
    assert main(["report", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    at_two = [read_metrics(d)[1]["exploitability"] for d in (first, second)]
    assert f"| PSRO-rN | 2 | 2 | {np.mean(at_two):.4f} ±" in out
    assert "seeds recorded 4/2 iterations; all are compared at iteration 2" in out


def test_wall_time_includes_checkpoint_writing(tmp_path):
    rows = run_psro(PSROConfig(game="kuhn_poker", iterations=5), tmp_path / "run", progress=False)
    recorded = read_metrics(tmp_path / "run")
    assert all(row["checkpoint_s"] > 0 for row in recorded)
    spent = sum(row["iteration_s"] + row["checkpoint_s"] for row in recorded)
    assert recorded[-1]["wall_s"] >= spent
    assert [row.wall_s for row in rows] == [row["wall_s"] for row in recorded]


def test_settings_a_run_would_ignore_are_refused(tmp_path, capsys):
    from fusion_psro.experiments.runner import unused_settings

    exact = PSROConfig(game="kuhn_poker").resolved()
    assert set(unused_settings(exact, {"episodes", "fusion_start", "iterations"})) == {"episodes", "fusion_start"}
    fusion = PSROConfig(game="kuhn_poker", oracle="dqn", init="fusion").resolved()
    assert unused_settings(fusion, {"episodes", "fusion_start", "fusion_fallback"}) == {}


def test_target_exploitability_stops_the_run_and_is_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    full = run_psro(PSROConfig(game="kuhn_poker", iterations=12), tmp_path / "full", progress=False)
    target = full[4].exploitability
    stop = next(r.iteration for r in full if r.exploitability <= target)
    argv = ["run", "--game", "kuhn_poker", "--iterations", "12", "--target-exploitability", repr(target),
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert f"{stop} iterations (target exploitability reached)" in capsys.readouterr().out
    rows = read_metrics(out)
    assert len(rows) == stop and rows[-1]["target_reached"] is True
    assert "target_reached" not in rows[-2]
    assert main(argv) == 0  # finished: reported, not rerun
    assert read_metrics(out) == rows


def test_progress_inside_an_iteration_reaches_the_caller():
    from fusion_psro.psro import PSRO

    psro = PSRO(PSROConfig(game="kuhn_poker", oracle="dqn", iterations=1, episodes=96,
                           oracle_options={"hidden_sizes": (8,), "num_envs": 32, "min_replay_before_learning": 32,
                                           "batch_size": 32}))
    seen = []
    psro.on_progress = lambda done, total: seen.append((done, total))
    psro.run()
    assert seen[-1] == (96, 96) and len(seen) >= 2 * 3  # each player's response, after every batched step


def test_report_compares_each_fusion_method_with_its_other_inits_by_welch_intervals():
    """The interval is checked against Welch's formula written out (Welch-Satterthwaite df)."""
    from scipy import stats

    from fusion_psro.experiments.report import fusion_differences_table
    from fusion_psro.experiments.runs import RunSummary

    finals = {("psro", "normal"): [0.40, 0.35, 0.38], ("psro", "fusion"): [0.20, 0.26, 0.22, 0.25],
              ("psro-rn", "normal"): [1.0, 1.2], ("p-psro", "fusion"): [0.5, 0.6]}  # no partner: no row
    runs = [RunSummary(Path(f"{variant}-{init}-{seed}"), {"game": "leduc_poker", "variant": variant, "init": init,
                                                           "seed": seed, "fusion_start": 1 if init == "fusion" else None},
                       [{"iteration": 1, "exploitability": value, "wall_s": 1.0, "episodes": 0}])
            for (variant, init), values in finals.items() for seed, value in enumerate(values)]
    rows = [line for line in fusion_differences_table(runs).splitlines()[2:]]
    assert len(rows) == 1
    a, b = np.array(finals[("psro", "normal")]), np.array(finals[("psro", "fusion")])
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    diff = a.mean() - b.mean()
    assert f"| 3 / 4 | {diff:+.4f} | [{diff - half:+.4f}, {diff + half:+.4f}] |" in rows[0]
    assert fusion_differences_table([r for r in runs if r.settings["init"] == "fusion"]) is None
    for run in runs:  # games without an exact exploitability (sampled play) record NaN: no interval
        run.rows[0]["exploitability"] = float("nan")
    assert fusion_differences_table(runs) is None


def test_wall_time_leaves_out_the_approximate_evaluation(tmp_path, monkeypatch):
    """``--eval approx`` is timed in ``approx_s``; ``wall_s`` is the run's own time (checkpoints included)."""
    from fusion_psro.experiments import runner

    def slow_evaluation(psro, row):
        time.sleep(2.0)
        row.extra["approx_s"] = 2.0

    monkeypatch.setattr(runner, "evaluate_during_run", slow_evaluation)
    rows = run_psro(PSROConfig(game="kuhn_poker", iterations=2), tmp_path / "run", progress=False)
    assert [row.extra["approx_s"] for row in rows] == [2.0, 2.0]
    assert rows[-1].wall_s < 2.0, rows[-1].wall_s


def test_files_written_atomically_get_the_permissions_of_a_plain_open(tmp_path):
    """mkstemp makes its files 0600; a run's config must be readable as any other file the user writes."""
    from fusion_psro.files import atomic_path, write_json_atomic

    umask = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # nothing half-written left behind
