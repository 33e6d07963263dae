"""Sweeps: config validation, skipping finished cells, local Ray, and a loopback Ray head."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_killed
from fusion_psro.experiments import read_metrics, run_psro
from fusion_psro.errors import ConfigError
from fusion_psro.ray_session import check_ray_address
from fusion_psro.experiments.sweep import SweepConfigError, load_sweep, run_sweep

KUHN = """
[sweep]
out = "{out}"
workers = 2

[grid]
variant = ["psro", "p-psro"]
seed = [0, 1]

[settings]
game = "kuhn_poker"
iterations = 3
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text.format(out=tmp_path / "runs"))
    return path


def test_grid_expands_to_named_cells(tmp_path):
    sweep = load_sweep(_write(tmp_path, KUHN))
    assert [c.name for c in sweep.cells] == ["psro-seed0", "psro-seed1", "p_psro-seed0", "p_psro-seed1"]
    assert all(c.config.iterations == 3 and c.config.game == "kuhn_poker" for c in sweep.cells)
    assert sweep.cells[2].config.variant == "p-psro" and sweep.cells[3].config.seed == 1
    assert sweep.workers == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (KUHN + "\n[extra]\nx = 1\n", r"unknown section\(s\) \['extra'\]"),
        (KUHN.replace("workers = 2", "workers = 2\nthreads = 3"), r"unknown key\(s\) \['threads'\] in \[sweep\]"),
        (KUHN.replace('game = "kuhn_poker"', 'game = "kuhn_poker"\nlearning_rate = 0.1'),
         r"unknown key\(s\) \['learning_rate'\] in \[settings\]; accepted: diversity_schedule, diversity_weight, episodes, "
         r"eval, eval_br_episodes"),
        (KUHN.replace('variant = ["psro", "p-psro"]', 'variant = ["psro", "alpha"]'),
         r"cell alpha-seed0 .*unknown variant 'alpha'; accepted: psro, psro-rn, p-psro"),
        (KUHN.replace("seed = [0, 1]", "seed = 3"), r"\[grid\] seed must be a non-empty list"),
        (KUHN.replace('game = "kuhn_poker"', 'game = "kuhn_poker"\nseed = 4'), r"\['seed'\] appear in both"),
        (KUHN.replace("[grid]", "[grid\n"), "not valid TOML"),
        (KUHN.replace('variant = ["psro", "p-psro"]', 'game = ["kuhn_poker", "kuhn_poker(players=3)"]')
         .replace('game = "kuhn_poker"\n', ""), r"cell kuhn_poker_players_3-seed0: .*has 3 players"),
        (KUHN.replace('variant = ["psro", "p-psro"]', 'game = ["leduc_poker", "leduc"]')
         .replace('game = "kuhn_poker"\n', ""), r"cell leduc-seed0: unknown game 'leduc'. Did you mean 'leduc_poker'"),
        (KUHN.replace("iterations = 3", "iterations = 3\nepisodes = 100"), r"episodes applies to none of the cells"),
        (KUHN.replace("iterations = 3", 'iterations = 3\noracle = "dqn"\noracle_options = {{device = "banana"}}'),
         r"cell psro-seed0: DQNConfig: device must be"),
    ],
)
def test_bad_sweep_configs_name_what_and_where(tmp_path, text, message):
    with pytest.raises(SweepConfigError, match=message):
        load_sweep(_write(tmp_path, text))


def test_a_directory_is_no_sweep_config(tmp_path):
    with pytest.raises(SweepConfigError, match="is a directory; sweep takes a config file"):
        load_sweep(tmp_path)


def test_a_cell_that_fails_at_run_time_is_one_line(tmp_path):
    sweep = load_sweep(_write(tmp_path, KUHN.replace("workers = 2", "workers = 1")))
    sweep.out.mkdir(parents=True)
    sweep.cells[1].out.write_text("a file where the cell's directory goes")
    results = run_sweep(sweep, progress=False)
    failed = [r for r in results if r["action"] == "failed"]
    assert [r["cell"] for r in failed] == ["psro-seed1"]
    assert failed[0]["error"] == f"RunDirectoryError: {sweep.cells[1].out} exists and is not a directory"


