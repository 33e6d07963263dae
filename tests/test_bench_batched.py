"""benchmarks/bench_batched.py: the dqn-scaling section's smoke run and pgx's import check."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_batched.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_batched", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dqn_scaling_prints_episodes_and_updates_per_second_against_r(bench, capsys):
    assert bench.main(["--list-sections"]) == 0
    assert "dqn-scaling" in capsys.readouterr().out.split()
    assert bench.main(["--section", "dqn-scaling", "--quick", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [(r[0].strip(), r[1].strip(), r[2].strip()) for r in rows] == [("1", "2", "200"), ("2", "4", "400")]
    assert all(float(r[5].replace(",", "")) > 0 for r in rows)


def test_pgx_that_does_not_import_is_skipped_with_a_note(bench, monkeypatch, capsys):
    bench.pgx_version.cache_clear()
    monkeypatch.setattr(bench.metadata, "version", lambda name: "2.6.0")
    monkeypatch.setitem(sys.modules, "pgx", None)  # import pgx raises ImportError, as without JAX
    try:
        assert bench.pgx_version() is None
    finally:
        bench.pgx_version.cache_clear()
    assert "does not import" in capsys.readouterr().err
