"""Sweep protocols: validation, the record and its hash, and the report's protocol analysis."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from fusion_psro.cli import main
from fusion_psro.experiments.protocol import PROTOCOL_FILE, ProtocolError, parse_protocol, protocol_status
from fusion_psro.experiments.protocol_report import comparison_rows, endpoint, iterations_to
from fusion_psro.experiments.runs import RunSummary
from fusion_psro.experiments.statistics import holm
from fusion_psro.experiments.sweep import SweepConfigError, load_sweep, run_sweep

SWEEP = """
[sweep]
out = "{out}"
workers = 1

[grid]
variant = ["psro", "psro-rn"]
seed = [0, 1]

[settings]
game = "kuhn_poker"
iterations = 3

[protocol]
arms = {{ psro = {{ variant = "psro" }}, rn = {{ variant = "psro-rn" }} }}
seeds = [0, 1]
comparisons = [["rn", "psro"]]
margin = 0.05
"""

GOOD = {"arms": ["normal", "fusion"], "seeds": [0, 1], "comparisons": [["fusion", "normal"]], "margin": 0.05}


def _write(tmp_path: Path, text: str = SWEEP) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text.format(out=tmp_path / "runs"))
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"margin": 0}, r"margin must be a positive number"),
    ({"margin": "0.1"}, r"margin must be a positive number"),
    ({"seeds": [0, 0]}, r"seeds must be a non-empty list of distinct integers"),
    ({"arms": []}, r"arms must be a list of init names"),
    ({"arms": {"a": {"learning_rate": 1}}}, r"arm 'a' names unknown setting\(s\) \['learning_rate'\]"),
    ({"arms": {"a": {"seed": 1}}}, r"arm 'a' names a seed"),
    ({"comparisons": [["fusion", "inherit"]]}, r"names 'inherit', which is no arm; arms: normal, fusion"),
    ({"comparisons": [["fusion", "fusion"]]}, r"compares an arm with itself"),
    ({"comparisons": [["fusion"]]}, r"comparisons must be a non-empty list of \[A, B\] arm pairs"),
    ({"endpoint": "median"}, r"endpoint 'median' is unknown; accepted: mean_last_half, final"),
    ({"alpha": 0.7}, r"alpha must be a number in \(0, 0.5\)"),
    ({"margins": 1}, r"unknown key\(s\) \['margins'\] in \[protocol\]"),
    ({"margin": None}, r"\[protocol\] needs margin"),
])
def test_bad_protocols_are_one_line_errors(change, message):
    table = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ProtocolError, match=message) as info:
        parse_protocol(table)
    assert "\n" not in str(info.value)


def test_the_hash_is_of_the_protocols_content_not_its_spelling():
    a = parse_protocol(GOOD)
    b = parse_protocol({**GOOD, "alpha": 0.05, "endpoint": "mean_last_half"})  # the defaults, written out
    assert a.sha256 == b.sha256 and len(a.sha256) == 64
    assert parse_protocol({**GOOD, "margin": 0.06}).sha256 != a.sha256


@pytest.mark.parametrize(("old", "new", "message"), [
    ("seeds = [0, 1]", "seeds = [0, 1, 2]", r"arm 'psro' has no cell with seed 2"),
    ('rn = {{ variant = "psro-rn" }}', 'rn = {{ game = "kuhn_poker" }}', r"cell psro-seed0 is in the arms"),
    ('arms = {{ psro = {{ variant = "psro" }}, rn = {{ variant = "psro-rn" }} }}',
     'arms = {{ psro = {{ game = "kuhn_poker" }}, rn = {{ variant = "psro-rn" }} }}', r"cell psro_rn-seed0 is in"),
])
def test_a_protocol_must_fit_the_grid(tmp_path, old, new, message):
    assert old in SWEEP
    with pytest.raises(SweepConfigError, match=message):
        load_sweep(_write(tmp_path, SWEEP.replace(old, new)))


def test_the_protocol_hash_check_fails_when_the_protocol_is_edited_after_a_run(tmp_path, capsys):
    config = _write(tmp_path)
    sweep = load_sweep(config)
    run_sweep(sweep, progress=False)
    record = json.loads((sweep.out / PROTOCOL_FILE).read_text())
    assert record["sha256"] == sweep.protocol.sha256 and record["runs_before"] == []
    assert record["config"] == "../sweep.toml"  # relative to the sweep directory
    assert main(["report", str(sweep.out)]) == 0
    out = capsys.readouterr().out
    assert f"sha256 `{sweep.protocol.sha256}`" in out and "unchanged since it was recorded" in out
    assert "### Primary endpoint: mean exploitability (NashConv / 2) over iterations 2-3" in out
    assert "| rn vs psro | 2 |" in out and "(exploratory)" not in out
    assert "### Trapped responses and frozen runs, per arm" in out and "Incomplete" not in out
    assert "\n| psro | 2 | " in out and "\n| rn | 2 | " in out
    assert main(["report", str(sweep.out), "--out", str(tmp_path / "report.md")]) == 0
    assert "![performance profile](report-profile.png)" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "report-profile.png").stat().st_size > 5000

    config.write_text(config.read_text().replace("margin = 0.05", "margin = 0.2"))
    with pytest.raises(SweepConfigError, match=r"differs from the one recorded in .*protocol.json"):
        run_sweep(load_sweep(config), progress=False)
    assert main(["report", str(sweep.out)]) == 0
    out = capsys.readouterr().out
    assert "has changed since the first run was written" in out
    assert protocol_status(sweep.out).changed_to == parse_protocol(
        {**GOOD, "arms": {"psro": {"variant": "psro"}, "rn": {"variant": "psro-rn"}},
         "comparisons": [["rn", "psro"]], "margin": 0.2}).sha256

    record["protocol"]["margin"] = 0.2  # the record itself edited by hand
    (sweep.out / PROTOCOL_FILE).write_text(json.dumps(record))
    assert main(["report", str(sweep.out)]) == 0
    out = capsys.readouterr().out
    assert "The record was edited" in out and "### Primary endpoint (exploratory)" in out


def test_a_study_run_in_parts_says_how_much_of_it_is_recorded(tmp_path, capsys):
    sweep = load_sweep(_write(tmp_path))
    run_sweep(sweep, progress=False)
    for cell in sweep.cells:  # the study so far: seed 1 of the rn arm not yet run
        if cell.config.variant == "psro-rn" and cell.config.seed == 1:
            for path in sorted(cell.out.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            cell.out.rmdir()
    assert main(["report", str(sweep.out)]) == 0
    out = capsys.readouterr().out
    assert "**Incomplete: 1 of 2 planned runs of 1 arm(s) are recorded** (rn 1 of 2)" in out
    assert "| rn vs psro | 1 |" in out and "\n| rn | 1 | " in out


def test_a_study_run_seed_by_seed_with_seeds_records_one_protocol_and_completes(tmp_path, capsys):
    """`sweep --seeds` runs a part of a study; the parts together are the whole study, unchanged."""
    config = _write(tmp_path)
    assert main(["sweep", str(config), "--seeds", "1", "--quiet"]) == 0
    out = tmp_path / "runs"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["psro-seed1", "psro_rn-seed1"]
    record = json.loads((out / PROTOCOL_FILE).read_text())
    assert record["runs_before"] == [] and record["protocol"]["seeds"] == [0, 1]  # the whole study's protocol
    capsys.readouterr()
    assert main(["sweep", str(config), "--seeds", "0-1", "--quiet"]) == 0  # seed 1 is skipped, seed 0 runs
    assert json.loads((out / PROTOCOL_FILE).read_text()) == record
    assert main(["report", str(out)]) == 0
    report = capsys.readouterr().out
    assert "Incomplete" not in report and "| rn vs psro | 2 |" in report and "(exploratory)" not in report
    assert main(["sweep", str(config), "--seeds", "0,2", "--quiet"]) == 2
    assert "--seeds names seed(s) 2 that the grid does not run; its seeds are 0-1" in capsys.readouterr().err
    assert main(["sweep", str(config), "--seeds", "1-0"]) == 2
    assert "--seeds takes comma-separated seeds and ranges" in capsys.readouterr().err


def test_a_protocol_recorded_after_runs_makes_them_exploratory(tmp_path, capsys):
    config = _write(tmp_path, SWEEP.split("[protocol]")[0])
    run_sweep(load_sweep(config), progress=False)
    assert main(["report", str(tmp_path / "runs")]) == 0
    assert "has no `protocol.json`: nothing was fixed before its runs" in capsys.readouterr().out
    config.write_text(SWEEP.format(out=tmp_path / "runs"))  # the protocol, written after the runs
    assert main(["report", str(tmp_path / "runs"), "--protocol", str(config)]) == 0  # applied, not recorded
    out = capsys.readouterr().out
    assert "this one is applied after the fact" in out and "### Primary endpoint (exploratory)" in out
    assert main(["report", str(tmp_path / "runs" / "psro-seed0"), "--protocol", str(config)]) == 2
    assert "applies to sweep directories, and none was given" in capsys.readouterr().err
    run_sweep(load_sweep(config), progress=False)
    assert main(["report", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "recorded after 4 run(s) had been written" in out and "### Primary endpoint (exploratory)" in out
    assert main(["report", str(tmp_path / "runs" / "psro-seed0")]) == 0
    assert "every comparison in this report is exploratory" in capsys.readouterr().out


def test_the_quick_scale_records_no_protocol(tmp_path):
    config = _write(tmp_path, SWEEP + '\n[quick]\nseed = [0]\n')
    sweep = load_sweep(config, quick=True)
    assert sweep.protocol is None and len(sweep.cells) == 2


def _run(seed: int, init: str, curve: list[float]) -> RunSummary:
    rows = [{"iteration": i + 1, "exploitability": v} for i, v in enumerate(curve)]
    return RunSummary(Path(f"{init}-seed{seed}"), {"init": init, "seed": seed}, rows)


def test_endpoints_and_comparisons_against_scipy():
    run = _run(0, "fusion", [1.0, 0.8, 0.5, 0.4, 0.3])
    assert endpoint(run, "final", 5) == 0.3 and endpoint(run, "final", 4) == 0.4
    assert endpoint(run, "mean_last_half", 5) == pytest.approx((0.5 + 0.4 + 0.3) / 3)  # iterations 3-5
    assert endpoint(run, "mean_last_half", 4) == pytest.approx((0.5 + 0.4) / 2)  # iterations 3-4
    assert iterations_to(run, 0.5, 5) == 3 and iterations_to(run, 0.1, 5) is None

    protocol = parse_protocol({"arms": ["normal", "inherit", "fusion"], "seeds": [0, 1, 2, 3],
                               "comparisons": [["fusion", "inherit"], ["fusion", "normal"]], "margin": 0.05})
    values = {"fusion": {0: 0.20, 1: 0.25, 2: 0.22, 3: 0.21}, "inherit": {0: 0.22, 1: 0.24, 2: 0.25, 3: 0.22},
              "normal": {0: 0.40, 1: 0.35, 2: 0.38, 3: 0.41}}
    rows = comparison_rows(values, protocol)
    p_values = []
    for row, other in zip(rows, ("inherit", "normal")):
        a, b = np.array(list(values["fusion"].values())), np.array(list(values[other].values()))
        reference = stats.ttest_rel(b, a)
        assert row["paired"].mean == pytest.approx((b - a).mean())
        assert row["paired"].p == pytest.approx(reference.pvalue)
        p_values.append(reference.pvalue)
    assert [row["holm"] for row in rows] == pytest.approx(holm(p_values))
    assert rows[1]["tost"].verdict == "better by at least 0.05" and rows[1]["poi"][0] == 1.0
    # inherit - fusion = 0.02, -0.01, 0.03, 0.01: mean 0.0125, s.e. 0.0085, both one-sided tests reject.
    assert rows[0]["tost"].verdict == "equivalent within ±0.05" and rows[0]["tost"].p < 0.05
    # Holm over the two claims (p 0.011 and 0.008: 0.008 x 2 and 0.011 x 1 stay below 0.05): both stand.
    assert [row["holm_verdict"] for row in rows] == ["equivalent within ±0.05", "better by at least 0.05"]
    # The same comparison five times over: five claims at p 0.008 each, Holm x5 = 0.041 < 0.05 still;
    # at p 0.011 each, x5 = 0.055: the equivalence verdicts fall to "not determined".
    five = comparison_rows(values, dataclasses.replace(protocol, comparisons=(("fusion", "inherit"),) * 5))
    assert {row["holm_verdict"] for row in five} == {"not determined at this n"}
    assert {row["tost"].verdict for row in five} == {"equivalent within ±0.05"}


def test_a_bad_protocol_at_the_cli_is_one_line_and_exit_status_2(tmp_path, capsys):
    config = _write(tmp_path, SWEEP.replace("margin = 0.05", "margin = -1"))
    assert main(["sweep", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fusion-psro: error: ") and "margin must be a positive number" in err[-1]
    assert not (tmp_path / "runs").exists()


def test_the_secondary_welch_view_of_a_study_keeps_only_its_protocols_comparisons(tmp_path, capsys):
    """Two Fusion-X arms and two other inits make four Welch pairs; the protocol names three."""
    text = """