def test_finished_cells_are_skipped_without_starting_ray(tmp_path, monkeypatch):
    sweep = load_sweep(_write(tmp_path, KUHN))
    for cell in sweep.cells:
        run_psro(cell.config, cell.out, progress=False)
    before = {c.name: (c.out / "metrics.jsonl").stat().st_mtime_ns for c in sweep.cells}
    monkeypatch.setitem(sys.modules, "ray", None)  # importing ray now fails: it must not be needed
    results = run_sweep(sweep, progress=False)
    assert [r["action"] for r in results] == ["skipped (finished)"] * 4
    assert before == {c.name: (c.out / "metrics.jsonl").stat().st_mtime_ns for c in sweep.cells}


def test_unreachable_ray_address_fails_fast():
    started = time.monotonic()
    with pytest.raises(ConfigError, match="no Ray cluster answers at 127.0.0.1:9"):
        check_ray_address("127.0.0.1:9", timeout=2.0)
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        check_ray_address("somewhere")
    assert time.monotonic() - started < 5


def test_local_ray_sweep_runs_resumes_and_skips(tmp_path):
    sweep = load_sweep(_write(tmp_path, KUHN))
    first, second = sweep.cells[0], sweep.cells[2]
    run_psro(first.config, first.out, progress=False)  # finished before the sweep
    run_killed(second.config, second.out, before="population")  # unfinished: has checkpoints, resumed
    results = run_sweep(sweep, progress=False)
    actions = {r["cell"]: r["action"] for r in results}
    assert actions == {"psro-seed0": "skipped (finished)", "psro-seed1": "ran",
                       "p_psro-seed0": "resumed", "p_psro-seed1": "ran"}
    for cell in sweep.cells:
        assert len(read_metrics(cell.out)) == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_processes_mentioning(marker: str) -> None:
    """SIGKILL every process whose command line contains ``marker`` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="stops the test's Ray head through /proc")
def test_sweep_against_a_loopback_ray_head(tmp_path, monkeypatch):
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray_cli, "the ray command comes with the ray package"
    port = _free_port()
    # Head and client must agree on Ray's token authentication, whose defaults differ
    # between `ray start` and `ray.init` depending on what ~/.ray holds; a loopback test
    # cluster needs none.
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    env = {**os.environ, "RAY_ADDRESS": ""}
    # Every process of a Ray cluster names its session on its command line, so the test
    # stops exactly this head's processes. (`ray stop` would kill every Ray process on the
    # machine, other sweeps included.)
    session = None
    try:
        start = subprocess.run(
            [ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
             "--include-dashboard", "false", "--disable-usage-stats"],
            capture_output=True, text=True, env=env, timeout=180,
        )
        assert start.returncode == 0, start.stderr
        session = Path(os.readlink("/tmp/ray/session_latest")).name
        text = KUHN.replace('variant = ["psro", "p-psro"]', 'variant = ["psro"]')
        sweep = load_sweep(_write(tmp_path, text))
        results = run_sweep(sweep, address=f"127.0.0.1:{port}", progress=False)
        assert [r["action"] for r in results] == ["ran", "ran"]
        assert all(len(read_metrics(c.out)) == 3 for c in sweep.cells)
    finally:
        if session is not None:
            _kill_processes_mentioning(session)


@pytest.mark.parametrize("config", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_shipped_configs_are_valid_at_both_scales(config):
    sweep = load_sweep(config)
    assert sweep.cells
    text = config.read_text()
    if "[quick]" in text:
        quick = load_sweep(config, quick=True)
        assert quick.out.name == sweep.out.name + "-quick"
        assert len(quick.cells) <= len(sweep.cells)
        assert all(q.config.episodes <= s.config.episodes for q, s in zip(quick.cells, sweep.cells))


def test_local_ray_after_a_pinned_auth_mode_warns_nothing_and_reports_failures_in_one_line(tmp_path, capfd, caplog):
    """Runs after the loopback test, in the same process: Ray's cached auth mode must not leak into this start."""
    before = os.environ.get("RAY_AUTH_MODE")
    sweep = load_sweep(_write(tmp_path, KUHN.replace('variant = ["psro", "p-psro"]', 'variant = ["psro"]')))
    sweep.out.mkdir(parents=True)
    sweep.cells[1].out.write_text("a file where the cell's directory goes")
    results = run_sweep(sweep, progress=False)
    assert [r["action"] for r in results] == ["ran", "failed"]
    assert results[1]["error"] == f"RunDirectoryError: {sweep.cells[1].out} exists and is not a directory"
    printed = capfd.readouterr()
    assert "Token authentication" not in printed.err + printed.out + caplog.text
    assert "Traceback" not in printed.err
    assert os.environ.get("RAY_AUTH_MODE") == before


