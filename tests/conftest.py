"""Shared fixtures and helpers for the OpenSpiel-reference tests.

Helpers are plain functions (import them with ``from conftest import ...``); the
compiled-game cache is redirected to a session temporary directory so the tests never
read or write ``~/.cache``.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as openspiel_policy

KUHN = "kuhn_poker"
LEDUC = "leduc_poker"
LIARS_DICE = "liars_dice"
GOOFSPIEL_4 = "goofspiel(num_cards=4,imp_info=True,points_order=descending)"
GOOFSPIEL_5 = "goofspiel(num_cards=5,imp_info=True,points_order=descending)"

#: Every game the reference tests run on.
GAMES = [KUHN, LEDUC, LIARS_DICE, GOOFSPIEL_4, GOOFSPIEL_5]
#: Games small enough for OpenSpiel's Python tree walks in the default run.
SMALL_GAMES = [KUHN, LEDUC, GOOFSPIEL_4, GOOFSPIEL_5]


@pytest.fixture(scope="module")
def kuhn():
    """Compiled Kuhn poker, once per test module."""
    from fusion_psro.games import compile_game

    return compile_game(KUHN)


@pytest.fixture(scope="module")
def leduc():
    """Compiled Leduc poker, once per test module."""
    from fusion_psro.games import compile_game

    return compile_game(LEDUC)

TOL = 1e-9


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache_dir(tmp_path_factory):
    """Point the compiled-game disk cache at a fresh session directory."""
    previous = os.environ.get("FUSION_PSRO_CACHE_DIR")
    os.environ["FUSION_PSRO_CACHE_DIR"] = str(tmp_path_factory.mktemp("fusion_psro_cache"))
    yield
    if previous is None:
        os.environ.pop("FUSION_PSRO_CACHE_DIR", None)
    else:
        os.environ["FUSION_PSRO_CACHE_DIR"] = previous


@functools.lru_cache(maxsize=None)
def load_reference_game(game_string: str) -> pyspiel.Game:
    """The OpenSpiel game policies are built on (turn-based for simultaneous-move games)."""
    game = pyspiel.load_game(game_string)
    if game.get_type().dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS:
        game = pyspiel.load_game_as_turn_based(game_string)
    return game


_TEMPLATES: dict[str, openspiel_policy.TabularPolicy] = {}


def _template(game: pyspiel.Game) -> openspiel_policy.TabularPolicy:
    # TabularPolicy(game) walks the whole game (3 s on Liar's Dice); build it once per game
    # and hand out copies, which share the state lookup and own their probability table.
    key = str(game)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = openspiel_policy.TabularPolicy(game)
    return _TEMPLATES[key]


def uniform_tabular_policy(game: pyspiel.Game, *, fresh: bool = False) -> openspiel_policy.TabularPolicy:
    """OpenSpiel's uniform TabularPolicy (``fresh`` builds a new one instead of a copy)."""
    if fresh:
        return openspiel_policy.TabularPolicy(game)
    return _template(game).__copy__()


def random_tabular_policy(game: pyspiel.Game, rng: np.random.Generator, *, concentration: float = 1.0,
                          fresh: bool = False) -> openspiel_policy.TabularPolicy:
    """A TabularPolicy whose rows are Dirichlet draws over the legal actions."""
    policy = uniform_tabular_policy(game, fresh=fresh)
    mask = policy.legal_actions_mask.astype(bool)
    weights = rng.gamma(concentration, size=mask.shape) * mask
    totals = weights.sum(axis=1, keepdims=True)
    weights = np.where(totals > 0, weights, mask)
    policy.action_probability_array = weights / weights.sum(axis=1, keepdims=True)
    return policy


def deterministic_tabular_policy(game: pyspiel.Game, rng: np.random.Generator, *,
                                 fresh: bool = False) -> openspiel_policy.TabularPolicy:
    """A TabularPolicy playing one uniformly chosen legal action in every information state."""
    policy = uniform_tabular_policy(game, fresh=fresh)
    mask = policy.legal_actions_mask.astype(bool)
    scores = np.where(mask, rng.random(mask.shape), -1.0)
    table = np.zeros(mask.shape)
    table[np.arange(mask.shape[0]), scores.argmax(axis=1)] = 1.0
    policy.action_probability_array = table
    return policy


def tabular_from_arrays(game: pyspiel.Game, compiled, profile) -> openspiel_policy.TabularPolicy:
    """Independent array -> TabularPolicy conversion (by information-state key)."""
    policy = uniform_tabular_policy(game)
    for player in range(2):
        for row, key in enumerate(compiled.players[player].keys.tolist()):
            policy.action_probability_array[policy.state_lookup[key]] = profile[player][row]
    return policy


