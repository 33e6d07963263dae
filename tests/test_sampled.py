"""Sampled play: batched pyspiel episodes, network members, the estimated meta-game, routing,
approximate exploitability, parallel best responses and the faults of issue 13.

References: the exact engine (payoffs, best responses, exploitability of the same networks'
greedy tables) and OpenSpiel's own game dynamics.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from fusion_psro.errors import ConfigError, GameNotSupportedError, InvalidPolicyError
from fusion_psro.registry import VARIANTS
from fusion_psro.evaluation import best_response, expected_payoff, payoff_matrix
from fusion_psro.games import compile_game
from fusion_psro.games.sampled import (
    ObservationTable,
    SampledEpisodes,
    load_sampled_game,
    play_games,
    random_legal_actions,
    tensor_size,
    too_large_to_compile,
)
from fusion_psro.oracles.base import BestResponseRequest
from fusion_psro.oracles.dqn import DQNConfig, DQNOracle
from fusion_psro.oracles.episode_sources import tabulate_member
from fusion_psro.oracles.network_policy import NetworkSeat, decode, encode, uniform_vector
from fusion_psro.oracles.networks import MLP, fresh_parameters
from fusion_psro.policies import uniform_policy
from fusion_psro.psro import PSRO, PSROConfig
from fusion_psro.psro.sampled_space import Z95, SampledSpace
from fusion_psro.psro.spaces import TabularSpace, game_kind

SMALL = {"hidden_sizes": [16], "batch_size": 32, "min_replay_before_learning": 64, "num_envs": 32}
TWO_DICE = "liars_dice(numdice=2)"


class UniformSeat:
    """A seat that plays a uniformly random legal action (one member, the uniform policy)."""

    weights = np.ones(1)

    def act(self, members, ids, table, uniforms) -> np.ndarray:
        return random_legal_actions(table.legal_mask[ids], uniforms)


def _config(**changes) -> PSROConfig:
    settings = dict(game="kuhn_poker", oracle="dqn", evaluation="sampled", iterations=2, episodes=300, seed=3,
                    sims_per_entry=100, oracle_options=dict(SMALL))
    settings.update(changes)
    return PSROConfig(**settings)


def _network_vector(game: str, hidden=(16,), seed=0, scale=1.0) -> np.ndarray:
    loaded = load_sampled_game(game)
    network = MLP(tensor_size(loaded), hidden, loaded.num_distinct_actions())
    parameters = fresh_parameters(network, "normal", seed)
    return encode({k: v * scale for k, v in parameters.items()}, hidden)


# -- batched pyspiel episodes ---------------------------------------------------------------

def test_observation_table_interns_grows_and_compacts():
    game = load_sampled_game("kuhn_poker")
    table = ObservationTable(tensor_size(game), game.num_distinct_actions(), capacity=2)
    states = []
    for cards in [(0, 1), (1, 0), (2, 0)]:
        state = game.new_initial_state()
        for card in cards:
            state.apply_action(card)
        states.append(state)
    ids = [table.intern(s, 0) for s in states]
    assert ids == [0, 1, 2] and table.intern(states[1], 0) == 1 and table.version == 1  # grew once
    np.testing.assert_array_equal(table.tensors[2], states[2].information_state_tensor(0))
    mapping = table.compact(np.array([2, 0]))
    assert mapping.tolist() == [0, -1, 1] and table.size == 2
    assert table.intern(states[2], 0) == 1 and table.intern(states[1], 0) == 2


def test_uniform_play_matches_the_exact_value():
    compiled = compile_game("leduc_poker")
    exact = expected_payoff(compiled, uniform_policy(compiled, 0), uniform_policy(compiled, 1))[0]
    returns = play_games(load_sampled_game("leduc_poker"), (UniformSeat(), UniformSeat()), 8000, seed=1)
    assert returns.size == 8000
    assert abs(returns.mean() - exact) < 4 * returns.std() / np.sqrt(returns.size)
    again = play_games(load_sampled_game("leduc_poker"), (UniformSeat(), UniformSeat()), 8000, seed=1)
    np.testing.assert_array_equal(returns, again)


def test_learner_protocol_plays_exactly_max_episodes_and_refuses_illegal_actions():
    game = load_sampled_game("kuhn_poker")
    episodes = SampledEpisodes(game, (None, UniformSeat()), learner=0, num_envs=8, seed=0, max_episodes=50)
    episodes.reset()
    rng = np.random.default_rng(0)
    ended = 0
    while not episodes.finished:
        ids = episodes.infostates
        legal = episodes.table.legal_mask[np.maximum(ids, 0)]
        actions = np.argmax(legal * rng.random(legal.shape), axis=1)
        result = episodes.step(actions)
        ended += int(result.done.sum())
    assert ended == episodes.episodes_completed == 50
    episodes = SampledEpisodes(game, (None, UniformSeat()), learner=0, num_envs=2, seed=0)
    episodes.reset()
    with pytest.raises(InvalidPolicyError, match="illegal action 7"):
        episodes.step(np.array([7, 0]))


# -- network members ------------------------------------------------------------------------

def test_policy_vectors_round_trip_and_act_greedily():
    vector = _network_vector("leduc_poker", hidden=(8, 8), seed=2)
    network = decode(vector, 30, 3)
    np.testing.assert_array_equal(encode(network.state_dict(), (8, 8)), vector)
    compiled = compile_game("leduc_poker")
    table = tabulate_member(vector, compiled, 1)
    info = compiled.players[1]
    with torch.no_grad():
        q = network(torch.from_numpy(info.tensors)).masked_fill(~torch.from_numpy(info.legal_mask), -torch.inf)
    np.testing.assert_array_equal(table.argmax(axis=1), q.argmax(dim=1).numpy())
    uniform = uniform_vector(30, (8, 8), 3)
    assert decode(uniform, 30, 3) is None and uniform.size == vector.size
    with pytest.raises(InvalidPolicyError, match="does not hold an MLP"):
        decode(vector[:-1], 30, 3)


def test_sampled_entries_agree_with_the_exact_payoffs_of_the_same_networks():
    compiled = compile_game("leduc_poker")
    vectors = [uniform_vector(30, (16,), 3)] + [_network_vector("leduc_poker", seed=s, scale=3.0) for s in range(2)]
    config = _config(game="leduc_poker", sims_per_entry=1500)
    space = SampledSpace.create(config.resolved())
    meta_game = space.new_meta_game()
    for v in vectors:
        meta_game.add(0, v)
        meta_game.add(1, v)
    tables = [np.stack([tabulate_member(v, compiled, p) for v in vectors]) for p in range(2)]
    exact = payoff_matrix(compiled, tables[0], tables[1])
    # 18 entries: each within its 99.9% interval (3.29 standard errors).
    assert np.all(np.abs(meta_game.matrix - exact) <= 3.29 * meta_game.standard_errors), (meta_game.matrix, exact)
    assert meta_game.samples.min() == 1500


# -- routing and settings -------------------------------------------------------------------

def test_games_are_routed_by_size_and_requested_evaluation():
    assert too_large_to_compile(TWO_DICE) and not too_large_to_compile("leduc_poker")
    assert game_kind(TWO_DICE) is SampledSpace
    assert game_kind("leduc_poker") is TabularSpace
    assert game_kind("leduc_poker", "sampled") is SampledSpace
    assert PSROConfig(game=TWO_DICE, oracle="dqn").resolved().evaluation == "sampled"
    with pytest.raises(ConfigError, match="accepted: auto, exact, sampled"):
        game_kind("leduc_poker", "guess")
    with pytest.raises(ConfigError, match="--evaluation sampled does not apply to 'mixture'; accepted for it: auto, exact"):
        game_kind("mixture", "sampled")


@pytest.mark.parametrize("changes, message", [
    (dict(game="kuhn_poker", evaluation="exact", sims_per_entry=10), "--sims-per-entry applies to meta-games estimated"),
    (dict(variant="dpp"), "--variant dpp does not apply to 'kuhn_poker'.*accepted: psro, psro-rn, p-psro"),
    (dict(init="nash-distill"), "init 'nash-distill' does not apply to 'kuhn_poker'.*accepted: normal"),
    (dict(oracle="exact", oracle_options={}), "the exact oracle does not apply to 'kuhn_poker'.*accepted: dqn, pg$"),
    (dict(payoff_tolerance=-1.0), "payoff_tolerance must be a positive finite number"),
    (dict(max_sims_per_entry=500), "--max-sims-per-entry caps sampling to a --payoff-tolerance"),
    (dict(eval_every=2), "--eval-every applies to --eval approx only"),
    (dict(eval="approx", oracle="exact", oracle_options={}, evaluation="exact", sims_per_entry=None),
     "--eval approx trains.*the exact oracle's are not. Accepted: dqn, pg$"),
])
def test_bad_sampled_settings_are_one_line_errors(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        _config(**changes).resolved()
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("game, message", [
    ("matrix_pd", "general-sum"),
    ("kuhn_poker(players=3)", "3 players"),
])
def test_games_that_are_not_two_player_zero_sum_are_refused(game, message):
    with pytest.raises(GameNotSupportedError, match=message):
        PSRO(_config(game=game))


# -- the sampled loop -----------------------------------------------------------------------

def test_sampled_run_reports_its_sampling_and_exact_exploitability_where_the_game_compiles():
    psro = PSRO(_config(iterations=2, sims_per_entry=50))
    records = psro.run()
    assert [r.population_sizes for r in records] == [[2, 2], [3, 3]]
    # Iteration 1 reports the initial uniform-vs-uniform entry, then 1 + 2 new ones.
    assert records[0].extra["meta_game"] == {"entries_sampled": 4, "games": 200,
                                             "max_half_width_95": pytest.approx(records[0].extra["meta_game"]
                                                                                ["max_half_width_95"]),
                                             "capped_entries": 0}
    compiled = compile_game("kuhn_poker")
    tables = [np.stack([tabulate_member(m.policy, compiled, p) for m in psro.state.populations[p]]) for p in range(2)]
    from fusion_psro.evaluation import evaluate_mixture

    exact = evaluate_mixture(compiled, tables, list(psro.state.meta_strategies)).exploitability
    assert records[-1].exploitability == pytest.approx(exact)
    large = PSRO(_config(game=TWO_DICE, iterations=1, episodes=100, sims_per_entry=20)).run()
    assert np.isnan(large[0].exploitability) and large[0].population_sizes == [2, 2]


def test_a_tolerance_that_cannot_be_met_stops_at_the_cap_with_a_warning():
    records = PSRO(_config(iterations=1, sims_per_entry=20, payoff_tolerance=1e-6, max_sims_per_entry=60)).run()
    report = records[0].extra
    # The initial entry and the three of iteration 1, each stopped at the cap.
    assert report["meta_game"]["capped_entries"] == 4 and report["meta_game"]["games"] == 4 * 60
    assert "stopped at the cap of 60 games" in report["warnings"][0]


@pytest.mark.slow
def test_fusion_and_pipeline_run_in_sampled_play():
    fused = PSRO(_config(init="fusion", iterations=3)).run()
    assert fused[-1].inits[-1] in ("fusion", "normal")
    assert any(init == "fusion" for r in fused for init in r.inits)
    pipeline = PSRO(_config(variant="p-psro", variant_options={"learners": 2, "max_iterations": 2}, iterations=2)).run()
    assert set(pipeline[-1].extra) >= {"active_learners", "frozen", "meta_game"}
    assert pipeline[-1].population_sizes[0] >= 3


@pytest.mark.slow
def test_sampled_dqn_learns_a_near_best_response():
    compiled = compile_game("kuhn_poker")
    game = load_sampled_game("kuhn_poker")
    oracle = DQNOracle(game, DQNConfig(hidden_sizes=(32,), episodes=3000, batch_size=64, min_replay_before_learning=128,
                                       num_envs=64, device="cpu"))
    opponent = _network_vector("kuhn_poker", hidden=(32,), seed=5, scale=3.0)
    result = oracle.best_response(BestResponseRequest(0, opponent[None], np.ones(1), seed=0))
    table = tabulate_member(result.policy, compiled, 0)
    opponent_table = tabulate_member(opponent, compiled, 1)
    value = expected_payoff(compiled, table, opponent_table)[0]
    assert value >= best_response(compiled, 0, opponent_table).value - 0.05


# -- approximate exploitability -------------------------------------------------------------

@pytest.mark.slow
def test_approximate_exploitability_is_a_lower_bound_within_its_interval(tmp_path):
    from fusion_psro.psro.approximate_exploitability import ApproxSettings, approximate_exploitability

    psro = PSRO(_config(iterations=2))
    psro.run()
    settings = ApproxSettings(game="kuhn_poker", br_episodes=(500, 2000), br_seeds=2, eval_games=4000, seed=1,
                              oracle_options=dict(SMALL, hidden_sizes=(32,)))
    record = approximate_exploitability(settings, psro.state.meta_game._policies, psro.state.meta_strategies,
                                        reference=psro.space.reference)
    exact = record["exact"]["exploitability"]
    assert [b["br_episodes"] for b in record["budgets"]] == [500, 2000]
    for budget, truth in zip(record["budgets"], record["exact"]["budgets"]):
        low, high = budget["ci95"]
        # The interval covers the trained responses' exact value; their value is below the best response's.
        assert low <= truth["exploitability_of_responses"] <= high
        assert truth["exploitability_of_responses"] <= exact + 1e-9
        assert high - low == pytest.approx(2 * Z95 * budget["se"])
    again = approximate_exploitability(settings, psro.state.meta_game._policies, psro.state.meta_strategies)
    assert again["budgets"][-1]["estimate"] == record["budgets"][-1]["estimate"]


@pytest.mark.slow
def test_approx_exploitability_command_and_its_refusals(tmp_path, capsys):
    from fusion_psro.cli import main

    run = tmp_path / "run"
    args = ["run", "--game", "kuhn_poker", "--oracle", "dqn", "--evaluation", "sampled", "--iterations", "2",
            "--episodes", "300", "--sims-per-entry", "100", "--out", str(run), "--quiet"]
    for key, value in SMALL.items():
        args += ["--oracle-option", f"{key}={json.dumps(value)}"]
    assert main(args) == 0
    assert main(["approx-exploitability", str(run), "--iteration", "1", "--br-episodes", "200,400", "--br-seeds", "1",
                 "--eval-games", "500"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "a lower bound of exploitability = NashConv / 2" in out and "| 400 |" in out
    # Progress: 2 training runs (one seed per player), then 4 scores (2 budgets per player).
    assert "approx-exploitability (training runs, then scores)" in captured.err and "6/6" in captured.err
    assert json.loads((run / "approx-exploitability-iteration-0001.json").read_text())["iteration"] == 1
    exact_run = tmp_path / "exact"
    assert main(["run", "--game", "kuhn_poker", "--iterations", "1", "--out", str(exact_run), "--quiet"]) == 0
    assert main(["approx-exploitability", str(exact_run), "--br-episodes", "100"]) == 2
    assert "the members of an exact-oracle run are not networks that play sampled games" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["approx-exploitability", str(run), "--br-episodes", "10,x"])
    assert exited.value.code == 2 and "expected comma-separated integers" in capsys.readouterr().err


def test_a_ray_address_that_does_not_answer_is_a_one_line_error(tmp_path, capsys):
    from fusion_psro.cli import main

    code = main(["run", "--game", "kuhn_poker", "--oracle", "dqn", "--iterations", "1", "--workers", "2",
                 "--address", "127.0.0.1:9", "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("fusion-psro: error: no Ray cluster answers at 127.0.0.1:9") and "\n" not in err
    assert not (tmp_path / "r").exists()


# -- resume ---------------------------------------------------------------------------------

def _comparable(rows):
    rows = [row.to_json() if hasattr(row, "to_json") else row for row in rows]
    return [{k: v for k, v in row.items() if not k.endswith("_s") and k not in ("oracle", "approx")} for row in rows]


@pytest.mark.slow
def test_a_killed_sampled_run_resumes_bit_identically(tmp_path):
    from fusion_psro.experiments import read_metrics, resume_psro, run_psro

    config = _config(iterations=4, init="fusion", payoff_tolerance=0.3, sims_per_entry=50, max_sims_per_entry=200)
    reference = run_psro(config, tmp_path / "reference", progress=False)
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "fusion_psro.cli", "run", "--game", "kuhn_poker", "--oracle", "dqn", "--init", "fusion",
            "--evaluation", "sampled", "--iterations", "4", "--episodes", "300", "--seed", "3", "--sims-per-entry",
            "50", "--payoff-tolerance", "0.3", "--max-sims-per-entry", "200", "--out", str(out), "--quiet"]
    for key, value in SMALL.items():
        args += ["--oracle-option", f"{key}={json.dumps(value)}"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    time.sleep(random.Random(13).uniform(0.0, 0.2))
    assert process.poll() is None, process.stderr.read().decode()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    resumed = resume_psro(out, progress=False)
    assert _comparable(resumed) == _comparable(reference)
    assert _comparable(read_metrics(out)) == _comparable(reference)


# -- parallel best responses (Ray) ----------------------------------------------------------

CRASH_ONCE = '''
import os
from pathlib import Path
import fusion_psro
from fusion_psro.oracles.dqn import DQNOracle

MARKER = Path(os.environ["FUSION_PSRO_TEST_MARKER"])


@fusion_psro.register_oracle("dqn-crash-once")
class CrashOnce(DQNOracle):
    """The DQN, whose worker process dies the first time it trains player 1's response."""

    def best_response(self, request):
        if request.player == 1 and not MARKER.exists():
            MARKER.write_text("died")
            os._exit(1)
        return super().best_response(request)