def _session_of(pid: int) -> str | None:
    sessions = list(Path("/tmp/ray").glob(f"session_*_{pid}"))
    return sessions[0].name if sessions else None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_killing_a_sweep_driver_leaves_no_ray_process_behind(tmp_path):
    from fusion_psro.ray_reaper import _processes, session_processes

    text = KUHN.replace('variant = ["psro", "p-psro"]', 'variant = ["psro"]').replace(
        'iterations = 3', 'iterations = 400\noracle = "dqn"\nepisodes = 2000\n'
        'oracle_options = {{hidden_sizes = [8], num_envs = 32, min_replay_before_learning = 64, batch_size = 64}}')
    config = _write(tmp_path, text)
    driver = subprocess.Popen([sys.executable, "-m", "fusion_psro.cli", "sweep", str(config), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    noted: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 150
        while not any((tmp_path / "runs").glob("*/metrics.jsonl")):  # Ray's workers are running cells
            if driver.poll() is not None or time.monotonic() > deadline:
                driver.kill()  # before reading its stderr: a live driver would block the read until it ends
                pytest.fail(f"no metrics row after 150 s: {driver.communicate()[1].decode()[-2000:]}")
            time.sleep(0.2)
        session = _session_of(driver.pid)
        assert session is not None
        noted = session_processes(session, _processes())
        assert any("ray::" in _processes()[pid][2] for pid in noted)  # workers and agents are among them
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 30
    while (left := _running(noted)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left


def _running(noted: dict[int, int]) -> dict[int, str]:
    """The processes of ``noted`` (pid -> start time) still running (not exited, not zombies)."""
    left = {}
    for pid, started in noted.items():
        try:
            stat = (Path("/proc") / str(pid) / "stat").read_text()
            cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[19]) == started:
            left[pid] = cmdline
    return left


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"has no \[grid\] or \[settings\] values: nothing to run"),
        ('[sweep]\nout = "{out}"\n', r"has no \[grid\] or \[settings\] values: nothing to run"),
        (KUHN.replace("seed = [0, 1]", "seed = [true]"), r"cell psro-seedTrue .*seed must be an integer, got True \(bool\)"),
        (KUHN.replace("iterations = 3", "iterations = 3\noracle_options = 5"),
         r"oracle_options must be a table of settings by name, e.g. \{steps = 100\}, got 5"),
        (KUHN.replace("iterations = 3", "iterations = 3.5"), r"iterations must be an integer, got 3.5 \(float\)"),
        (KUHN.replace("iterations = 3", "iterations = 100000"), r"iterations must be at most 10,000"),
        (KUHN.replace('out = "{out}"', 'out = "/dev/null"'), r"\[sweep\] out: /dev/null is under /dev"),
        (KUHN.replace('out = "{out}"', "out = 5"), r"\[sweep\] out must be a directory path"),
    ],
)
def test_sweep_values_are_type_checked_cell_by_cell(tmp_path, text, message):
    with pytest.raises(SweepConfigError, match=message):
        load_sweep(_write(tmp_path, text))


def test_a_sweep_whose_out_is_a_file_is_refused_by_validation(tmp_path):
    (tmp_path / "runs").write_text("a file")
    with pytest.raises(SweepConfigError, match=r"runs is a file, not a directory; the cells' run directories go below"):
        load_sweep(_write(tmp_path, KUHN))


def test_a_second_sweep_into_the_same_directory_is_refused_at_once(tmp_path):
    from fusion_psro.experiments.rundir import RunDirectoryBusyError, RunLock

    sweep = load_sweep(_write(tmp_path, KUHN.replace("workers = 2", "workers = 1")))
    sweep.out.mkdir(parents=True)
    with RunLock(sweep.out, "sweep.lock"):  # what the first sweep holds while it runs
        with pytest.raises(RunDirectoryBusyError, match=r"runs is being written by process .*sweep.lock says who"):
            run_sweep(sweep, progress=False)
    assert not any(cell.out.exists() for cell in sweep.cells)
    assert not (sweep.out / "sweep.lock").exists()


