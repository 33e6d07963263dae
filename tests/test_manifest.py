"""Run directories that prove their own integrity: damaged or edited files end in one line, never wrong numbers.

Each test damages a finished run the way a copy, a sync or a hand edit would, and checks
that every reader (``report``, ``plot``, ``export``, ``match``, ``load_run``, ``--resume``)
refuses it with a one-line error naming the file (exit 2 at the command line, a
:class:`RunIntegrityError` in the API), that ``repair`` restores what the checkpoint holds,
and that the manifest keeps up with live runs, kills and runs written before it existed.
"""

from __future__ import annotations

import errno
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
from fusion_psro.errors import FusionPSROError
from fusion_psro.experiments import RunDirectoryError, RunIntegrityError, load_run, resume_psro, run_psro
from fusion_psro.experiments.manifest import MANIFEST_FILE, open_run
from fusion_psro.experiments.repair import repair_run
from fusion_psro.experiments.results import export_meta_game, match_runs
from fusion_psro.experiments.runs import load_runs
from fusion_psro.psro import PSROConfig

PG = PSROConfig(game="kuhn_poker", oracle="pg", iterations=4, seed=3, oracle_options={"steps": 5})
EXACT = PSROConfig(game="kuhn_poker", iterations=4, seed=1)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    return {"pg": (root / "pg", run_psro(PG, root / "pg", progress=False)),
            "exact": (root / "exact", run_psro(EXACT, root / "exact", progress=False))}


@pytest.fixture
def run(sources, tmp_path):
    """A fresh copy of the finished pg run (4 iterations, members with parameters)."""
    out = tmp_path / "run"
    shutil.copytree(sources["pg"][0], out)
    return out


def _one_line_error(capsys, argv, *needles):
    """``main(argv)`` exits 2 with one line on stderr naming each of ``needles``; returns that line."""
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("fusion-psro: error:")]
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not captured.out.strip() or "exploitability" not in captured.out
    return lines[0]


def _every_reader_refuses(capsys, run: Path, other: Path, tmp_path: Path, *needles, report: bool = True):
    with pytest.raises(RunIntegrityError):
        load_run(run)
    _one_line_error(capsys, ["match", str(run), str(other)], *needles)
    _one_line_error(capsys, ["export", str(run), "--meta-game", "--out", str(tmp_path / "export")], *needles)
    assert not (tmp_path / "export" / "meta_game.csv").exists()
    _one_line_error(capsys, ["run", "--resume", str(run), "--quiet"], *needles)
    _one_line_error(capsys, ["run", "--resume", str(run), "--iterations", "6", "--quiet"], *needles)
    if report:
        _one_line_error(capsys, ["report", str(run)], *needles)
        _one_line_error(capsys, ["plot", str(run), "--out", str(tmp_path / "plot")], *needles)


def test_a_finished_run_vouches_for_every_file_it_keeps(run, sources):
    manifest = json.loads((run / MANIFEST_FILE).read_text())
    on_disk = sorted(p.relative_to(run).as_posix() for p in run.rglob("*")
                     if p.is_file() and p.parent.name in ("population", "checkpoints", "members"))
    assert sorted(manifest["files"]) == on_disk
    assert manifest["finished"] and manifest["rows"] == 4 and manifest["members"] == [5, 5]
    files = open_run(run)
    assert [row["iteration"] for row in files.rows] == [1, 2, 3, 4]
    assert load_run(run).records[-1].exploitability == sources["pg"][1][-1].exploitability


def test_1_a_swapped_member_is_refused_by_every_reader(run, sources, tmp_path, capsys):
    path = run / "population" / "player0.npz"
    with np.load(path) as data:
        policies, origins = data["policies"].copy(), data["origins"]
    policies[2] = policies[0]  # still a valid population file
    np.savez_compressed(path, policies=policies, origins=origins)
    _every_reader_refuses(capsys, run, sources["exact"][0], tmp_path, "player0.npz", "manifest.json", report=False)


