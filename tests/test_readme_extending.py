"""The README's "Extending fusion-psro" examples, run as a user would: written to a file and
loaded with ``--plugin``, then run through the command line and through ``PSRO``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fusion_psro.cli import main
from fusion_psro.experiments import read_metrics
from fusion_psro.registry import INITS, META_SOLVERS, ORACLES, PLUGINS, VARIANTS

README = Path(__file__).resolve().parent.parent / "README.md"
NAMES = {META_SOLVERS: "nash-smoothed", INITS: "inherit-noisy", ORACLES: "exact-epsilon", VARIANTS: "alternating-seats"}


def extending_examples() -> str:
    """The Python blocks of the README's "Extending fusion-psro" section, as one file."""
    text = README.read_text()
    section = text.split("## Extending fusion-psro", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 4, "the section shows a meta-solver, an init, an oracle and a variant"
    return "\n".join(blocks)


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "my_components.py"
    path.write_text(extending_examples())
    yield str(path)
    for registry, name in NAMES.items():
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
