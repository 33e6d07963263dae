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
        ([*run, "--episodes", "500", "--out", str(out)], "--episodes does not apply to this run: the exact oracle", out),
        ([*dqn, "--init", "normal", "--fusion-start", "3", "--out", str(out)],
         "--fusion-start does not apply to this run: it applies to inits that build on the population (fusion", out),
        ([*run, "--target-exploitability", "-1", "--out", str(out)], "target_exploitability must be", out),
        (["run", "--resume", str(tmp_path), "--game", "leduc_poker"], "--game cannot be given with it", None),
        (["run", "--resume", str(a_file)], "is not a directory", None),
        (["export", str(tmp_path), "--out", str(out)], "say what to export: --meta-game", out),
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