def test_2_random_floats_in_a_member_file_are_refused(run, sources, tmp_path, capsys):
    path = run / "population" / "player1_member002.safetensors"
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(0)
    data[header:] = rng.uniform(-2e38, 2e38, (len(data) - header) // 4).astype(np.float32).tobytes()
    path.write_bytes(bytes(data))
    _every_reader_refuses(capsys, run, sources["exact"][0], tmp_path, "player1_member002.safetensors", report=False)


def test_3_a_deleted_member_file_is_refused_not_read_as_none(run, sources, tmp_path, capsys):
    (run / "population" / "player0_member003.safetensors").unlink()
    _every_reader_refuses(capsys, run, sources["exact"][0], tmp_path, "player0_member003.safetensors", "missing",
                          report=False)


def test_4_flipped_bytes_in_a_checkpoint_member_stop_an_extension(run, capsys):
    path = run / "checkpoints" / "members" / "p0-m0001-i00001.safetensors"  # used by both kept checkpoints
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    before = (run / "metrics.jsonl").read_bytes()
    _one_line_error(capsys, ["run", "--resume", str(run), "--iterations", "6", "--quiet"],
                    "p0-m0001-i00001.safetensors")
    assert (run / "metrics.jsonl").read_bytes() == before


@pytest.mark.parametrize("cut", ["last row", "last 3 rows", "middle of row 3"])
def test_5_deleted_metrics_rows_are_refused(run, sources, tmp_path, capsys, cut):
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    kept = {"last row": "".join(lines[:-1]), "last 3 rows": "".join(lines[:-3]),
            "middle of row 3": "".join(lines[:2]) + lines[2][:50]}[cut]
    path.write_text(kept)
    _every_reader_refuses(capsys, run, sources["exact"][0], tmp_path, "metrics.jsonl", "vouches for 4")


@pytest.mark.parametrize("setting, value", [("seed", 4), ("oracle_options", {"steps": 300}), ("init", "fusion")])
def test_6_an_edited_config_is_refused_by_every_reader(run, sources, tmp_path, capsys, setting, value):
    path = run / "config.json"
    record = json.loads(path.read_text())
    record["psro"][setting] = value
    path.write_text(json.dumps(record, indent=2))
    line = _one_line_error(capsys, ["run", "--resume", str(run), "--iterations", "6", "--quiet"], "config.json",
                           setting)
    assert "the run was made with" in line
    _every_reader_refuses(capsys, run, sources["exact"][0], tmp_path, "config.json", setting)


def test_7_a_non_numeric_metric_is_refused(run, sources, tmp_path, capsys):
    path = run / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["exploitability"] = "abc"
    path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    _every_reader_refuses(capsys, run, sources["exact"][0], tmp_path, "metrics.jsonl line 2", "exploitability",
                          "'abc'")


def test_8_a_population_with_a_member_too_few_is_refused(run, sources, tmp_path, capsys):
    path = run / "population" / "player0.npz"
    with np.load(path) as data:
        policies, origins = data["policies"][:-1], data["origins"][:-1]
    np.savez_compressed(path, policies=policies, origins=origins)
    _every_reader_refuses(capsys, run, sources["exact"][0], tmp_path, "player0.npz", report=False)


@pytest.mark.parametrize("damage", ["truncated member", "random member", "truncated player0.npz"])
def test_unreadable_population_files_are_one_line_errors_with_or_without_a_manifest(
        run, sources, tmp_path, capsys, damage):
    as_if_written_before_manifests(run)
    name = "player0.npz" if "npz" in damage else "player0_member001.safetensors"
    path = run / "population" / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if "truncated" in damage else os.urandom(len(data)))
    with pytest.raises(RunIntegrityError, match=name):
        load_run(run)
    _one_line_error(capsys, ["export", str(run), "--meta-game", "--out", str(tmp_path / "e")], name)
    _one_line_error(capsys, ["match", str(run), str(run)], name)


