"""The README's "Extending fusion-psro" examples, run as a user would: written to a file and
loaded with ``--plugin``, then run through the command line and through ``PSRO``; the stateful
variant also through ``--resume`` (in a fresh process that loads the plug-in config.json
records) and a Ray sweep."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fusion_psro.cli import main
from fusion_psro.experiments import read_metrics
from fusion_psro.registry import INITS, META_SOLVERS, ORACLES, PLUGINS, VARIANTS

README = Path(__file__).resolve().parent.parent / "README.md"
NAMES = [(META_SOLVERS, "nash-smoothed"), (INITS, "inherit-noisy"), (ORACLES, "exact-epsilon"),
         (VARIANTS, "alternating-seats"), (VARIANTS, "recent-opponents")]


def extending_examples() -> str:
    """The Python blocks of the README's "Extending fusion-psro" section, as one file."""
    text = README.read_text()
    section = text.split("## Extending fusion-psro", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 5, "the section shows a meta-solver, an init, an oracle, a variant and a stateful one"
    return "\n".join(blocks)


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "my_components.py"
    path.write_text(extending_examples())
    yield str(path)
    for registry, name in NAMES:
        registry.unregister(name)
    PLUGINS.clear()


def test_the_readme_components_run_through_the_command_line(plugin, tmp_path):
    out = tmp_path / "mine"
    assert main(["--plugin", plugin, "run", "--game", "kuhn_poker", "--oracle", "exact-epsilon", "--oracle-option",
                 "epsilon=0.05", "--variant", "alternating-seats", "--meta-solver", "nash-smoothed",
                 "--iterations", "6", "--out", str(out), "--quiet"]) == 0
    rows = read_metrics(out)
    assert [r["population_sizes"] for r in rows] == [[2, 1], [2, 2], [3, 2], [3, 3], [4, 3], [4, 4]]
    # nash-smoothed keeps epsilon / K on every member.
    assert min(rows[-1]["meta_strategies"][0]) >= 0.1 / 4 - 1e-12
    noisy = tmp_path / "noisy"
    assert main(["--plugin", plugin, "run", "--game", "kuhn_poker", "--oracle", "pg", "--init", "inherit-noisy",
                 "--oracle-option", "hidden_sizes=[16]", "--steps", "5", "--iterations", "3", "--out", str(noisy),
                 "--quiet"]) == 0
    assert [r["inits"] for r in read_metrics(noisy)] == [["normal", "normal"]] + [["inherit-noisy"] * 2] * 2


def test_the_readme_components_are_validated_like_built_in_ones(plugin, capsys):
    assert main(["--plugin", plugin, "run", "--game", "mixture", "--oracle", "exact-epsilon", "--out", "x"]) == 2
    assert "does not apply to 'mixture'" in capsys.readouterr().err
    assert main(["--plugin", plugin, "run", "--game", "kuhn_poker", "--oracle", "exact-epsilon",
                 "--init", "inherit-noisy", "--out", "x"]) == 2
    assert "does not apply to the exact-epsilon oracle" in capsys.readouterr().err
    assert main(["--plugin", plugin, "run", "--game", "kuhn_poker", "--oracle", "exact-epsilon",
                 "--oracle-option", "epsilon=2.0", "--out", "x"]) == 2
    assert "exact-epsilon oracle: epsilon must be a number in [0, 1], got 2.0" in capsys.readouterr().err


def _numbers(rows: list[dict]) -> list[tuple]:
    return [(r["iteration"], r["exploitability"], r["population_sizes"], r["meta_strategies"]) for r in rows]


def test_the_readme_stateful_variant_takes_its_setting_and_keeps_its_window(plugin):
    from fusion_psro.psro import PSRO, PSROConfig
    from fusion_psro.registry import load_plugin

    load_plugin(plugin)
    psro = PSRO(PSROConfig(game="kuhn_poker", variant="recent-opponents", variant_options={"window": 2}, iterations=4))
    psro.run()
    assert psro.variant.settings.window == 2
    assert psro.variant.recent == [[3, 4], [3, 4]]  # the last two of the members 1..4 it added
    wide = PSRO(PSROConfig(game="kuhn_poker", variant="recent-opponents", variant_options={"window": 9}, iterations=4))
    wide.run()
    assert wide.variant.recent == [[1, 2, 3, 4], [1, 2, 3, 4]]


def test_the_readme_stateful_variant_runs_and_resumes_through_the_command_line(plugin, tmp_path, capsys):
    run = ["--plugin", plugin, "run", "--game", "kuhn_poker", "--variant", "recent-opponents", "--quiet"]
    assert main([*run, "--variant-option", "window=0", "--out", str(tmp_path / "bad")]) == 2
    assert "recent-opponents variant: window must be an integer >= 1, got 0" in capsys.readouterr().err
    assert main([*run, "--variant-option", "size=2", "--out", str(tmp_path / "bad")]) == 2
    assert "unknown recent-opponents variant option(s) ['size']; accepted: window" in capsys.readouterr().err

    full, part = tmp_path / "full", tmp_path / "part"
    assert main([*run, "--variant-option", "window=2", "--iterations", "4", "--out", str(full)]) == 0
    assert main([*run, "--variant-option", "window=2", "--iterations", "2", "--out", str(part)]) == 0
    assert json.loads((part / "config.json").read_text())["plugins"] == [str(Path(plugin).resolve())]
    # A fresh process without --plugin: config.json names the plug-in, and the variant's state comes back.
    resumed = subprocess.run([sys.executable, "-m", "fusion_psro.cli", "run", "--resume", str(part),
                              "--iterations", "4", "--quiet"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _numbers(read_metrics(part)) == _numbers(read_metrics(full))

    Path(plugin).rename(tmp_path / "moved.py")
    assert main(["run", "--resume", str(part), "--iterations", "5", "--quiet"]) == 2
    assert "pass the --plugin that registers its components" in capsys.readouterr().err


def test_the_readme_stateful_variant_runs_in_a_ray_sweep(plugin, tmp_path):
    config = tmp_path / "recent.toml"
    config.write_text(f"""
[sweep]
out = "{tmp_path / 'sweep'}"
workers = 2
plugins = ["{Path(plugin).name}"]

[grid]
seed = [0, 1]

[settings]
game = "kuhn_poker"
variant = "recent-opponents"
variant_options = {{ window = 2 }}
iterations = 3
""")
    assert main(["sweep", str(config), "--quiet"]) == 0
    reference = tmp_path / "reference"
    assert main(["--plugin", plugin, "run", "--game", "kuhn_poker", "--variant", "recent-opponents", "--variant-option",
                 "window=2", "--iterations", "3", "--seed", "1", "--out", str(reference), "--quiet"]) == 0
    cells = sorted((tmp_path / "sweep").glob("seed*"))
    assert [c.name for c in cells] == ["seed0", "seed1"]
    assert _numbers(read_metrics(cells[1])) == _numbers(read_metrics(reference))
    assert json.loads((cells[0] / "config.json").read_text())["psro"]["variant_options"] == {"window": 2}
