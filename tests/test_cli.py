"""The command line: subcommands run, bad input gives a one-line error and exit status 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from fusion_psro.cli import main

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
