"""Compiled games: structure checked against OpenSpiel, disk cache, and refused games."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import subprocess
import sys

import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as openspiel_policy

import fusion_psro
from fusion_psro.errors import ConfigError, GameNotSupportedError, GameTooLargeError
from fusion_psro.games import (
    CHANCE,
    DEFAULT_MAX_HISTORIES,
    TERMINAL,
    cache_path,
    compile_game,
    estimate_tree_size,
    load_openspiel_game,
)
from fusion_psro.games import compiled as compiled_module

GOOFSPIEL_4 = "goofspiel(num_cards=4,imp_info=True,points_order=descending)"
GOOFSPIEL_5 = "goofspiel(num_cards=5,imp_info=True,points_order=descending)"

# Counted independently by walking the OpenSpiel tree (see test_sizes_match_an_openspiel_walk
# for the small games); histories, terminal, decision, information states of both players.
EXPECTED_SIZES = {
    "kuhn_poker": (58, 30, 24, 12),
    "leduc_poker": (9457, 5520, 3780, 936),
    GOOFSPIEL_5: (26931, 14400, 12531, 2124),
    "liars_dice": (294883, 147420, 147456, 24576),
}


def _walk(game: pyspiel.Game):
    """Count histories and collect per-player information states with a plain OpenSpiel walk."""
    counts = {"histories": 0, "terminal": 0, "decision": 0}
    keys = [set(), set()]
    stack = [game.new_initial_state()]
    while stack:
        state = stack.pop()
        counts["histories"] += 1
        if state.is_terminal():
            counts["terminal"] += 1
        elif state.is_chance_node():
            stack.extend(state.child(a) for a, _ in state.chance_outcomes())
        else:
            counts["decision"] += 1
            keys[state.current_player()].add(state.information_state_string())
            stack.extend(state.child(a) for a in state.legal_actions())
    return counts, keys


@pytest.mark.parametrize("game_string", list(EXPECTED_SIZES))
def test_sizes(game_string):
    compiled = compile_game(game_string)
    histories, terminal, decision, infostates = EXPECTED_SIZES[game_string]
    assert compiled.num_histories == histories
    assert int(np.sum(compiled.node_player == TERMINAL)) == terminal
    assert int(np.sum(compiled.node_player >= 0)) == decision
    assert sum(p.num_infostates for p in compiled.players) == infostates


@pytest.mark.parametrize("game_string", ["kuhn_poker", "leduc_poker", GOOFSPIEL_4])
def test_structure_matches_openspiel(game_string):
    compiled = compile_game(game_string)
    game = pyspiel.load_game_as_turn_based(game_string)
    counts, keys = _walk(game)
    assert compiled.num_histories == counts["histories"]
    for p, info in enumerate(compiled.players):
        assert info.keys.tolist() == sorted(keys[p])  # rows ordered by information-state string
        states = compiled.representative_states(p)
        for row, state in enumerate(states):
            assert state.information_state_string(p) == info.keys[row]
            assert np.flatnonzero(info.legal_mask[row]).tolist() == state.legal_actions()
            np.testing.assert_allclose(info.tensors[row], state.information_state_tensor(p))
        # The keys are exactly OpenSpiel's TabularPolicy keys for that player.
        tabular = openspiel_policy.TabularPolicy(game, players=[p])
        assert set(tabular.state_lookup) == set(info.keys.tolist())


@pytest.mark.parametrize("game_string", ["kuhn_poker", "leduc_poker", GOOFSPIEL_4])
def test_history_arrays_replay_to_openspiel_states(game_string):
    compiled = compile_game(game_string)
    rng = np.random.default_rng(0)
    children = compiled.children
    non_root = np.arange(1, compiled.num_histories)
    assert np.array_equal(children[compiled.parent[non_root], compiled.parent_action[non_root]], non_root)
    for h in rng.choice(compiled.num_histories, size=min(300, compiled.num_histories), replace=False):
        state = compiled.openspiel_state(int(h))
        kind = compiled.node_player[h]
        if state.is_terminal():
            assert kind == TERMINAL
            np.testing.assert_allclose(compiled.returns[h], state.returns())
        elif state.is_chance_node():
            assert kind == CHANCE
            outcomes = dict(state.chance_outcomes())
            for action, child in enumerate(children[h]):
                if child >= 0:
                    assert compiled.edge_chance_prob[child] == pytest.approx(outcomes[action])
                    assert compiled.chance_reach[child] == pytest.approx(compiled.chance_reach[h] * outcomes[action])
        else:
            player = state.current_player()
            assert kind == player
            info = compiled.players[player]
            assert info.keys[compiled.node_infostate[h]] == state.information_state_string(player)
            assert np.flatnonzero(children[h] >= 0).tolist() == state.legal_actions()


def test_parent_sequences_follow_own_actions():
    compiled = compile_game("leduc_poker")
    for p, info in enumerate(compiled.players):
        decision = np.flatnonzero(compiled.node_player == p)
        # Every history of an information state carries the same own sequence (perfect recall).
        assert np.array_equal(compiled.sequences[decision, p], info.parent_sequence[compiled.node_infostate[decision]])
        parents = info.parent_sequence[info.level > 0] // info.num_actions
        assert np.array_equal(info.level[parents] + 1, info.level[info.level > 0])


def test_simultaneous_game_is_converted_to_turn_based():
    compiled = compile_game("matrix_rps")
    assert compiled.game_string.startswith("turn_based_simultaneous_game")
    uniform = [np.full((1, 3), 1 / 3), np.full((1, 3), 1 / 3)]
    assert fusion_psro.evaluation.exploitability(compiled, uniform) == pytest.approx(0.0, abs=1e-12)


def test_accepts_pyspiel_game_and_compiled_game():
    compiled = compile_game("kuhn_poker")
    assert compile_game(pyspiel.load_game("kuhn_poker")) is compiled  # same canonical string, memory cache
    assert compile_game(compiled) is compiled


def test_derived_data_is_kept_in_declared_fields():
    """Modules that derive data from a compiled game keep it in ``compiled.derived``, not in ``__dict__``."""
    compiled_module._MEMORY_CACHE.clear()
    compiled = compile_game("kuhn_poker", cache=False)
    policy = openspiel_policy.TabularPolicy(compiled.openspiel_game)
    fusion_psro.exploitability(compiled, policy)  # sequence form, uniform plans, table rows
    fusion_psro.exploitability(compiled, openspiel_policy.UniformRandomPolicy(compiled.openspiel_game))
    declared = {field.name for field in dataclasses.fields(compiled)}
    cached_properties = {name for name, value in vars(type(compiled)).items() if isinstance(value, functools.cached_property)}
    assert set(vars(compiled)) <= declared | cached_properties
    derived = compiled.derived
    assert derived.openspiel_game is compiled.openspiel_game
    assert derived.sequence_form is not None and set(derived.uniform_plans) == {0, 1}
    assert set(derived.representative_states) == {0, 1}
    assert set(derived.tabular_rows_reference) == {0, 1} and policy in derived.tabular_rows_by_policy[0]


def test_disk_cache_round_trip(tmp_path):
    compiled_module._MEMORY_CACHE.clear()
    fresh = compile_game("leduc_poker", cache_dir=tmp_path)
    path = cache_path(fresh.game_string, tmp_path)
    assert path.exists()
    compiled_module._MEMORY_CACHE.clear()
    loaded = compile_game("leduc_poker", cache_dir=tmp_path)
    assert loaded is not fresh
    for name in ("parent", "parent_action", "node_player", "node_infostate", "chance_reach", "sequences", "returns"):
        assert np.array_equal(getattr(loaded, name), getattr(fresh, name))
    for a, b in zip(loaded.players, fresh.players):
        assert np.array_equal(a.keys, b.keys)
        assert np.array_equal(a.legal_mask, b.legal_mask)
        assert np.array_equal(a.tensors, b.tensors)
        assert np.array_equal(a.parent_sequence, b.parent_sequence)


def test_cache_key_includes_openspiel_version(tmp_path, monkeypatch):
    before = cache_path("leduc_poker()", tmp_path)
    monkeypatch.setattr(compiled_module, "openspiel_version", lambda: "0.0.0-other")
    assert cache_path("leduc_poker()", tmp_path) != before


def test_corrupted_cache_is_recompiled(tmp_path, caplog):
    compiled_module._MEMORY_CACHE.clear()
    compiled = compile_game("kuhn_poker", cache_dir=tmp_path)
    path = cache_path(compiled.game_string, tmp_path)
    path.write_bytes(b"not an npz file")
    compiled_module._MEMORY_CACHE.clear()
    with caplog.at_level(logging.WARNING):
        again = compile_game("kuhn_poker", cache_dir=tmp_path)
    assert "unreadable compiled-game cache" in caplog.text
    assert again.num_histories == 58
    compiled_module._MEMORY_CACHE.clear()
    assert compile_game("kuhn_poker", cache_dir=tmp_path).num_histories == 58  # rewritten, readable


@pytest.mark.parametrize(
    ("game", "message"),
    [
        ("kuhn_poker(players=3)", "3 players"),
        ("matrix_pd", r"matrix_pd\(\) is general-sum; fusion-psro accepts two-player zero-sum or constant-sum games"),
        ("tiny_hanabi", r"is general-sum \(identical interests.*accepts two-player zero-sum or constant-sum"),
        ("leducc_poker", r"Did you mean 'leduc_poker'\?"),
        ("leduc", r"Did you mean 'leduc_poker', 'repeated_leduc_poker'\?"),
        ("kuhn", r"Did you mean 'kuhn_poker'"),
        ("liar_dice", r"Did you mean 'liars_dice', 'liars_dice_ir'\?"),
        ("Tic-Tac-Toe", r"Did you mean 'tic_tac_toe'\?"),
        ("kuhn_game", r"Did you mean 'kuhn_poker'"),
        ("leduc_poker(no_such_parameter=1)", "could not load"),
        ("", "empty game string"),
        (42, "expected an OpenSpiel game string"),
    ],
)
def test_refused_games(game, message):
    with pytest.raises(GameNotSupportedError, match=message):
        compile_game(game)


def test_imperfect_recall_is_refused():
    # Without imp_info, Goofspiel's information state forgets which card the player bid.
    with pytest.raises(GameNotSupportedError, match="perfect recall"):
        compile_game("goofspiel(num_cards=4,points_order=descending)")


def test_huge_game_is_refused_quickly():
    with pytest.raises(GameTooLargeError, match="far too large"):
        compile_game("chess")


OSHI_ZUMO = "oshi_zumo(coins=4,size=1)"  # bids of zero prolong the game: 2,000 moves deep

_REFUSAL_SCRIPT = """
import resource, sys, time
from fusion_psro.errors import GameTooLargeError
from fusion_psro.games import compiled
if sys.argv[2] == "enumerate":
    compiled.estimate_tree_size = lambda *args, **kwargs: 0.0