'''


@pytest.mark.slow
def test_parallel_best_responses_equal_serial_ones_and_survive_a_dying_worker(tmp_path, monkeypatch):
    from fusion_psro.experiments import run_psro

    plugin = tmp_path / "crash_once.py"
    plugin.write_text(CRASH_ONCE)
    monkeypatch.setenv("FUSION_PSRO_TEST_MARKER", str(tmp_path / "marker"))
    from fusion_psro.registry import load_plugin

    load_plugin(str(plugin))
    serial = run_psro(_config(oracle="dqn", iterations=2), tmp_path / "serial", progress=False)
    parallel = run_psro(_config(oracle="dqn-crash-once", iterations=2), tmp_path / "parallel", progress=False,
                        workers=2)
    assert (tmp_path / "marker").read_text() == "died"  # a worker died, and its task was run again
    assert _comparable(parallel) == _comparable(serial)


def test_exact_and_sampled_play_of_the_same_seed_agree_within_the_sampled_intervals():
    """Leduc: a run in exact mode, and its members evaluated in sampled play: every sampled entry
    lies within 3.29 standard errors (99.9%) of the exact one, and the sampled-play run of the
    same seed reports the exact exploitability of its own mixture."""
    from fusion_psro.experiments.approximate import member_vectors

    exact_config = _config(game="leduc_poker", evaluation="exact", sims_per_entry=None, iterations=2)
    exact = PSRO(exact_config)
    exact.run()
    vectors = member_vectors(exact.config, exact.state.populations)
    sampled_space = SampledSpace.create(_config(game="leduc_poker", sims_per_entry=1500).resolved())
    meta_game = sampled_space.new_meta_game()
    for player in range(2):
        for vector in vectors[player]:
            meta_game.add(player, vector)
    difference = np.abs(meta_game.matrix - exact.state.meta_game.matrix)
    assert np.all(difference <= 3.29 * meta_game.standard_errors), (meta_game.matrix, exact.state.meta_game.matrix)
    sampled = PSRO(_config(game="leduc_poker", iterations=2))
    record = sampled.run()[-1]
    assert 0 < record.exploitability == pytest.approx(sampled.space.evaluate(sampled.state.meta_game,
                                                                             sampled.state.meta_strategies).exploitability)


def test_the_parallel_pipeline_plans_every_learner_in_one_round():
    from fusion_psro.psro.executors import SerialExecutor

    class Recording(SerialExecutor):
        rounds: list[int] = []

        def respond(self, run, plans):
            self.rounds.append(len(plans))
            return super().respond(run, plans)

    settings = dict(variant="p-psro", iterations=1)
    PSRO(_config(**settings, variant_options={"learners": 2}), executor=Recording()).run()
    assert Recording.rounds == [1, 1, 1, 1]  # the default: one learner a round
    Recording.rounds = []
    PSRO(_config(**settings, variant_options={"learners": 2, "parallel": True}), executor=Recording()).run()
    assert Recording.rounds == [4]
    with pytest.raises(ConfigError, match=re.escape("the psro variant has no settings; got ['parallel']")):
        _config(variant_options={"parallel": True}).resolved()
    with pytest.raises(ConfigError, match=re.escape("pipeline_parallel does not apply to the psro variant; variants "
                                                    "that have it: p-psro, p-dpp, p-bdrd, p-psd")):
        _config(pipeline_parallel=True)


def test_a_seat_never_takes_another_tables_cached_actions():
    """A seat reused across games (the row member of a meta-game row) must not look up the
    actions it cached for a freed table, even when a new table takes its address (CPython
    reuses freed memory, so ``id`` repeats)."""
    game = load_sampled_game("leduc_poker")
    states = []
    for cards in [(0, 1), (5, 1)]:
        state = game.new_initial_state()
        for card in cards:
            state.apply_action(card)
        states.append(state)
    zero, draws = np.zeros(1, dtype=np.int64), np.zeros(1)

    def greedy(seat, state):
        table = ObservationTable(30, 3)
        return seat.act(zero, np.array([table.intern(state, 0)]), table, draws)[0]

    # A network whose greedy actions differ at the two states (else the check could not fail).
    seed = next(s for s in range(50) if len({greedy(NetworkSeat([_network_vector("leduc_poker", seed=s, scale=3.0)],
                                                                np.ones(1), 30, 3), st) for st in states}) == 2)
    vector = _network_vector("leduc_poker", seed=seed, scale=3.0)
    seat = NetworkSeat([vector], np.ones(1), 30, 3)
    first = ObservationTable(30, 3)
    seat.act(zero, np.array([first.intern(states[0], 0)]), first, draws)
    address, held = id(first), []
    del first
    second = ObservationTable(30, 3)
    while id(second) != address and len(held) < 1000:  # until a table lands where the freed one was
        held.append(second)
        second = ObservationTable(30, 3)
    assert second.intern(states[1], 0) == 0  # the id the first table gave states[0]
    assert seat.act(zero, np.array([0]), second, draws)[0] == greedy(NetworkSeat([vector], np.ones(1), 30, 3),
                                                                     states[1])


def test_a_target_exploitability_is_refused_where_there_is_no_exact_exploitability():
    with pytest.raises(ConfigError, match="--target-exploitability needs the exact exploitability"):
        PSROConfig(game=TWO_DICE, oracle="dqn", target_exploitability=0.5).resolved()
    # a game that compiles keeps its exact exploitability in sampled play, so a target applies
    PSROConfig(game="kuhn_poker", oracle="dqn", evaluation="sampled", target_exploitability=0.5).resolved()


def test_executor_reports_each_task_as_it_ends():
    from fusion_psro.psro.executors import SerialExecutor

    ended = []
    assert SerialExecutor().map(pow, [(2, 3), (3, 2)], on_done=lambda: ended.append(len(ended))) == [8, 9]
    assert ended == [0, 1]


def test_the_approximate_exploitability_oracle_is_chosen_by_registry_name():
    from fusion_psro.oracles.dqn import DQNOracle
    from fusion_psro.psro.approximate_exploitability import ApproxSettings, best_response_oracle
    from fusion_psro.registry import ORACLES

    class TwinDQN(DQNOracle):
        """A registered DQN under another name, as a plug-in would add one."""

    ORACLES.register("dqn-twin", TwinDQN)
    try:
        settings = ApproxSettings(game="kuhn_poker", br_episodes=(300, 100), oracle="dqn-twin",
                                  oracle_options={"hidden_sizes": [8], "batch_size": 16})
        oracle = best_response_oracle(settings)
        assert type(oracle) is TwinDQN and oracle.config.episodes == 300 and oracle.config.hidden_sizes == (8,)
        assert oracle.compiled is None  # it plays the game by sampling
    finally:
        ORACLES.unregister("dqn-twin")
    with pytest.raises(ConfigError, match="the pg oracle is not one. Accepted: dqn"):
        ApproxSettings(game="kuhn_poker", br_episodes=(100,), oracle="pg")


def test_the_pg_oracle_writes_its_own_members_and_softmax_members_play_their_softmax():
    """A stochastic pg member's vector is its softmax policy: its table is the oracle's, and the
    mean of sampled games against the uniform policy matches the engine's exact value."""
    from fusion_psro.oracles.network_policy import GREEDY_Q, SOFTMAX
    from fusion_psro.oracles.pg import PGConfig, PolicyGradientOracle

    kuhn = compile_game("kuhn_poker")
    stochastic = PGConfig(hidden_sizes=(8,), population_policy="stochastic", device="cpu")
    oracle = PolicyGradientOracle(kuhn, stochastic)
    parameters = oracle.scratch_parameters(0, "normal", seed=5)
    vector = PolicyGradientOracle.member_vector(stochastic, parameters)
    assert vector[0] == SOFTMAX and PolicyGradientOracle.member_vector(None, parameters)[0] == GREEDY_Q
    # Parameters read back from a file come sorted by name; the vector is the same.
    np.testing.assert_array_equal(PolicyGradientOracle.member_vector(stochastic, dict(sorted(parameters.items()))),
                                  vector)
    table = tabulate_member(vector, kuhn, 0)
    np.testing.assert_allclose(table, oracle.tabular_policy(0, parameters, "stochastic"), atol=1e-6)
    assert 0.02 < table[kuhn.players[0].legal_mask].min() and table.max() < 0.98  # really stochastic
    exact = expected_payoff(kuhn, table, uniform_policy(kuhn, 1))[0]
    size, actions = tensor_size(load_sampled_game("kuhn_poker")), kuhn.num_actions
    seats = (NetworkSeat([vector], np.ones(1), size, actions), UniformSeat())
    returns = play_games(load_sampled_game("kuhn_poker"), seats, 40_000, seed=3)
    assert abs(returns.mean() - exact) < 4 * returns.std() / np.sqrt(returns.size)


def test_a_pg_run_is_measured_by_approximate_exploitability(tmp_path):
    """Its members are written by the pg oracle and played by sampling; DQN best responses are trained against them."""
    from fusion_psro.cli import main
    from fusion_psro.experiments.approximate import approx_for_run

    out = tmp_path / "pg"
    assert main(["run", "--game", "kuhn_poker", "--oracle", "pg", "--steps", "2", "--oracle-option",
                 "hidden_sizes=[4]", "--oracle-option", "population_policy=stochastic", "--iterations", "1",
                 "--out", str(out), "--quiet"]) == 0
    record, _ = approx_for_run(out, br_episodes=(40,), br_seeds=1, eval_games=200)
    # The members' vectors, tabulated back, are the run's stochastic policies: the same exact exploitability.
    recorded = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["exploitability"]
    assert record["exact"]["exploitability"] == pytest.approx(recorded, abs=1e-6)
    assert record["br_episodes"] == [40] and np.isfinite(record["approx_exploitability"])
