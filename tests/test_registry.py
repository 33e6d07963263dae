"""Registries: components registered from outside the package run like built-in ones.

A toy oracle and a toy variant defined here are registered when this module is imported,
through the public ``fusion_psro.register_*`` decorators, as a user's module would, and run
through ``PSRO``, the ``fusion-psro run`` entry point and a Ray sweep (whose workers learn
them by loading this file). Validation asks their declared capabilities.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from importlib import metadata

import numpy as np
import pytest

import fusion_psro
from fusion_psro.cli import main
from fusion_psro.errors import ConfigError, UnknownComponentError
from fusion_psro.evaluation import mixture_best_response
from fusion_psro.experiments import read_metrics
from fusion_psro.oracles import BestResponseResult, Oracle
from fusion_psro.policies import uniform_policy
from fusion_psro.psro import PSRO, PSROConfig, ResponsePlan, Variant
from fusion_psro.registry import ORACLES, Registry


@dataclasses.dataclass(frozen=True)
class SmoothedSettings:
    """Settings of the toy oracle."""

    epsilon: float = 0.25


@fusion_psro.register_oracle("smoothed-exact")
class SmoothedExactOracle(Oracle):
    """The exact best response mixed with ``epsilon`` of the uniform policy."""

    game_kinds = ("tabular",)
    settings_class = SmoothedSettings

    def __init__(self, compiled, settings):
        self.compiled, self.settings = compiled, settings or SmoothedSettings()

    @classmethod
    def from_space(cls, space, settings):
        return cls(space.compiled, settings)

    def best_response(self, request):
        exact = mixture_best_response(self.compiled, request.player, request.opponent_population,
                                      request.opponent_meta_strategy)
        epsilon = self.settings.epsilon
        policy = (1 - epsilon) * exact.policy + epsilon * uniform_policy(self.compiled, request.player)
        return BestResponseResult(policy=policy)


@fusion_psro.register_variant("alternating")
class Alternating(Variant):
    """One best response an iteration, the players taking turns (player 0 first)."""

    label = "Alternating PSRO"

    def plan(self, run, round):
        if round > 0:
            return []
        state = run.state
        player = (state.iteration - 1) % 2
        sigma = state.meta_strategies
        return [ResponsePlan(player=player, opponents=state.populations[1 - player], opponent_weights=sigma[1 - player],
                             seed=run.seed(state.iteration, player), own=state.populations[player],
                             own_weights=sigma[player], previous=state.last_best_response[player])]

    def take(self, run, plans, responses):
        for plan, response in zip(plans, responses):
            run.add(plan.player, response.member)


def test_toy_components_run_through_psro_with_exact_numbers():
    rows = PSRO(PSROConfig(game="kuhn_poker", oracle="smoothed-exact", variant="alternating", iterations=4,
                           oracle_options={"epsilon": 0.5})).run()
    assert [r.population_sizes for r in rows] == [[2, 1], [2, 2], [3, 2], [3, 3]]
    assert all(r.inits == [None] for r in rows)
    # An epsilon-smoothed response against a population of one is worth exactly the mix of the two values.
    assert rows[0].exploitability > 0


def test_toy_components_run_through_the_cli_entry_point(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--game", "kuhn_poker", "--oracle", "smoothed-exact", "--variant", "alternating",
                 "--iterations", "3", "--oracle-option", "epsilon=0.1", "--out", str(out), "--quiet"]) == 0
    rows = read_metrics(out)
    assert [r["population_sizes"] for r in rows] == [[2, 1], [2, 2], [3, 2]]
    command = json.loads((out / "config.json").read_text())["command"]
    assert command[:2] == ["fusion-psro", "--plugin"] and command[2].endswith("test_registry.py")
    assert "--variant" in command and "alternating" in command


def test_toy_components_run_in_a_ray_sweep(tmp_path):
    from fusion_psro.experiments.sweep import load_sweep, run_sweep

    path = tmp_path / "sweep.toml"
    path.write_text(f"""
[sweep]
out = "{tmp_path / 'runs'}"
workers = 2

[grid]
seed = [0, 1]