started = time.perf_counter()
try:
    compiled.compile_game(sys.argv[1], cache=False)
    print("compiled")
except GameTooLargeError as exc:
    print(type(exc).__name__, exc)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _refusal(game: str, how: str) -> tuple[str, float, float]:
    """Compile ``game`` in a fresh process: its message, seconds and peak resident memory in bytes."""
    try:
        done = subprocess.run([sys.executable, "-c", _REFUSAL_SCRIPT, game, how], capture_output=True,
                              text=True, timeout=120, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"compiling {game} ({how}) ran for more than 120 s")
    message, numbers = done.stdout.strip().rsplit("\n", 1)
    seconds, peak = (float(x) for x in numbers.split())
    return message, seconds, peak


def test_a_game_whose_histories_are_mostly_deep_is_refused_at_once():
    message, seconds, peak = _refusal(OSHI_ZUMO, "estimate")
    assert message.startswith("GameTooLargeError") and "far too large" in message
    assert seconds < 20 and peak < 1e9


def test_enumeration_is_refused_in_seconds_and_bounded_memory_without_the_estimate():
    message, seconds, peak = _refusal(OSHI_ZUMO, "enumerate")
    assert message.startswith("GameTooLargeError") and "information-state strings too long" in message
    assert seconds < 20 and peak < 1e9