[sweep]
out = "{out}"
workers = 1

[grid]
arm = [
  {{ name = "normal", init = "normal" }},
  {{ name = "inherit", init = "inherit" }},
  {{ name = "fusion", init = "fusion", init_options = {{ weights = "nash" }} }},
  {{ name = "uniform", init = "fusion", init_options = {{ weights = "uniform" }} }},
]
seed = [0, 1]

[settings]
game = "kuhn_poker"
oracle = "pg"
iterations = 3
oracle_options = {{ steps = 2 }}

[protocol]
seeds = [0, 1]
comparisons = [["fusion", "inherit"], ["fusion", "normal"], ["uniform", "inherit"]]
margin = 0.05

[protocol.arms]
normal = {{ init = "normal" }}
inherit = {{ init = "inherit" }}
fusion = {{ init = "fusion", init_options = {{ weights = "nash" }} }}
uniform = {{ init = "fusion", init_options = {{ weights = "uniform" }} }}
"""
    from fusion_psro.experiments.protocol_report import planned_pair_filter
    from fusion_psro.experiments.report import fusion_differences_table
    from fusion_psro.experiments.runs import load_runs

    sweep = load_sweep(_write(tmp_path, text))
    run_sweep(sweep, progress=False)
    runs = load_runs(sorted(p for p in sweep.out.iterdir() if p.is_dir()))

    def pairs(table: str) -> list[str]:
        return sorted(line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:])

    every = pairs(fusion_differences_table(runs))
    planned = pairs(fusion_differences_table(runs, planned_pair_filter([sweep.out])))
    assert len(every) == 4 and len(planned) == 3 and set(planned) < set(every)
    left_out = (set(every) - set(planned)).pop()  # normal against the uniform weighting: no comparison names it
    assert left_out == "PSRO (normal init) [init_options={}] − Fusion-PSRO [init_options={'weights': 'uniform'}]"
    assert main(["report", str(sweep.out)]) == 0
    out = capsys.readouterr().out
    assert "only the pairs its comparisons name" in out and left_out not in out
    assert pairs(fusion_differences_table(runs, planned_pair_filter([]))) == every  # no study: every pair
