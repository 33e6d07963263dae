"""Getting results back: load_run, the final mixtures as OpenSpiel policies, match and export."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from open_spiel.python.algorithms import exploitability as openspiel_exploitability

import fusion_psro
from conftest import run_killed
from fusion_psro.cli import main
from fusion_psro.experiments import RunDirectoryError, run_psro
from fusion_psro.experiments.results import MatchResult, export_meta_game, load_run, match_runs
from fusion_psro.psro import PSROConfig

SMALL_DQN = {"hidden_sizes": (16,), "num_envs": 32, "min_replay_before_learning": 64, "batch_size": 64}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    made = {
        "exact": PSROConfig(game="kuhn_poker", iterations=4, seed=1),
        "dqn": PSROConfig(game="kuhn_poker", oracle="dqn", init="fusion", iterations=3, episodes=200, seed=2,
                          oracle_options=SMALL_DQN),
        "leduc": PSROConfig(game="leduc_poker", iterations=3),
    }
    return {name: (root / name, run_psro(config, root / name, progress=False)) for name, config in made.items()}


@pytest.mark.parametrize("name", ["exact", "dqn", "leduc"])
def test_the_final_policy_has_the_recorded_exploitability_by_openspiel(runs, name):
    path, rows = runs[name]
    run = fusion_psro.load_run(path)
    assert run.finished and run.iterations == len(rows)
    assert [r.to_json() for r in run.records] == json.loads(json.dumps([r.to_json() for r in rows]))
    policy = run.final_policy()
    game = policy.game
    assert openspiel_exploitability.exploitability(game, policy) == pytest.approx(rows[-1].exploitability, abs=1e-9)
    assert fusion_psro.exploitability(game, policy) == pytest.approx(rows[-1].exploitability, abs=1e-9)


def test_networks_are_the_members_as_torch_modules(runs):
    run = load_run(runs["dqn"][0])
    networks = run.networks(0)
    assert networks[0] is None  # the uniform policy that seeds the population has no network
    member = run.populations[0][1]
    assert all(torch.equal(networks[1].state_dict()[k], member.parameters[k]) for k in member.parameters)
    with pytest.raises(RunDirectoryError, match="has no networks"):
        load_run(runs["exact"][0]).networks(0)


def test_meta_strategies_populations_and_meta_game_by_iteration(runs):
    path, rows = runs["exact"]
    run = load_run(path)
    sigma = run.meta_strategies(2)
    assert [s.tolist() for s in sigma] == rows[1].meta_strategies
    assert [len(p) for p in run.population_at(2)] == rows[1].population_sizes
    matrix = run.meta_game()
    final = run.meta_strategies()
    assert final[0] @ matrix @ final[1] == pytest.approx(rows[-1].meta_game_value, abs=1e-12)
    with pytest.raises(RunDirectoryError, match="there is no iteration 9"):
        run.record(9)


def test_an_unfinished_run_is_read_from_its_checkpoint(runs, tmp_path):
    source, rows = runs["exact"]
    out = tmp_path / "killed"
    run_killed(PSROConfig(game="kuhn_poker", iterations=4, seed=1), out, before="row", at=4)
    # killed after iteration 4's checkpoint, writing its row
    run = load_run(out)
    assert not run.finished and run.iterations == 3
    assert [len(p) for p in run.populations] == rows[2].population_sizes
    assert openspiel_exploitability.exploitability(run.final_policy().game, run.final_policy()) == pytest.approx(
        rows[2].exploitability, abs=1e-9)


def test_match_plays_both_seats_exactly(runs, capsys):
    a, b = runs["exact"][0], runs["dqn"][0]
    result = match_runs(a, b)
    # Against itself, a zero-sum mixture pair scores 0 on average over the seats.
    assert match_runs(a, a).a_mean == pytest.approx(0.0, abs=1e-12)
    # The seat values are the engine's values of the OpenSpiel mixtures.
    from open_spiel.python.algorithms.expected_game_score import policy_value

    pa, pb = load_run(a).final_policy(), load_run(b).final_policy()
    state = pa.game.new_initial_state()
    first = policy_value(state, [pa, pb])[0]
    second = policy_value(state, [pb, pa])[1]
    assert result == MatchResult(pytest.approx(first, abs=1e-12), pytest.approx(second, abs=1e-12), 0.0)
    assert main(["match", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"A as player 0 against B as player 1: {result.a_as_player0:+.6f}" in out
    assert main(["match", str(a), str(runs["leduc"][0])]) == 2
    assert "the runs played different games" in capsys.readouterr().err


def test_export_writes_the_meta_game_and_meta_strategies(runs, tmp_path, capsys):
    path, rows = runs["exact"]
    out = tmp_path / "export"
    assert main(["export", str(path), "--meta-game", "--out", str(out)]) == 0
    with open(out / "meta_game.csv") as handle:
        table = list(csv.reader(handle))
    matrix = np.array([[float(x) for x in row[1:]] for row in table[1:]])
    np.testing.assert_array_equal(matrix, load_run(path).meta_game())
    with open(out / "meta_strategies.csv") as handle:
        weights = list(csv.DictReader(handle))
    last = [[float(w["weight"]) for w in weights if w["iteration"] == str(len(rows)) and w["player"] == str(p)]
            for p in range(2)]
    assert last == rows[-1].meta_strategies
    data = json.loads((out / "meta_game.json").read_text())
    assert data["matrix"] == matrix.tolist() and len(data["meta_strategies"]) == len(rows)
    assert main(["export", str(path), "--meta-game", "--out", str(out)]) == 2  # never overwritten silently
    assert "pass --overwrite" in capsys.readouterr().err
    assert export_meta_game(path, out, overwrite=True)


def test_a_mixture_game_run_has_no_openspiel_policy(tmp_path):
    out = tmp_path / "mixture"
    run_psro(PSROConfig(game="mixture", iterations=2, oracle_options={"steps": 5}), out, progress=False)
    run = load_run(out)
    with pytest.raises(RunDirectoryError, match="not an OpenSpiel game"):
        run.final_policy()
    assert match_runs(run, run).a_mean == pytest.approx(0.0, abs=1e-12)