def test_tree_size_estimate_sees_deep_histories():
    for seed in range(5):
        assert estimate_tree_size(load_openspiel_game(OSHI_ZUMO), seed=seed, cap=1e9) > 100 * DEFAULT_MAX_HISTORIES


@pytest.mark.parametrize("game_string", list(EXPECTED_SIZES))
def test_tree_size_estimate_would_not_refuse_a_game_at_the_limit(game_string):
    histories = EXPECTED_SIZES[game_string][0]
    for seed in range(5):
        assert histories / 10 < estimate_tree_size(load_openspiel_game(game_string), seed=seed) < 10 * histories


def test_enumeration_stops_at_the_limit():
    compiled_module._MEMORY_CACHE.clear()
    with pytest.raises(GameTooLargeError, match="more than 5,000 histories"):
        compile_game("leduc_poker", max_histories=5000, cache=False)


def test_tree_size_estimate_is_close_for_leduc():
    estimate = estimate_tree_size(pyspiel.load_game("leduc_poker"), probes=2000)
    assert 0.7 * 9457 < estimate < 1.3 * 9457


def test_no_suggestion_from_a_generic_word_or_few_letters():
    importlib.import_module("open_spiel.python.games")  # registers chat_game and the python_* games
    for name in ("card_game", "mixture", "xyz"):
        with pytest.raises(GameNotSupportedError) as info:
            compile_game(name)
        assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize("value", [0, -5, 2.5, True, "1000"])
def test_bad_max_histories(value):
    with pytest.raises(ConfigError, match=f"max_histories must be a positive integer, got {value!r}"):
        compile_game("kuhn_poker", max_histories=value)


def test_compile_command_refuses_a_bad_limit_in_one_line(capsys):
    from fusion_psro.cli import main

    assert main(["compile", "kuhn_poker", "--max-histories", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "fusion-psro: error: max_histories must be a positive integer, got 0\n"
