"""Checkpoints and resume: a killed run continues to the same result as an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import as_if_written_before_manifests, run_killed
from fusion_psro.cli import main
from fusion_psro.experiments import CheckpointError, read_metrics, resume_psro, run_psro
from fusion_psro.psro import PSROConfig

SMALL_DQN = {"hidden_sizes": [32], "num_envs": 32, "min_replay_before_learning": 64, "batch_size": 64}


def _comparable(rows):
    """Metrics without wall-clock numbers (which differ between any two runs)."""
    rows = [row.to_json() if hasattr(row, "to_json") else row for row in rows]  # records or metrics.jsonl rows
    return [{k: v for k, v in row.items() if not k.endswith("_s") and k != "oracle"} for row in rows]


def _config(**changes):
    settings = dict(game="kuhn_poker", oracle="dqn", init="fusion", iterations=6, episodes=400, seed=4,
                    oracle_options=SMALL_DQN)
    settings.update(changes)
    if settings["oracle"] == "exact":  # it has no settings
        settings["oracle_options"] = {}
    return PSROConfig(**settings)


def _learners(variant: str, learners: int) -> dict:
    """The variant options of a pipeline with ``learners`` learners (none for other variants)."""
    return {"learners": learners} if variant == "p-psro" else {}


def _cli_args(config: PSROConfig, out) -> list[str]:
    args = [sys.executable, "-m", "fusion_psro.cli", "run", "--game", config.game, "--oracle", config.oracle,
            "--init", config.init, "--iterations", str(config.iterations), "--episodes", str(config.episodes),
            "--seed", str(config.seed), "--variant", config.variant, "--out", str(out), "--quiet"]
    for key, value in config.oracle_options.items():
        args += ["--oracle-option", f"{key}={json.dumps(value)}"]
    for key, value in config.variant_options.items():
        args += ["--variant-option", f"{key}={json.dumps(value)}"]
    return args


@pytest.mark.parametrize("variant", ["psro", "p-psro"])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, variant):
    config = _config(variant=variant, variant_options=_learners(variant, 2))
    reference = run_psro(config, tmp_path / "reference", progress=False)

    out = tmp_path / "killed"
    rng = random.Random(variant)
    kill_after_rows = rng.randint(1, config.iterations - 2)
    process = subprocess.Popen(_cli_args(config, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= kill_after_rows:
            break
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.3))  # land anywhere inside the next iteration (or its writes)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read().decode()}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "population").exists()

    resumed = resume_psro(out, progress=False)
    assert _comparable(resumed) == _comparable(reference)
    assert _comparable(read_metrics(out)) == _comparable(reference)
    assert (out / "population" / "player0.npz").exists()


def test_corrupted_latest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    config = _config(oracle="exact", init=None, iterations=5, game="leduc_poker")
    reference = run_psro(config, tmp_path / "reference", progress=False)
    out = tmp_path / "run"
    run_killed(config, out, before="population")  # the run died after iteration 5's checkpoint
    (out / "checkpoints" / "iteration-00005.npz").write_bytes(b"\x00garbage")
    with caplog.at_level("WARNING"):
        resumed = resume_psro(out, progress=False)
    assert "skipped unreadable iteration-00005.npz" in caplog.text
    assert _comparable(resumed) == _comparable(reference)


def test_no_usable_checkpoint_is_a_clear_error_and_keeps_the_metrics(tmp_path):
    out = tmp_path / "run"
    run_killed(_config(oracle="exact", init=None, iterations=3), out, before="population")
    for checkpoint in (out / "checkpoints").glob("iteration-*.npz"):
        checkpoint.write_bytes(b"broken")
    before = (out / "metrics.jsonl").read_text()
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        resume_psro(out, progress=False)
    assert (out / "metrics.jsonl").read_text() == before


def test_resume_refuses_another_version(tmp_path):
    out = tmp_path / "run"
    run_psro(_config(oracle="exact", init=None, iterations=2), out, progress=False)
    as_if_written_before_manifests(out)  # that version kept no manifest
    record = json.loads((out / "config.json").read_text())
    record["versions"]["fusion_psro"] = "0.0.1"
    (out / "config.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="written by fusion-psro 0.0.1"):
        resume_psro(out, progress=False)


def test_resume_drops_metrics_written_after_the_checkpoint(tmp_path):
    config = _config(oracle="exact", init=None, iterations=4, game="leduc_poker")
    reference = run_psro(config, tmp_path / "reference", progress=False)
    out = tmp_path / "run"
    # A crash between writing iteration 4's metrics row and the manifest that vouches for it:
    run_killed(config, out, before="manifest", at=4)
    assert len(read_metrics(out)) == 4
    resumed = resume_psro(out, progress=False)
    assert _comparable(resumed) == _comparable(reference)
    assert [r["iteration"] for r in read_metrics(out)] == [1, 2, 3, 4]


def test_only_two_checkpoints_and_the_members_they_use_are_kept(tmp_path):
    out = tmp_path / "run"
    run_psro(_config(iterations=4), out, progress=False)
    names = sorted(p.name for p in (out / "checkpoints").glob("iteration-*.npz"))
    assert names == ["iteration-00003.npz", "iteration-00004.npz"]
    members = list((out / "checkpoints" / "members").glob("*.safetensors"))
    assert len(members) == 2 * 5  # uniform + 4 best responses per player, each written once


def _truncate(path, size):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if size == "half" else size])


@pytest.fixture(scope="module")
def killed_exact_run(tmp_path_factory):
    """An exact-oracle Leduc run of 4 iterations killed before writing its population, and the
    metrics of the same run uninterrupted."""
    config = _config(oracle="exact", init=None, iterations=4, game="leduc_poker")
    root = tmp_path_factory.mktemp("exact")
    rows = run_psro(config, root / "reference", progress=False)
    run_killed(config, root / "run", before="population")
    return root / "run", rows


@pytest.mark.parametrize("size", [0, 10, 100, 1000, "half"])
@pytest.mark.parametrize("damaged", ["checkpoint", "member"])
def test_a_truncated_newest_checkpoint_is_skipped(tmp_path, killed_exact_run, size, damaged, caplog):
    source, reference = killed_exact_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    if damaged == "checkpoint":
        _truncate(out / "checkpoints" / "iteration-00004.npz", size)
    else:
        _truncate(next((out / "checkpoints" / "members").glob("p1-m0004-i00004.safetensors")), size)
    with caplog.at_level("WARNING"):
        resumed = resume_psro(out, progress=False)
    assert "skipped unreadable iteration-00004.npz" in caplog.text
    assert _comparable(resumed) == _comparable(reference)


def test_killed_between_the_checkpoint_and_its_metrics_row(tmp_path, killed_exact_run):
    _, reference = killed_exact_run
    out = tmp_path / "run"
    config = _config(oracle="exact", init=None, iterations=4, game="leduc_poker")
    run_killed(config, out, before="row", at=4)  # checkpoint 4 written, row 4 torn
    assert (out / "checkpoints" / "iteration-00004.npz").exists()
    resumed = resume_psro(out, progress=False)
    assert _comparable(resumed) == _comparable(reference)


@pytest.mark.parametrize("variant", ["psro", "p-psro"])
def test_more_iterations_extend_a_finished_run_as_if_asked_from_the_start(tmp_path, variant, capsys):
    reference = run_psro(_config(variant=variant, variant_options=_learners(variant, 2), iterations=5),
                         tmp_path / "reference",
                         progress=False)
    out = tmp_path / "extended"
    run_psro(_config(variant=variant, variant_options=_learners(variant, 2), iterations=3), out, progress=False)
    assert main(["run", "--resume", str(out), "--iterations", "5", "--quiet"]) == 0
    assert "5 iterations" in capsys.readouterr().out
    assert _comparable(read_metrics(out)) == _comparable(reference)
    assert json.loads((out / "config.json").read_text())["psro"]["iterations"] == 5
    assert main(["run", "--resume", str(out), "--iterations", "4", "--quiet"]) == 2
    assert "has run 5 iterations already" in capsys.readouterr().err
    assert _comparable(resume_psro(out, progress=False)) == _comparable(reference)  # finished: nothing to do
