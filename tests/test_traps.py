"""Trapped responses and frozen runs, read from metrics rows (fusion's fixed point)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fusion_psro.experiments.results import trap_summary
from fusion_psro.experiments.traps import summarize_traps, trap_table

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "pg-leduc" / "runs" / "init"


def _row(iteration, sizes, sigma, values, value=-0.1, exploitability=0.5):
    return {"iteration": iteration, "exploitability": exploitability, "meta_game_value": value,
            "population_sizes": sizes, "meta_strategies": sigma,
            "oracle": [{"value": v, "initial_value": i} for v, i in values]}


def test_hand_built_rows():
    rows = [
        _row(1, [2, 2], [[0.5, 0.5], [0.5, 0.5]], [(0.3, 0.0), (0.2, 0.0)], value=0.0),
        # Player 0's response is no better than the meta-game value (0.0) and enters with weight 0:
        # trapped. Player 1's is better than its value (0.0) but gets weight 0: not trapped.
        _row(2, [3, 3], [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], [(-0.1, 0.2), (0.4, 0.1)], value=0.0),
        # Player 0 repeats iteration 2's response; player 1's response has weight: neither changes...
        _row(3, [4, 4], [[0.5, 0.5, 0.0, 0.0], [0.4, 0.4, 0.0, 0.2]], [(-0.1, 0.2), (0.5, 0.3)], value=0.0),
        # ... and from here every row repeats the one before.
        _row(4, [5, 5], [[0.5, 0.5, 0.0, 0.0, 0.0], [0.4, 0.4, 0.0, 0.2, 0.0]], [(-0.1, 0.2), (0.5, 0.3)], value=0.0),
        _row(5, [6, 6], [[0.5, 0.5, 0.0, 0.0, 0.0, 0.0], [0.4, 0.4, 0.0, 0.2, 0.0, 0.0]], [(-0.1, 0.2), (0.5, 0.3)],
             value=0.0),
    ]
    summary = summarize_traps(rows)
    by = {(r.iteration, r.player): r for r in summary.responses}
    assert by[1, 0].trapped is False and by[1, 0].threshold is None  # the first meta-game is not in the rows
    assert by[2, 0].trapped and not by[2, 0].identical and by[2, 0].threshold == 0.0
    assert by[2, 1].trapped is False and by[2, 1].threshold == -0.0
    assert by[3, 0].trapped and by[3, 0].identical
    assert by[3, 1].trapped is False and by[3, 1].weight == pytest.approx(0.2)
    assert by[4, 1].trapped and by[4, 1].identical
    assert summary.trapped_iterations == (2, 3, 4, 5)
    assert summary.frozen_from == 4 and summary.frozen_iterations == 2
    # Without values to compare (a DQN), a weight-0 response is undetermined, not trapped.
    for row in rows:
        row["oracle"] = [{"final_loss": 0.1}, {"final_loss": 0.2}]
    summary = summarize_traps(rows)
    assert summary.trapped_iterations == () and summary.undetermined == 7  # the weight-0 responses
    # Last row changes: not frozen.
    rows[-1]["exploitability"] = 0.4
    assert summarize_traps(rows).frozen_from is None


def test_a_built_fusion_run_with_the_deterministic_pg_oracle_freezes(tmp_path):
    from fusion_psro.experiments.runner import run_psro
    from fusion_psro.psro import PSROConfig

    config = PSROConfig(game="kuhn_poker", oracle="pg", init="fusion", iterations=10, seed=0,
                        oracle_options={"steps": 10, "hidden_sizes": (16,)})
    run_psro(config, tmp_path / "fusion", progress=False)
    summary = trap_summary(tmp_path / "fusion")
    assert summary.frozen_from == 4
    # Independently, from the saved populations: every member added from iteration 3 on is the same
    # network, and none of them has weight in the final meta-Nash.
    from fusion_psro.experiments.results import load_run

    run = load_run(tmp_path / "fusion")
    for p in range(2):
        members = run.populations[p][3:]
        assert all(torch.equal(m.parameters[k], members[0].parameters[k]) for m in members for k in members[0].parameters)
        assert np.all(run.meta_strategies()[p][3:] == 0)
    assert summary.trapped_iterations == tuple(range(3, 11))
    assert trap_summary(run).frozen_from == 4  # a SavedRun gives the same


def test_the_committed_fusion_runs_freeze_and_inherit_runs_do_not():
    from fusion_psro.experiments.runs import load_runs

    runs = load_runs(sorted(COMMITTED.glob("*-seed*")))
    summaries = {run.path.name: trap_summary(run) for run in runs}
    # Counted independently: the rows whose oracle values equal the previous row's to 12 digits (the
    # LP's round-off moves the 15th).
    def values(row):
        return [(f"{e['value']:.12f}", f"{e['initial_value']:.12f}") for e in row["oracle"]]

    for run in runs:
        same = [k for k in range(1, len(run.rows)) if values(run.rows[k]) == values(run.rows[k - 1])]
        if run.path.name.startswith("fusion"):
            assert summaries[run.path.name].frozen_iterations == len(same), run.path
            assert same == list(range(same[0], 150))  # one unbroken stretch to the end
        else:
            assert summaries[run.path.name].frozen_from is None
    assert sorted(s.frozen_from for n, s in summaries.items() if n.startswith("fusion")) == [65, 79, 80, 88, 90]
    # Seed 0 at iteration 100: player 0's response is worth -0.1646 against the mixture, below the
    # meta-game value -0.1447, and enters with weight 0.
    response = next(r for r in summaries["fusion-seed0"].responses if (r.iteration, r.player) == (100, 0))
    assert response.trapped and response.identical and response.weight == 0
    assert response.value == pytest.approx(-0.16458, abs=1e-4) and response.threshold == pytest.approx(-0.14474, abs=1e-4)
    table = trap_table(runs)
    assert "| Fusion-PSRO | 5 | 5: 80 (seed 0), 88 (seed 1), 65 (seed 2), 79 (seed 3), 90 (seed 4) |" in table
    assert "| PSRO (inherit init) | 5 | 0 |" in table


def test_the_trap_table_lists_frozen_runs_in_seed_order():
    """Run directories sort seed10 before seed2; the table lists seed 2 first."""
    from fusion_psro.experiments.runs import RunSummary

    frozen = [_row(k, [k + 1, k + 1], [[1.0] + [0.0] * k] * 2, [(-0.1, 0.2), (-0.1, 0.2)], value=0.0)
              for k in range(1, 5)]
    runs = [RunSummary(Path(f"fusion-seed{seed}"), {"variant": "psro", "init": "fusion", "seed": seed}, frozen)
            for seed in (10, 2)]
    assert "| 2: 2 (seed 2), 2 (seed 10) |" in trap_table(runs)


def test_report_shows_the_trap_table(tmp_path, capsys):
    from fusion_psro.cli import main
    from fusion_psro.experiments.report import write_report

    dirs = [COMMITTED / "fusion-seed0", COMMITTED / "inherit-seed0"]
    report, _ = write_report(dirs, tmp_path / "report.md")
    text = report.read_text()
    assert "Trapped responses and frozen runs" in text and "| Fusion-PSRO | 1 | 1: 80 (seed 0) |" in text
    assert main(["report", *map(str, dirs)]) == 0
    out = capsys.readouterr().out
    assert "Trapped responses and frozen runs" in out and "| PSRO (inherit init) | 1 | 0 |" in out
