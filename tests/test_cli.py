"""The command line: subcommands run, bad input gives a one-line error and exit status 2."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fusion_psro.cli import main
from fusion_psro.experiments import run_psro
from fusion_psro.psro import PSROConfig

REPO = Path(__file__).resolve().parents[1]


def test_compile_and_evaluate(capsys):
    assert main(["compile", "kuhn_poker"]) == 0
    out = capsys.readouterr().out
    assert "kuhn_poker(): 58 histories" in out
    assert main(["evaluate", "--game", "kuhn_poker", "--population", "3"]) == 0
    out = capsys.readouterr().out
    # Kuhn poker's uniform policy: exploitability 0.458333 (NashConv 0.916667).
    assert "uniform policy: exploitability 0.458333 (NashConv 0.916667)" in out
    assert "3x3" in out


def test_evaluate_refuses_a_demo_population_too_large_to_tabulate(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--game", "kuhn_poker", "--population", "1000000"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--population: expected at most 2000 policies per player" in err and "'1000000'" in err


def test_bad_game_is_a_clear_error(capsys):
    assert main(["compile", "chess"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fusion-psro: error: chess() is far too large")
    assert "Traceback" not in err


def test_console_script_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "fusion_psro.cli", "evaluate", "--game", "leducc_poker"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert "unknown game 'leducc_poker'. Did you mean 'leduc_poker'" in result.stderr


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    commands = re.findall(r"^(python3 -m venv .*)$", readme, flags=re.MULTILINE)
    assert len(commands) == 2, "README keeps exactly two set-up commands"
    test_command = [c for c in commands if "pytest" in c]
    assert test_command and test_command[0] in ci


def _bad_input_cases(tmp_path: Path) -> list[tuple[list[str], str, Path | None]]:
    """(argv, what the error says, a path that must not exist afterwards) for each bad input."""
    import torch

    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    sweep_dir = tmp_path / "configs"
    sweep_dir.mkdir()
    unknown_game = tmp_path / "unknown-game.toml"
    unknown_game.write_text(f'[sweep]\nout = "{tmp_path / "sweep-runs"}"\n[grid]\ngame = ["kuhn_poker", "kuhn_pokr"]\n'
                            '[settings]\niterations = 2\n')
    out = tmp_path / "out"
    done, twice = tmp_path / "done", tmp_path / "twice"
    run_psro(PSROConfig(game="kuhn_poker", iterations=2), done, progress=False)
    shutil.copytree(done, twice)
    rows = (twice / "metrics.jsonl").read_text().splitlines(keepends=True)
    (twice / "metrics.jsonl").write_text("".join(rows + rows[-1:]))  # what two writers at once left
    run = ["run", "--game", "kuhn_poker", "--iterations", "2", "--quiet"]
    dqn = [*run, "--oracle", "dqn", "--episodes", "100"]
    cases = [
        ([*run, "--out", str(a_file / "run")], "a-file is a file, not a directory", a_file / "run"),
        ([*run, "--out", str(a_file)], "exists and is not a directory", None),
        (["plot", str(done), "--out", str(a_file / "plot")], "cannot write the figure: " + f"{a_file} exists and is not a directory", None),
        (["report", str(done), "--out", str(a_file / "report.md")], "a-file exists and is not a directory", None),
        (["report", str(twice)], "records iterations [1, 2, 2], not 1..3 once each", None),
        (["plot", str(twice), "--out", str(tmp_path / "plot")], "records iterations [1, 2, 2]", tmp_path / "plot.png"),
        (["sweep", str(sweep_dir)], "is a directory; sweep takes a config file", None),
        (["sweep", str(unknown_game)], "cell kuhn_pokr: unknown game 'kuhn_pokr'", tmp_path / "sweep-runs"),
        (["compile", "kuhn_poker", "--max-histories", "0"], "max_histories", None),
        ([*dqn, "--oracle-option", "device=banana", "--out", str(out)], "device must be 'auto' or a torch device this machine has", out),
        ([*dqn, "--oracle-option", "learning_rate=abc", "--out", str(out)],
         "learning_rate must be a finite number >= 0, got 'abc'", out),
        ([*dqn, "--oracle-option", "learning_rate=NaN", "--out", str(out)], "learning_rate must be", out),
        ([*dqn, "--oracle-option", "hidden_sizes=abc", "--out", str(out)],
         "hidden_sizes must be a list of integers >= 1, e.g. [64,64]; got 'abc'", out),
        ([*run, "--episodes", "500", "--out", str(out)], "--episodes does not apply to this run: the oracle exact does not read it; oracles that do: dqn", out),
        ([*dqn, "--init", "normal", "--fusion-start", "3", "--out", str(out)],
         "--fusion-start does not apply to this run: the init normal does not read it; inits that do: fusion", out),
        ([*run, "--target-exploitability", "-1", "--out", str(out)], "target_exploitability must be", out),
        (["run", "--resume", str(tmp_path), "--game", "leduc_poker"], "--game cannot be given with it", None),
        (["run", "--resume", str(a_file)], "is not a directory", None),
        (["export", str(tmp_path), "--out", str(out)], "say what to export: --meta-game", out),
        ([*dqn, "--oracle-option", "hidden_sizes=[1000000000]", "--out", str(out)],
         "DQN oracle: hidden_sizes [1000000000] make a network of 14,000,000,002 parameters; training it needs about", out),  # (11+1)e9 + (1e9+1)*2,
        ([*run, "--oracle", "pg", "--oracle-option", "hidden_sizes=[1000000000]", "--out", str(out)],
         "pg oracle: hidden_sizes [1000000000] make a network of", out),
        (["run", "--game", "goofspiel(num_cards=0)", "--out", str(out)], "goofspiel(num_cards=0) has no moves", out),
        (["run", "--game", "goofspiel(num_cards=-1)", "--out", str(out)], "with num_cards >= 1", out),
        (["run", "--game", "kuhn_poker", "--quiet", "--iterations", str(10 ** 20), "--out", str(out)], "iterations must be at most 10,000, got", out),
        ([*dqn, "--init", "fusion", "--fusion-start", str(10 ** 20), "--out", str(out)],
         "is after the last iteration (2): a run labelled init fusion that never uses it", out),
        ([*run, "--oracle", "pg", "--steps", str(10 ** 12), "--out", str(out)], "steps must be at most 10,000,000", out),
        ([*run, "--out", str(tmp_path / ("x" * 300) / "run")], "is too long; this file system allows 255 bytes", None),
        ([*run, "--out", "/dev/null"], "/dev/null is under /dev", None),
        (["report", str(tmp_path / ("y" * 300))], "(300 characters) is too long; this file system allows 255", None),
        (["run", "--resume", str(tmp_path / ("y" * 300))], "(300 characters) is too long", None),
        (["plot", str(done), "--out", "/dev/null"], "/dev/null is under /dev", None),
        (["report", str(done), "--out", "/dev/fusion-psro-report.md"], "is under /dev", None),
        (["evaluate", "--game", "kuhn_poker", "--max-histories", "10"], "kuhn_poker() has more than 10 histories", None),
    ]
    if not torch.cuda.is_available():
        cases.append(([*dqn, "--oracle-option", "device=cuda", "--out", str(out)], "needs CUDA", out))
    if Path("/sys").is_dir():  # a file system where nobody may create a directory, root included
        cases.append(([*run, "--out", "/sys/fusion-psro-test/run"], "cannot create /sys/fusion-psro-test/run", None))
    return cases


def test_bad_input_is_refused_fast_with_one_line_and_nothing_left_behind(tmp_path, capsys):
    main(["compile", "kuhn_poker"])  # imports and the compiled game are warm, as in any second command
    capsys.readouterr()
    for argv, message, absent in _bad_input_cases(tmp_path):
        started = time.monotonic()
        status = main(argv)
        elapsed = time.monotonic() - started
        err = capsys.readouterr().err
        assert status == 2, (argv, err)
        assert message in err, (argv, err)
        assert err.startswith("fusion-psro: error: ") and err.count("\n") == 1, (argv, err)
        assert elapsed < 5, (argv, elapsed)
        if absent is not None:
            assert not absent.exists(), (argv, sorted(absent.parent.iterdir()))


def test_version_and_verbosity_options_after_the_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("fusion-psro 0.")
    assert main(["compile", "kuhn_poker", "-v", "--quiet"]) == 0


def test_readme_options_table_names_every_registered_component():
    """The README's option table lists what the registries hold (a new component shows up in review).

    The names come from a fresh interpreter: other tests register toy components in this one.
    """
    script = ("import json; from fusion_psro.registry import INITS, META_SOLVERS, ORACLES, VARIANTS; "
              "print(json.dumps({o: list(r.names()) for o, r in (('--oracle', ORACLES), ('--init', INITS), "
              "('--variant', VARIANTS), ('--meta-solver', META_SOLVERS))}))")
    registered = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                           check=True).stdout)
    readme = (REPO / "README.md").read_text()
    for option, names in registered.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{option}` |"))
        listed = set(re.findall(r"`([a-z0-9-]+)`", row.split("|")[2]))
        assert set(names) <= listed, (option, set(names) - listed)


@pytest.mark.parametrize(("argv", "message"), [
    (["evaluate", "--seed", "-1"], "argument --seed: expected a non-negative integer, got '-1'; see `fusion-psro evaluate --help`"),
    (["init-study", "--out", "x", "--workers", "0"], "argument --workers: expected a positive integer, got '0'"),
    (["run", "--iterations", "1e20"], "argument --iterations: invalid int value: '1e20'; see `fusion-psro run --help`"),
    (["bogus"], "invalid choice: 'bogus'"),
])
def test_argument_errors_are_one_line_with_a_pointer_to_the_help(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("fusion-psro: error: ") and err.count("\n") == 1, err
    assert message in err


_SWALLOWING_PLUGIN = """
import os, signal, time
try:  # what a library's `except ImportError` around an extension that Ctrl-C interrupted does
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(2)
except KeyboardInterrupt:
    pass