def pyspiel_policy(policy: openspiel_policy.TabularPolicy) -> pyspiel.TabularPolicy:
    """The C++ copy of a Python TabularPolicy, for pyspiel's C++ reference algorithms."""
    return openspiel_policy.python_policy_to_pyspiel_policy(policy)


def aggregate_by_realization(game: pyspiel.Game, populations, weights) -> openspiel_policy.TabularPolicy:
    """The behaviour policy equivalent to the meta-strategy mixtures, built without our engine.

    At each information state ``I`` of player ``p`` the aggregate is
    ``sum_k w_k r_k(I) pi_k(I) / sum_k w_k r_k(I)``, with ``r_k(I)`` the product of member
    ``k``'s probabilities of ``p``'s own earlier actions, found by replaying the OpenSpiel
    history of a state in ``I`` (the same construction as OpenSpiel's PolicyAggregator, but
    one replay per information state instead of a full tree walk per player). Where no
    weighted member reaches ``I`` the row stays uniform.
    """
    aggregate = uniform_tabular_policy(game)
    lookup = aggregate.state_lookup
    for player in range(2):
        members = populations[player]
        for member in members:
            if member.state_lookup is not lookup and member.state_lookup != lookup:
                raise ValueError("population members must be TabularPolicy objects of the same game")
        tables = np.stack([np.asarray(member.action_probability_array) for member in members])  # [K, rows, A]
        w = np.asarray(weights[player], dtype=np.float64)
        for key in aggregate.states_per_player[player]:
            row = lookup[key]
            state = aggregate.states[row]  # a state in this information state (rows follow `states`)
            reach = w.copy()
            replay = game.new_initial_state()
            for action in state.history():
                if replay.current_player() == player:
                    reach = reach * tables[:, lookup[replay.information_state_string(player)], action]
                replay.apply_action(action)
            mass = reach @ tables[:, row, :]
            if mass.sum() > 0:
                aggregate.action_probability_array[row] = mass / mass.sum()
    return aggregate


def aggregator_to_tabular(game: pyspiel.Game, aggregated) -> openspiel_policy.TabularPolicy:
    """Copy the tables of a PolicyAggregator result into a TabularPolicy (rows it lacks stay uniform)."""
    tabular = uniform_tabular_policy(game)
    for player in range(2):
        for key, probabilities in aggregated.policy[player].items():
            row = tabular.state_lookup[key]
            tabular.action_probability_array[row] = 0.0
            for action, probability in probabilities.items():
                tabular.action_probability_array[row, action] = probability
    return tabular


def run_killed(config, out, *, before: str, at: int = 0):
    """Run ``config`` into ``out`` and kill it (KeyboardInterrupt) just before the ``at``-th call of
    ``before``: "population" (after the last checkpoint, its row and manifest), "manifest" (a row
    written, not yet vouched for) or "row" (the row cut short after 40 characters)."""
    import json  # noqa: PLC0415

    from fusion_psro.experiments import runner  # noqa: PLC0415

    calls = []
    with pytest.MonkeyPatch.context() as patch:
        if before == "population":
            patch.setattr(runner, "save_population", lambda *a: _interrupt())
        elif before == "manifest":
            commit = runner.ManifestWriter.commit

            def failing_commit(self, *args, **kwargs):
                calls.append(1)
                if len(calls) == at + 1:  # the first commit vouches for the new run's config
                    _interrupt()
                return commit(self, *args, **kwargs)

            patch.setattr(runner.ManifestWriter, "commit", failing_commit)
        else:
            append = runner.MetricsLog.append

            def torn_append(self, row):
                calls.append(1)
                if len(calls) == at:
                    with open(self.path, "a") as handle:
                        handle.write(json.dumps(row, sort_keys=True)[:40])
                    _interrupt()
                return append(self, row)

            patch.setattr(runner.MetricsLog, "append", torn_append)
        with pytest.raises(KeyboardInterrupt):
            runner.run_psro(config, out, progress=False)


def _interrupt():
    raise KeyboardInterrupt


def as_if_written_before_manifests(out) -> None:
    """Make the run directory ``out`` look as a run written before run directories kept a manifest."""
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    config = Path(out) / "config.json"
    record = json.loads(config.read_text())
    record.pop("integrity", None)
    config.write_text(json.dumps(record))
    (Path(out) / "manifest.json").unlink()


def record_batched_calls(monkeypatch, oracle_class) -> list[int]:
    """Wrap ``oracle_class.best_responses`` so that each batched call that returns appends its
    number of requests to the list returned (a call that raised, whose runs fell back to single
    responses, is not counted)."""
    calls: list[int] = []
    batched_call = oracle_class.best_responses

    def recorded(self, requests, **kwargs):
        answers = batched_call(self, requests, **kwargs)
        calls.append(len(requests))
        return answers

    monkeypatch.setattr(oracle_class, "best_responses", recorded)
    return calls