@pytest.mark.parametrize("edit", ["missing", "string", "nan wall time", "infinite exploitability", "bool episodes"])
def test_missing_or_non_numeric_metric_fields_without_a_manifest(run, tmp_path, capsys, edit):
    as_if_written_before_manifests(run)
    path = run / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    last = rows[-1]
    if edit == "missing":
        del last["exploitability"]
    elif edit == "string":
        last["episodes"] = "many"
    elif edit == "nan wall time":
        last["wall_s"] = float("nan")
    elif edit == "infinite exploitability":
        last["exploitability"] = last["nash_conv"] = float("inf")
    else:
        last["episodes"] = True
    path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    for argv in (["report", str(run)], ["plot", str(run), "--out", str(tmp_path / "p")],
                 ["run", "--resume", str(run), "--iterations", "6", "--quiet"]):
        _one_line_error(capsys, argv, "metrics.jsonl line 4")
    with pytest.raises(RunIntegrityError):
        load_run(run)


def test_a_config_whose_settings_are_a_list_is_refused(run, tmp_path, capsys):
    record = json.loads((run / "config.json").read_text())
    record["psro"] = [record["psro"]]
    (run / "config.json").write_text(json.dumps(record))
    for argv in (["report", str(run)], ["plot", str(run), "--out", str(tmp_path / "p")],
                 ["export", str(run), "--meta-game", "--out", str(tmp_path / "e")], ["run", "--resume", str(run)]):
        _one_line_error(capsys, argv, "config.json", "list")


@pytest.mark.parametrize("manifest", [True, False])
def test_a_config_that_names_another_game_is_refused_by_export(run, tmp_path, capsys, manifest):
    record = json.loads((run / "config.json").read_text())
    record["psro"]["game"], record["game_string"] = "leduc_poker", "leduc_poker()"
    (run / "config.json").write_text(json.dumps(record))
    if not manifest:
        as_if_written_before_manifests(run)
    _one_line_error(capsys, ["export", str(run), "--meta-game", "--out", str(tmp_path / "e")],
                    "config.json" if manifest else "shape")


def test_a_deleted_manifest_is_not_taken_for_a_run_written_before_manifests(run, capsys):
    (run / MANIFEST_FILE).unlink()
    _one_line_error(capsys, ["report", str(run)], "manifest.json is missing")
    with pytest.raises(RunIntegrityError, match="deleted"):
        load_run(run)


def test_an_edited_manifest_is_refused(run, capsys):
    manifest = json.loads((run / MANIFEST_FILE).read_text())
    manifest["rows"] = 3  # as if to cover a deleted row
    (run / MANIFEST_FILE).write_text(json.dumps(manifest))
    _one_line_error(capsys, ["report", str(run)], "metrics.jsonl")
    (run / MANIFEST_FILE).write_text("{not json")
    _one_line_error(capsys, ["report", str(run)], "manifest.json", "damaged")


def test_a_member_file_taken_out_of_the_manifest_too_is_refused(run):
    """Deleting a member's parameters and its line in the manifest does not turn it into a member without any."""
    manifest = json.loads((run / MANIFEST_FILE).read_text())
    del manifest["files"]["population/player0_member002.safetensors"]
    (run / MANIFEST_FILE).write_text(json.dumps(manifest))
    (run / "population" / "player0_member002.safetensors").unlink()
    with pytest.raises(RunIntegrityError, match="member 2 has network parameters"):
        load_run(run)


def test_added_rows_after_a_finished_run_are_refused(run, capsys):
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines) + lines[-1])
    _one_line_error(capsys, ["report", str(run)], "metrics.jsonl", "records iterations [1, 2, 3, 4, 4]")
    extra = {**json.loads(lines[-1]), "iteration": 5}
    (run / "metrics.jsonl").write_text("".join(lines) + json.dumps(extra, sort_keys=True) + "\n")
    _one_line_error(capsys, ["report", str(run)], "metrics.jsonl", "rows were added")