"""


def test_a_ctrl_c_that_a_library_swallows_still_stops_the_run(tmp_path):
    """A Ctrl-C caught during the command's imports stops the run at its first iteration: status 130,
    one line, where before the run went on to the end and exited 0."""
    plugin = tmp_path / "swallow.py"
    plugin.write_text(_SWALLOWING_PLUGIN)
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "fusion_psro.cli", "--plugin", str(plugin), "run", "--game",
                           "kuhn_poker", "--oracle", "exact", "--iterations", "3", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "stopped by Ctrl-C" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "population").exists()


def test_ctrl_c_while_the_command_line_starts_is_one_line(tmp_path):
    """SIGINT from the moment the interpreter runs the package: one line, status 130, no traceback."""
    import signal

    for delay in (0.3, 0.6, 1.0):
        out = tmp_path / f"run-{delay}"
        process = subprocess.Popen(
            [sys.executable, "-m", "fusion_psro.cli", "run", "--game", "leduc_poker", "--oracle", "dqn",
             "--episodes", "100", "--iterations", "50", "--out", str(out), "--quiet"],
            stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        # 130, or death by SIGINT where the interrupt hit code that CPython ran through PyRun (importing
        # PyTorch): it then re-raises the signal at exit, after the message. A shell reports both as 130.
        assert process.returncode in (130, -signal.SIGINT), (delay, err)
        assert "Traceback" not in err and err.startswith("fusion-psro: stopped by Ctrl-C") and err.count("\n") == 1, err


def test_stop_messages_say_what_was_kept(tmp_path):
    from argparse import Namespace

    from fusion_psro.cli import _stopped

    done = tmp_path / "done"
    run_psro(PSROConfig(game="kuhn_poker", iterations=2), done, progress=False)
    run = Namespace(command="run", out=str(tmp_path / "new"), resume=None)
    assert _stopped(KeyboardInterrupt(), run) == (
        f"stopped by Ctrl-C before its first iteration was recorded; nothing of the run was kept in {tmp_path / 'new'}")
    kept = _stopped(KeyboardInterrupt(), Namespace(command="run", out=None, resume=str(done)))
    assert kept == f"stopped by Ctrl-C; the run's checkpoints in {done} are kept: `fusion-psro run --resume {done}` continues it"
    sweep = _stopped(KeyboardInterrupt("terminated by signal 15"),
                     Namespace(command="sweep", config="c.toml", quick=True, seeds=None))
    assert sweep.startswith("stopped (terminated by signal 15); finished cells are kept") and "`fusion-psro sweep c.toml --quick`" in sweep
    part = _stopped(KeyboardInterrupt(), Namespace(command="sweep", config="c.toml", quick=False, seeds="15-29"))
    assert "`fusion-psro sweep c.toml --seeds 15-29` again" in part
    for message in (kept, sweep, _stopped(KeyboardInterrupt(), None)):
        assert "()" not in message and "DIR" not in message


def test_negative_zero_is_printed_as_zero():
    from fusion_psro.cli import _number

    assert _number(-1e-12) == "0.000000" and _number(-0.5) == "-0.500000" and _number(0.25) == "0.250000"


def test_report_without_out_prints_the_fusion_comparison(tmp_path, capsys):
    dirs = []
    for init in ("normal", "fusion"):
        for seed in (0, 1):
            dirs.append(tmp_path / f"{init}-seed{seed}")
            run_psro(PSROConfig(game="kuhn_poker", oracle="pg", init=init, iterations=2, seed=seed,
                                oracle_options={"steps": 5}), dirs[-1], progress=False)
    assert main(["report", *map(str, dirs)]) == 0
    out = capsys.readouterr().out
    assert "| method − Fusion-X | seeds | difference of final exploitability | Welch 95% interval |" in out
    assert "| PSRO (normal init) − Fusion-PSRO | 2 / 2 |" in out


def test_a_reader_that_stops_early_gets_no_error(tmp_path):
    """`fusion-psro report DIR | head -1`: the closed pipe ends the command quietly."""
    run = tmp_path / "run"
    run_psro(PSROConfig(game="kuhn_poker", iterations=2), run, progress=False)
    process = subprocess.Popen([sys.executable, "-m", "fusion_psro.cli", "report", str(run)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # the reader is gone before the first line
    err = process.stderr.read()
    assert process.wait(timeout=60) == 141 and err == "", err