def test_progress_counts_iterations_and_names_cells_and_a_longer_rerun_extends(tmp_path, capsys, monkeypatch):
    from fusion_psro.experiments.sweep import SweepProgress

    monkeypatch.setattr(SweepProgress, "INTERVAL", 0.05)
    config = _write(tmp_path, KUHN.replace("workers = 2", "workers = 1").replace('"p-psro"', '"psro-rn"'))
    results = run_sweep(load_sweep(config), progress=True)
    err = capsys.readouterr().err
    assert [r["action"] for r in results] == ["ran"] * 4
    assert "12/12" in err  # iterations over all cells, not cells
    assert re.search(r"\[1/4\] psro-seed0 \(seed 0\): ran, exploitability \d\.\d{4}", err), err
    assert "[4/4] psro_rn-seed1 (seed 1): ran" in err

    config.write_text(config.read_text().replace("iterations = 3", "iterations = 4"))
    results = run_sweep(load_sweep(config), progress=False)
    assert [r["action"] for r in results] == ["finished at 3 iterations; extended to 4"] * 4
    assert all(len(read_metrics(r["out"])) == 4 for r in results)
    config.write_text(config.read_text().replace("iterations = 4", "iterations = 2"))
    (failed, *_) = run_sweep(load_sweep(config), progress=False)
    assert failed["action"] == "failed" and failed["error"] == (
        f"RunDirectoryError: {failed['out']} holds this cell finished at 4 iterations, more than this sweep's 2; "
        "nothing was changed. Give iterations = 4 or more, or move the run away")


def test_rerunning_a_finished_sweep_says_nothing_ran(tmp_path, capsys):
    from fusion_psro.cli import main

    config = _write(tmp_path, KUHN.replace("workers = 2", "workers = 1"))
    assert main(["sweep", str(config), "--quiet"]) == 0
    assert "nothing to run" not in capsys.readouterr().err
    assert main(["sweep", str(config), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "nothing to run: 4 cells finished" in captured.err
    table = [line for line in captured.out.splitlines() if line.startswith("| ")]
    # `report OUT/*` (the shell's sorted glob, the sweep's own report and figures among the paths)
    # lists the methods as the sweep's report does.
    assert main(["report", *sorted(map(str, (tmp_path / "runs").iterdir()))]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][:len(table)] == table
    assert table[1].startswith("| P-PSRO |") and table[2].startswith("| PSRO |")  # p_psro-seed0 < psro-seed0


def test_progress_counts_a_cell_whose_metrics_this_process_cannot_read_when_it_ends(tmp_path):
    from fusion_psro.experiments.parallel import TaskOutcome
    from fusion_psro.experiments.sweep import SweepProgress

    sweep = load_sweep(_write(tmp_path, KUHN))  # no cell directory exists here: as on a cluster's nodes
    with SweepProgress(sweep, [0, 1, 2, 3], enabled=True) as progress:
        assert progress.bar.n == 0 and progress.bar.total == 12
        progress.cell_done(2, TaskOutcome(result={"action": "ran", "last": {"exploitability": 0.1}}))
        progress.cell_done(3, TaskOutcome(error="RuntimeError: boom"))
        assert progress.bar.n == 3


def test_a_sweep_starts_its_cells_seed_by_seed(tmp_path):
    """Grid order is variant-major here; the start order pairs the seeds, so a sweep stopped part
    way holds every variant of seed 0 before any cell of seed 1."""
    from fusion_psro.experiments.sweep import seed_major

    sweep = load_sweep(_write(tmp_path, KUHN))
    assert [(c.config.variant, c.config.seed) for c in sweep.cells] == [
        ("psro", 0), ("psro", 1), ("p-psro", 0), ("p-psro", 1)]
    order = seed_major(sweep.cells, list(range(len(sweep.cells))))
    assert [(sweep.cells[i].config.variant, sweep.cells[i].config.seed) for i in order] == [
        ("psro", 0), ("p-psro", 0), ("psro", 1), ("p-psro", 1)]
    assert seed_major(sweep.cells, [3, 0]) == [0, 3]