def test_repair_restores_population_files_from_the_checkpoint(run, sources, capsys):
    reference = {p.name: p.read_bytes() for p in (run / "population").iterdir()}
    (run / "population" / "player0_member003.safetensors").unlink()
    path = run / "population" / "player1.npz"
    with np.load(path) as data:
        np.savez_compressed(path, policies=data["policies"][::-1], origins=data["origins"])
    assert main(["repair", str(run)]) == 0
    out = capsys.readouterr().out
    assert "restored population/player0_member003.safetensors" in out and "restored population/player1.npz" in out
    assert {p.name: p.read_bytes() for p in (run / "population").iterdir()} == reference
    assert load_run(run).records[-1].exploitability == sources["pg"][1][-1].exploitability
    assert main(["repair", str(run)]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_repair_refuses_without_a_good_copy(run, capsys):
    (run / "population" / "player0.npz").unlink()
    (run / "checkpoints" / "iteration-00004.npz").write_bytes(b"damaged")
    _one_line_error(capsys, ["repair", str(run)], "cannot repair", "player0.npz")
    assert not (run / "population" / "player0.npz").exists()
    record = json.loads((run / "config.json").read_text())
    record["psro"]["seed"] = 9
    (run / "config.json").write_text(json.dumps(record))
    _one_line_error(capsys, ["repair", str(run)], "cannot repair", "config.json", "population files only")
    _one_line_error(capsys, ["repair", str(run / "nowhere")], "is not a directory")


def test_resume_extends_only_with_more_iterations(sources, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(sources["exact"][0], out)
    assert main(["run", "--resume", str(out), "--iterations", "6", "--quiet"]) == 0
    reference = run_psro(PSROConfig(game="kuhn_poker", iterations=6, seed=1), tmp_path / "six", progress=False)
    assert [r.exploitability for r in load_run(out).records] == [r.exploitability for r in reference]
    assert json.loads((out / MANIFEST_FILE).read_text())["rows"] == 6


def test_report_on_a_live_run_reads_only_vouched_rows(sources, tmp_path):
    out = tmp_path / "live"
    run_killed(EXACT, out, before="manifest", at=3)  # row 3 written, its manifest not yet
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    [summary] = load_runs([out])
    assert [row["iteration"] for row in summary.rows] == [1, 2]
    run = load_run(out)
    assert not run.finished and run.iterations == 2


@pytest.mark.parametrize("where", ["checkpoint", "population", "metrics"])
def test_a_full_disk_is_a_one_line_error_and_keeps_what_was_recorded(tmp_path, capsys, monkeypatch, where):
    out = tmp_path / "run"
    writes = {"count": 0}
    write_bytes, append = Path.write_bytes, os.write

    def full(path, data):
        in_target = {"checkpoint": "checkpoints" in str(path), "population": "population" in str(path)}.get(where)
        if in_target:
            writes["count"] += 1
            if where == "population" or writes["count"] > 6:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    if where == "metrics":
        from fusion_psro.experiments import rundir

        class FullDisk:  # the os module, whose fsync of the third metrics row finds the disk full
            fsyncs = 0

            def __getattr__(self, name):
                return getattr(os, name)

            def fsync(self, fd):
                FullDisk.fsyncs += 1
                if FullDisk.fsyncs == 3:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return os.fsync(fd)

        monkeypatch.setattr(rundir, "os", FullDisk())
    argv = ["run", "--game", "kuhn_poker", "--oracle", "pg", "--steps", "5", "--iterations", "4", "--seed", "3",
            "--out", str(out), "--quiet"]
    _one_line_error(capsys, argv, "No space left on device", "what was recorded before is kept" if where != "population"
                    else "the checkpoints and metrics are kept")
    monkeypatch.undo()
    kept = open_run(out)
    assert kept.rows and not kept.manifest.finished  # what was recorded is kept, and vouched for
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert [r.exploitability for r in load_run(out).records] == [r.exploitability for r in run_psro(
        PG, tmp_path / "reference", progress=False)]


def test_a_full_disk_in_safetensors_itself_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    from safetensors import SafetensorError

    from fusion_psro.experiments import checkpoint

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    monkeypatch.setattr(checkpoint, "save_safetensors", full)
    argv = ["run", "--game", "kuhn_poker", "--oracle", "pg", "--steps", "5", "--iterations", "2",
            "--out", str(tmp_path / "run"), "--quiet"]
    _one_line_error(capsys, argv, "StorageFull")


def test_temporary_files_of_killed_writes_are_removed_on_resume_and_run(sources, tmp_path):
    out = tmp_path / "run"
    run_killed(EXACT, out, before="population")
    leftovers = [out / ".config.json.abc123.tmp", out / "checkpoints" / ".iteration-00005.npz.x1.tmp",
                 out / "checkpoints" / "members" / ".p0-m0005-i00005.safetensors.y2.tmp", out / ".metrics.jsonl.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    (out / ".population.tmp").mkdir()
    resume_psro(out, progress=False)
    assert not any(p.exists() for p in leftovers) and not (out / ".population.tmp").exists()
    (out / ".manifest.json.z3.tmp").write_bytes(b"x")
    run_psro(EXACT, out, progress=False)  # finished: nothing to run, leftovers still go
    assert not (out / ".manifest.json.z3.tmp").exists()


def test_a_run_written_before_manifests_gets_one_on_first_read(sources, tmp_path, caplog):
    out = tmp_path / "legacy"
    shutil.copytree(sources["exact"][0], out)
    as_if_written_before_manifests(out)
    with caplog.at_level("WARNING"):
        load_runs([out])
    assert "has no manifest.json" in caplog.text and (out / MANIFEST_FILE).exists()
    assert load_run(out).records[-1].exploitability == sources["exact"][1][-1].exploitability
    rows = (out / "metrics.jsonl").read_text().splitlines(keepends=True)
    (out / "metrics.jsonl").write_text("".join(rows[:-1]))  # from now on, an edit is caught
    with pytest.raises(RunIntegrityError, match="vouches for 4"):
        load_runs([out])


def test_a_read_only_run_written_before_manifests_is_read_without_writing(sources, tmp_path, caplog, monkeypatch):
    out = tmp_path / "legacy"
    shutil.copytree(sources["exact"][0], out)
    as_if_written_before_manifests(out)
    from fusion_psro.experiments import manifest

    def read_only(path, *args, **kwargs):  # what a read-only directory (or file system) answers
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(manifest, "write_json_atomic", read_only)
    with caplog.at_level("WARNING"):
        assert load_runs([out])[0].final["iteration"] == 4
        assert load_run(out).records[-1].exploitability == sources["exact"][1][-1].exploitability
    assert "cannot be written" in caplog.text and not (out / MANIFEST_FILE).exists()


def test_export_and_load_run_of_a_live_run_read_its_newest_complete_checkpoint(tmp_path):
    out = tmp_path / "live"
    # Kuhn poker's iterations take milliseconds: the run prunes checkpoints while they are read.
    argv = [sys.executable, "-m", "fusion_psro.cli", "run", "--game", "kuhn_poker", "--iterations", "1000",
            "--out", str(out), "--quiet"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and len(_lines(out / "metrics.jsonl")) < 2:
            time.sleep(0.05)
        seen = []
        for attempt in range(12):
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            run = load_run(out)
            assert not run.finished and [len(p) for p in run.populations] == run.records[-1].population_sizes
            export_meta_game(out, tmp_path / f"export{attempt}")
            seen.append(run.iterations)
        assert seen[-1] > seen[0]  # the run moved on while it was read
    finally:
        process.kill()
        process.wait()


def test_integrity_errors_are_fusion_psro_errors():
    assert issubclass(RunIntegrityError, RunDirectoryError) and issubclass(RunIntegrityError, FusionPSROError)
    assert issubclass(RunIntegrityError, ValueError)


def test_match_reads_both_runs_through_their_manifests(sources):
    a, b = sources["pg"][0], sources["exact"][0]
    assert match_runs(a, b).a_mean == pytest.approx(-match_runs(b, a).a_mean, abs=1e-12)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