[settings]
game = "kuhn_poker"
oracle = "smoothed-exact"
variant = "alternating"
iterations = 2
""")
    sweep = load_sweep(path)
    assert any(p.endswith("test_registry.py") for p in sweep.plugins)
    results = run_sweep(sweep, progress=False)
    assert [r["action"] for r in results] == ["ran", "ran"], results
    assert read_metrics(tmp_path / "runs" / "seed1")[-1]["population_sizes"] == [2, 2]


def test_validation_asks_capabilities_not_names():
    with pytest.raises(ConfigError, match="does not apply to 'mixture' .* accepted: gradient"):
        PSROConfig(game="mixture", oracle="smoothed-exact").resolved()
    with pytest.raises(ConfigError, match="--init fusion does not apply to the smoothed-exact oracle.*accepted|"
                                          "trains parameters: "):
        PSROConfig(game="kuhn_poker", oracle="smoothed-exact", init="fusion").resolved()
    with pytest.raises(ConfigError, match="the smoothed-exact oracle supports none. Use --oracle dqn"):
        PSROConfig(game="kuhn_poker", oracle="smoothed-exact", variant="psd").resolved()
    with pytest.raises(ConfigError, match=r"unknown smoothed-exact oracle option\(s\) \['eps'\]; accepted: epsilon"):
        PSRO(PSROConfig(game="kuhn_poker", oracle="smoothed-exact", oracle_options={"eps": 0.1}))
    assert "smoothed-exact" in ORACLES.names(lambda o: not o.trains_parameters)


def test_a_plugin_file_registers_components_for_the_command_line(tmp_path):
    plugin = tmp_path / "last_member.py"
    plugin.write_text('''
import numpy as np
import fusion_psro
from fusion_psro.meta import MetaSolution

@fusion_psro.register_meta_solver("last-member")
def solve_last_member(M):
    """Each player puts all weight on its newest member."""
    sigma0, sigma1 = np.eye(M.shape[0])[-1], np.eye(M.shape[1])[-1]
    return MetaSolution((sigma0, sigma1), float(sigma0 @ M @ sigma1), "last-member")
''')
    out = tmp_path / "run"
    try:
        assert main(["--plugin", str(plugin), "run", "--game", "kuhn_poker", "--meta-solver", "last-member",
                     "--iterations", "3", "--out", str(out), "--quiet"]) == 0
        assert [r["meta_strategies"][0] for r in read_metrics(out)] == [[0.0, 1.0], [0.0, 0.0, 1.0], [0, 0, 0, 1.0]]
    finally:
        fusion_psro.registry.META_SOLVERS.unregister("last-member")
        fusion_psro.registry.PLUGINS.clear()


def test_a_missing_plugin_is_a_one_line_error(tmp_path, capsys):
    assert main(["--plugin", str(tmp_path / "nothing.py"), "run", "--out", str(tmp_path / "x")]) == 2
    assert "plug-in file" in capsys.readouterr().err
    assert main(["--plugin", "no_such_module_anywhere", "report", "x"]) == 2
    assert "cannot load plug-in 'no_such_module_anywhere': ModuleNotFoundError" in capsys.readouterr().err


def test_registry_names_errors_and_replacement():
    things = Registry("thing", builtins="json", group="fusion_psro.test_things")
    things.register("a", 1)
    things.register("b")(2)
    assert things.names() == ("a", "b") and things.get("b") == 2 and "a" in things
    with pytest.raises(UnknownComponentError, match="unknown thing 'c'; accepted: a, b"):
        things.get("c")
    with pytest.raises(ConfigError, match="thing 'a' is already registered"):
        things.register("a", 3)
    things.register("a", 1)  # the same component again changes nothing
    things.register("a", 3, replace=True)
    assert things.get("a") == 3
    with pytest.raises(ConfigError, match="non-empty string"):
        things.register(" a", 4)


def test_deferred_components_are_imported_when_first_needed(tmp_path, monkeypatch):
    (tmp_path / "deferred_things.py").write_text(
        "import sys\nfrom test_registry_deferred import THINGS\n"
        "class Big:\n    size = 3\n"
        "class Small:\n    size = 1\n"
        "THINGS.register('big', Big)\n"  # registers itself; 'small' is found as the attribute
    )
    (tmp_path / "test_registry_deferred.py").write_text(
        "from fusion_psro.registry import Registry\n"
        "THINGS = Registry('thing', builtins='json', group='fusion_psro.test_things')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import sys

    from test_registry_deferred import THINGS

    THINGS.register("eager", 7)
    THINGS.register_deferred("big", "deferred_things", "Big")
    THINGS.register_deferred("small", "deferred_things", "Small")
    assert THINGS.names() == ("eager", "big", "small") and "big" in THINGS
    assert "deferred_things" not in sys.modules  # listing the names imports nothing
    with pytest.raises(ConfigError, match="thing 'big' is already registered .deferred_things.Big."):
        THINGS.register("big", str)
    assert "deferred_things" not in sys.modules
    assert THINGS.get("small").size == 1 and THINGS.get("small").name == "small"
    assert THINGS.get("big").__module__ == "deferred_things" and THINGS.get("big").size == 3
    assert THINGS.names(lambda thing: getattr(thing, "size", 0) > 2) == ("big",)
    assert THINGS.names() == ("eager", "big", "small")  # registration order kept
    monkeypatch.delitem(sys.modules, "deferred_things")
    monkeypatch.delitem(sys.modules, "test_registry_deferred")


def test_the_pytorch_oracles_are_registered_without_importing_them():
    """``fusion_psro.oracles`` lists dqn, pg and gradient by name; their classes still import by name."""
    import subprocess
    import sys

    code = ("import sys\nfrom fusion_psro.registry import ORACLES\nnames = ORACLES.names()\n"
            "print(names, 'torch' in sys.modules)\n"
            "from fusion_psro.oracles import DQNOracle\n"
            "print(ORACLES.get('dqn') is DQNOracle, 'torch' in sys.modules)")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           check=True).stdout.splitlines()
    assert lines == ["('exact', 'dqn', 'pg', 'gradient') False", "True True"]


def test_entry_points_register_objects_and_skip_broken_ones(monkeypatch, caplog):
    group = "fusion_psro.test_things"
    found = [
        metadata.EntryPoint(name="pi", value="math:pi", group=group),
        metadata.EntryPoint(name="broken", value="no_such_module_anywhere:thing", group=group),
    ]
    monkeypatch.setattr(metadata, "entry_points", lambda group: [e for e in found if e.group == group])
    things = Registry("thing", builtins="json", group=group)
    with caplog.at_level(logging.WARNING):
        assert things.names() == ("pi",)
    assert abs(things.get("pi") - np.pi) < 1e-15
    assert "ignoring thing entry point 'broken'" in caplog.text
