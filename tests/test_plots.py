"""Learning-curve plots: mean / standard error over seeds, alignment of seeds, files, CLI."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from fusion_psro.cli import main
from fusion_psro.experiments import run_psro
from fusion_psro.experiments.plots import (
    Y_LABEL,
    PlotError,
    interpolate_curves,
    method_curves,
    output_paths,
    plot_runs,
)
from fusion_psro.experiments.runs import RunSummary, load_runs
from fusion_psro.psro import PSROConfig

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory) -> list[Path]:
    """Exact-oracle Kuhn poker runs: variants psro and p-psro, seeds 0 and 1, 3 iterations."""
    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for variant in ("psro", "p-psro"):
        for seed in (0, 1):
            out = root / f"{variant}-seed{seed}"
            run_psro(PSROConfig(game="kuhn_poker", variant=variant, iterations=3, seed=seed), out, progress=False)
            dirs.append(out)
    return dirs


def _run(settings: dict, rows: list[tuple[int, int, float]], name: str = "run") -> RunSummary:
    """A hand-built run: rows of (iteration, cumulative episodes, exploitability)."""
    base = {"game": "kuhn_poker", "variant": "psro", "init": "normal", "oracle": "dqn", "meta_solver": "nash",
            "iterations": 10, "episodes": 100, "seed": 0}
    return RunSummary(
        Path(name), {**base, **settings},
        [{"iteration": i, "episodes": e, "exploitability": x, "nash_conv": 2 * x} for i, e, x in rows],
    )


def _check_png(path: Path) -> tuple[int, int]:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.std() > 0.05  # something is drawn, not a blank canvas
    return image.shape[1], image.shape[0]


def _check_svg(path: Path) -> str:
    text = path.read_text()
    assert ET.fromstring(text.encode()).tag == "{http://www.w3.org/2000/svg}svg"
    return text


def test_plot_runs_writes_valid_png_and_svg(run_dirs, tmp_path):
    prefix = tmp_path / "figures" / "kuhn"  # the parent directory does not exist yet
    paths = plot_runs(run_dirs, prefix)
    assert paths == [tmp_path / "figures" / "kuhn.png", tmp_path / "figures" / "kuhn.svg"]
    width_both, height = _check_png(paths[0])
    assert width_both > 1.8 * height  # two panels side by side
    svg = _check_svg(paths[1])
    # matplotlib keeps each text element's string in a comment next to its glyph paths.
    for text in (Y_LABEL, "PSRO iteration", "training episodes", "PSRO (n=2)", "P-PSRO (n=2)", "standard error"):
        assert text in svg
    assert "<!-- kuhn_poker -->" in svg  # the default title: the game

    single = plot_runs(run_dirs, tmp_path / "iterations", x="iterations", title="Kuhn, exact BR", log_y=True)
    width_single, _ = _check_png(single[0])
    assert width_single < 0.6 * width_both
    svg = _check_svg(single[1])
    assert "Kuhn, exact BR" in svg and "training episodes" not in svg


def test_the_same_runs_give_the_same_svg_bytes(run_dirs, tmp_path):
    first = plot_runs(run_dirs, tmp_path / "a")[1].read_bytes()
    assert plot_runs(run_dirs, tmp_path / "b")[1].read_bytes() == first  # no date, no random element ids


def test_method_curves_of_real_runs_match_their_metrics(run_dirs):
    runs = load_runs(run_dirs)
    curves = {curve.label: curve for curve in method_curves(runs, "iterations")}
    assert sorted(curves) == ["P-PSRO", "PSRO"]
    for label, variant in (("PSRO", "psro"), ("P-PSRO", "p-psro")):
        per_seed = np.array([
            [json.loads(line)["exploitability"] for line in (d / "metrics.jsonl").read_text().splitlines()]
            for d in run_dirs if d.name.startswith(f"{variant}-seed")
        ])
        curve = curves[label]
        assert curve.seeds == 2
        np.testing.assert_array_equal(curve.x, [1, 2, 3])
        np.testing.assert_allclose(curve.mean, per_seed.mean(axis=0))
        np.testing.assert_allclose(curve.se, per_seed.std(axis=0, ddof=1) / math.sqrt(2))
    # Exact best responses train no episodes: nothing to draw against episodes.
    assert all(curve.empty for curve in method_curves(runs, "episodes"))


def test_mean_and_standard_error_by_hand_with_unequal_lengths():
    runs = [
        _run({"seed": 0}, [(1, 100, 0.9), (2, 200, 0.5), (3, 300, 0.3)]),
        _run({"seed": 1}, [(1, 100, 0.7), (2, 200, 0.4)]),  # unfinished
        _run({"seed": 2}, [(1, 100, 0.8), (2, 200, 0.6), (3, 300, 0.2), (4, 400, 0.1)]),
        _run({"init": "fusion", "seed": 0}, [(1, 100, 0.5), (2, 200, 0.25)]),
    ]
    normal, fusion = method_curves(runs, "iterations")
    assert (normal.label, normal.seeds) == ("PSRO (normal init)", 3)
    np.testing.assert_array_equal(normal.x, [1, 2])  # the iterations every seed has
    np.testing.assert_allclose(normal.mean, [0.8, 0.5])
    # std(ddof=1) of (0.9, 0.7, 0.8) and of (0.5, 0.4, 0.6) is 0.1; SE = 0.1 / sqrt(3).
    np.testing.assert_allclose(normal.se, [0.1 / math.sqrt(3)] * 2)
    assert (fusion.label, fusion.seeds) == ("Fusion-PSRO", 1)
    np.testing.assert_allclose(fusion.mean, [0.5, 0.25])
    assert np.isnan(fusion.se).all()  # one seed: no band

    normal, _ = method_curves(runs, "episodes")  # the same grids: plain means, no interpolation
    np.testing.assert_array_equal(normal.x, [100, 200])
    np.testing.assert_allclose(normal.mean, [0.8, 0.5])


def test_interpolation_onto_common_episode_grid_by_hand():
    a = ([10, 20, 30], [1.0, 0.5, 0.2])
    b = ([15, 25, 35, 45], [0.9, 0.6, 0.3, 0.1])
    grid, values = interpolate_curves([a, b])
    # The union of both grids inside the range both cover, [15, 30]; nothing extrapolated.
    np.testing.assert_array_equal(grid, [15, 20, 25, 30])
    np.testing.assert_allclose(values, [[0.75, 0.5, 0.35, 0.2], [0.9, 0.75, 0.6, 0.45]])

    # A repeated episode count keeps the last exploitability recorded at it.
    grid, values = interpolate_curves([([0, 10, 10, 20], [1.0, 0.8, 0.6, 0.4]), ([0, 20], [1.0, 0.2])])
    np.testing.assert_array_equal(grid, [0, 10, 20])
    np.testing.assert_allclose(values, [[1.0, 0.6, 0.4], [1.0, 0.6, 0.2]])

    grid, values = interpolate_curves([([0, 10], [1, 0]), ([20, 30], [1, 0])])  # no overlap
    assert grid.size == 0 and values.shape == (2, 0)

    # The same through method_curves: mean and SE of the interpolated seeds.
    runs = [
        _run({"seed": 0}, [(1, 10, 1.0), (2, 20, 0.5), (3, 30, 0.2)]),
        _run({"seed": 1}, [(1, 15, 0.9), (2, 25, 0.6), (3, 35, 0.3), (4, 45, 0.1)]),
    ]
    (curve,) = method_curves(runs, "episodes")
    np.testing.assert_array_equal(curve.x, [15, 20, 25, 30])
    seeds = np.array([[0.75, 0.5, 0.35, 0.2], [0.9, 0.75, 0.6, 0.45]])
    np.testing.assert_allclose(curve.mean, seeds.mean(axis=0))
    np.testing.assert_allclose(curve.se, np.abs(seeds[0] - seeds[1]) / 2)  # n = 2: std(ddof=1)/sqrt(2) = |a-b|/2


def test_existing_outputs_are_not_overwritten(run_dirs, tmp_path):
    prefix = tmp_path / "fig"
    png, svg = plot_runs(run_dirs, prefix, x="iterations")
    before = png.read_bytes()
    with pytest.raises(PlotError, match="already exist.*--overwrite"):
        plot_runs(run_dirs[:2], prefix, x="iterations")
    assert png.read_bytes() == before
    png.unlink()  # one of the two files left is still protected
    with pytest.raises(PlotError, match=r"fig\.svg already exists"):
        plot_runs(run_dirs[:2], prefix, x="iterations")
    assert not png.exists()
    assert plot_runs(run_dirs[:2], prefix, x="iterations", overwrite=True) == [png, svg]
    assert png.exists()
    assert output_paths(tmp_path / "fig.png") == [png, svg]


def test_bad_requests_are_clear_errors(run_dirs, tmp_path):
    with pytest.raises(PlotError, match="x must be one of"):
        plot_runs(run_dirs, tmp_path / "f", x="wall")
    with pytest.raises(PlotError, match="nothing to draw on the episodes axis"):
        plot_runs(run_dirs, tmp_path / "f", x="episodes")
    assert not (tmp_path / "f.png").exists()


def test_cli_plot(run_dirs, tmp_path, capsys):
    prefix = tmp_path / "cli"
    args = ["plot", *map(str, run_dirs), "--out", str(prefix), "--x", "iterations"]
    assert main(args) == 0
    assert capsys.readouterr().out.split() == [f"{prefix}.png", f"{prefix}.svg"]
    _check_png(Path(f"{prefix}.png"))

    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("fusion-psro: error: ") and "pass --overwrite" in err and "Traceback" not in err
    assert main([*args, "--overwrite", "--log-y", "--title", "T"]) == 0

    assert main(["plot", *map(str, run_dirs), "--out", str(tmp_path / "ep"), "--x", "episodes"]) == 2
    assert "nothing to draw" in capsys.readouterr().err
    assert main(["plot", str(tmp_path), "--out", str(tmp_path / "none")]) == 2
    assert "not a fusion-psro run directory" in capsys.readouterr().err


def test_the_legend_fits_a_single_panel_figure():
    from fusion_psro.experiments.plots import _draw

    runs = [_run({"meta_solver": solver, "diversity_weight": weight, "episodes": 100 + k},
                 [(1, 10, 0.5), (2, 20, 0.4)], name=f"r{k}")
            for k, (solver, weight) in enumerate([("nash", 0.1), ("fp", 0.25), ("uniform", 0.5), ("alpharank", 1.0)])]
    curves = method_curves(runs, "iterations")
    assert min(len(c.label) for c in curves) > 40  # labels long enough that three columns overflow 6.4 inches
    figure = _draw({"iterations": curves}, title=None, log_y=False)
    figure.draw_without_rendering()
    (legend,) = figure.legends
    box = legend.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width, (box, figure.bbox)
    # Control: the legend in three columns, as it was drawn before, does not fit this figure.
    legend.remove()
    wide = figure.legend(legend.legend_handles, [t.get_text() for t in legend.texts], loc="outside lower center",
                         ncols=3)
    figure.draw_without_rendering()
    assert wide.get_window_extent().width > figure.bbox.width


def test_episodes_panel_that_would_repeat_the_iterations_panel_is_dropped(tmp_path):
    from fusion_psro.experiments.plots import episodes_per_iteration

    assert episodes_per_iteration([_run({}, [(1, 60, 0.5), (2, 120, 0.4)]), _run({}, [(1, 60, 0.6)])]) == 60
    assert episodes_per_iteration([_run({}, [(1, 60, 0.5), (2, 150, 0.4)])]) is None  # p-psro-like: varies
    assert episodes_per_iteration([_run({}, [(1, 0, 0.5), (2, 0, 0.4)])]) is None  # exact: the panel says why
    out = tmp_path / "pg"
    run_psro(PSROConfig(game="kuhn_poker", oracle="pg", iterations=2, oracle_options={"steps": 5}), out, progress=False)
    both = plot_runs([out], tmp_path / "both")
    svg = _check_svg(both[1])
    assert "PSRO iteration" in svg and "training episodes" not in svg
    width, height = _check_png(both[0])
    assert width < 1.8 * height  # one panel
    assert "training episodes" in _check_svg(plot_runs([out], tmp_path / "episodes", x="episodes")[1])  # asked for


def test_files_among_the_paths_are_skipped(run_dirs, tmp_path, capsys):
    report = tmp_path / "report.md"
    report.write_text("# a report")
    assert [r.path for r in load_runs([*run_dirs, report])] == run_dirs
    assert main(["plot", *map(str, run_dirs), str(report), "--out", str(tmp_path / "fig")]) == 0
    capsys.readouterr()
    assert main(["report", str(report)]) == 2
    assert "no run directory given, only files (report.md)" in capsys.readouterr().err
