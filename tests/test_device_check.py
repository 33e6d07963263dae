"""scripts/device_check.sh (the GPU check in one command) and scripts/fetch_device_wheels.sh.

The GPU run itself happens on a GPU machine; here the scripts' syntax, their usage errors,
and a dry run (CPU, tiny budget: slow) that goes through every step and writes every file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.mark.parametrize("name", ["device_check.sh", "fetch_device_wheels.sh"])
def test_scripts_parse_and_refuse_a_missing_directory(name):
    script = SCRIPTS / name
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.startswith("usage:")


@pytest.mark.slow
def test_device_check_dry_run_writes_every_file(tmp_path):
    """``--dry-run``: CPU, no wheels, a few tests and the benchmark's smoke run."""
    out, wheels = tmp_path / "out", tmp_path / "wheels"
    wheels.mkdir()
    env = dict(os.environ, PYTHON=sys.executable, WHEELS=str(wheels), SITE_DIR=str(tmp_path / "site"))
    result = subprocess.run(["bash", str(SCRIPTS / "device_check.sh"), "--dry-run", str(out)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = (out / "summary.txt").read_text()
    assert "tests: exit 0" in summary and "bench-play: exit 0" in summary, summary
    for name in ("nvidia-smi.txt", "environment.txt", "install.log", "tests.log", "bench-play.log",
                 "results_batched.md"):
        assert (out / name).stat().st_size > 0, name
    assert "torch" in (out / "environment.txt").read_text()
    assert "<!-- section: play -->" in (out / "results_batched.md").read_text()
