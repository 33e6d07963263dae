"""A two-player zero-sum OpenSpiel game enumerated once into flat arrays.

Every exact computation in fusion-psro (payoffs, best responses, exploitability) and
every batched simulation runs on a :class:`CompiledGame` instead of walking OpenSpiel
states in Python. The game tree is enumerated once (depth first, with a size limit),
checked for perfect recall, and cached on disk keyed by game string, OpenSpiel version
and format version, so later loads take milliseconds.

Conventions
-----------
* Histories are numbered in depth-first pre-order; history 0 is the root.
* ``node_player[h]`` is 0 or 1 at decision nodes, :data:`CHANCE` (-1) at chance nodes and
  :data:`TERMINAL` (-4) at terminal histories (OpenSpiel's ``PlayerId`` values).
* Each player's information states are numbered in the sorted order of their OpenSpiel
  information-state strings.
* A *sequence* of player ``p`` is an (information state, action) pair, flattened to
  ``infostate * num_actions + action``, or the empty sequence, numbered
  ``num_infostates * num_actions`` (see :class:`PlayerInfostates`). Sequences of illegal
  actions exist in that numbering but are never used.
"""

from __future__ import annotations

import array
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyspiel

from fusion_psro.errors import ConfigError, GameNotSupportedError, GameTooLargeError
from fusion_psro.files import atomic_path
from fusion_psro.games.loading import load_openspiel_game, openspiel_version

if TYPE_CHECKING:
    from fusion_psro.evaluation.sequence_form import SequenceFormPayoffs

log = logging.getLogger(__name__)

CHANCE = int(pyspiel.PlayerId.CHANCE)
TERMINAL = int(pyspiel.PlayerId.TERMINAL)

#: Largest number of histories enumerated by default. Liar's Dice (1 die, 6 sides) has
#: 294,883 and tic-tac-toe 549,946; two-dice Liar's Dice or chess are refused.
DEFAULT_MAX_HISTORIES = 2_000_000

#: Bumped whenever the arrays stored in the cache change meaning.
CACHE_FORMAT_VERSION = 1


@dataclasses.dataclass(eq=False)
class PlayerInfostates:
    """One player's information states and sequences.

    Attributes
    ----------
    keys:
        OpenSpiel information-state strings, sorted; row ``i`` of every per-infostate
        array belongs to ``keys[i]``.
    legal_mask:
        ``bool[num_infostates, num_actions]``, True where the action is legal.
    tensors:
        ``float32[num_infostates, tensor_size]`` OpenSpiel information-state tensors,
        or None if the game does not provide them.
    parent_sequence:
        For each information state, the player's own sequence that leads to it (the last
        own (infostate, action) pair on the path, or the empty sequence). Well defined
        because the game has perfect recall.
    level:
        Number of own actions taken before reaching the information state.
    representative_history:
        One history (index into the game's history arrays) in each information state.
    """

    num_actions: int
    keys: np.ndarray
    legal_mask: np.ndarray
    tensors: np.ndarray | None
    parent_sequence: np.ndarray
    level: np.ndarray
    representative_history: np.ndarray

    @property
    def num_infostates(self) -> int:
        return int(self.keys.shape[0])

    @property
    def num_sequences(self) -> int:
        """Size of the flat sequence numbering, empty sequence included."""
        return self.num_infostates * self.num_actions + 1

    @property
    def empty_sequence(self) -> int:
        return self.num_infostates * self.num_actions

    @functools.cached_property
    def infostates_by_level(self) -> list[np.ndarray]:
        """Information-state indices grouped by :attr:`level`, shallowest first."""
        order = np.argsort(self.level, kind="stable")
        boundaries = np.flatnonzero(np.diff(self.level[order])) + 1
        return [group for group in np.split(order, boundaries) if group.size]

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Map from information-state string to row index."""
        return {key: i for i, key in enumerate(self.keys.tolist())}


@dataclasses.dataclass(eq=False)
class DerivedData:
    """What is computed from a compiled game on first use and kept with it (never on disk).

    Attributes
    ----------
    openspiel_game:
        The (turn-based) OpenSpiel game, see :attr:`CompiledGame.openspiel_game`.
    representative_states:
        Per player, :meth:`CompiledGame.representative_states`.
    sequence_form:
        The sparse payoff matrices (:func:`fusion_psro.evaluation.sequence_form.sequence_form`).
    uniform_plans:
        Per player, the realization plan of the uniform policy (ties of best responses).
    tabular_rows_by_policy:
        Per player, OpenSpiel ``TabularPolicy`` object -> ``(its state_lookup, the table rows
        of the player's information states)``, held weakly (see :mod:`fusion_psro.interop`).
    tabular_rows_reference:
        Per player, the first such ``(state_lookup, rows)`` pair seen, against which
        later tables are compared by value.
    """

    openspiel_game: pyspiel.Game | None = None
    representative_states: dict[int, list[pyspiel.State]] = dataclasses.field(default_factory=dict)
    sequence_form: SequenceFormPayoffs | None = None
    uniform_plans: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    tabular_rows_by_policy: dict[int, weakref.WeakKeyDictionary] = dataclasses.field(default_factory=dict)
    tabular_rows_reference: dict[int, tuple[dict[str, int], np.ndarray]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(eq=False)
class CompiledGame:
    """A two-player zero-sum (or constant-sum) game as arrays; see the module docstring.

    Per-history arrays (length ``num_histories``):

    ``parent`` (-1 at the root), ``parent_action`` (-1 at the root), ``depth``,
    ``node_player``, ``node_infostate`` (row of the acting player's information state,
    -1 at chance and terminal histories), ``edge_chance_prob`` (probability of the chance
    outcome leading to the history, 1 after a player move), ``chance_reach`` (product of
    chance probabilities from the root), ``sequences`` (``int64[H, 2]``: each player's own
    sequence leading to the history), ``returns`` (``float64[H, 2]``, nonzero only at
    terminals).

    ``children`` is ``int32[H, max(num_actions, max chance outcome + 1)]``: the history
    reached by each action or chance outcome, -1 where there is none.

    ``derived`` holds what other modules compute from the arrays on first use
    (:class:`DerivedData`).
    """

    game_string: str
    openspiel_version: str
    num_actions: int
    utility_sum: float
    parent: np.ndarray
    parent_action: np.ndarray
    depth: np.ndarray
    node_player: np.ndarray
    node_infostate: np.ndarray
    edge_chance_prob: np.ndarray
    chance_reach: np.ndarray
    sequences: np.ndarray
    returns: np.ndarray
    players: tuple[PlayerInfostates, PlayerInfostates]
    derived: DerivedData = dataclasses.field(default_factory=DerivedData, init=False, repr=False, compare=False)

    @property
    def num_histories(self) -> int:
        return int(self.parent.shape[0])

    @functools.cached_property
    def children(self) -> np.ndarray:
        width = max(self.num_actions, int(self.parent_action.max()) + 1)
        children = np.full((self.num_histories, width), -1, dtype=np.int32)
        non_root = np.arange(1, self.num_histories)
        children[self.parent[non_root], self.parent_action[non_root]] = non_root
        return children

    @functools.cached_property
    def terminal_histories(self) -> np.ndarray:
        return np.flatnonzero(self.node_player == TERMINAL)

    @property
    def openspiel_game(self) -> pyspiel.Game:
        """The (turn-based) OpenSpiel game this was compiled from."""
        if self.derived.openspiel_game is None:
            self.derived.openspiel_game = pyspiel.load_game(self.game_string)
        return self.derived.openspiel_game

    def action_path(self, history: int) -> list[int]:
        """Actions (and chance outcomes) from the root to ``history``."""
        path = []
        while history > 0:
            path.append(int(self.parent_action[history]))
            history = int(self.parent[history])
        return path[::-1]

    def openspiel_state(self, history: int) -> pyspiel.State:
        """Rebuild the OpenSpiel state of ``history`` by replaying its action path."""
        state = self.openspiel_game.new_initial_state()
        for action in self.action_path(history):
            state.apply_action(action)
        return state

    def representative_states(self, player: int) -> list[pyspiel.State]:
        """One OpenSpiel state in each of ``player``'s information states, in row order."""
        cache = self.derived.representative_states
        if player not in cache:
            histories = self.players[player].representative_history
            cache[player] = [self.openspiel_state(int(h)) for h in histories]
        return cache[player]

    def describe(self) -> str:
        """A one-line human-readable summary of the game's size."""
        kinds = {
            "terminal": int(np.sum(self.node_player == TERMINAL)),
            "chance": int(np.sum(self.node_player == CHANCE)),
            "decision": int(np.sum(self.node_player >= 0)),
        }
        infostates = " + ".join(str(p.num_infostates) for p in self.players)
        return (
            f"{self.game_string}: {self.num_histories:,} histories ({kinds['decision']:,} decision, "
            f"{kinds['chance']:,} chance, {kinds['terminal']:,} terminal), "
            f"{infostates} information states, {self.num_actions} distinct actions"
        )


# ---------------------------------------------------------------------------------------
# Enumeration


def estimate_tree_size(game: pyspiel.Game, probes: int = 64, seed: int = 0, cap: float = np.inf) -> float:
    """Estimate the number of histories of ``game`` by stratified sampling over depths.

    Chen's heuristic sampling (P. C. Chen, "Heuristic sampling: a method for predicting
    the performance of tree searching programs", SIAM J. Comput. 21(2), 1992), stratified
    by depth: level by level from the root, at most ``probes`` histories are kept, each
    weighted by the number of histories of its depth it stands for. The children of the
    kept histories, with their parents' weights, form the next level; when there are more
    than ``probes`` of them, ``probes`` are drawn uniformly without replacement and their
    weights scaled by (number of children) / ``probes``, so that every level's weighted
    count stays an unbiased estimate of its size. The estimate is the sum over levels.

    Single random paths from the root (Knuth's estimator) underestimate games whose
    histories are mostly deep and reached by few paths among short ones (bidding games
    such as ``oshi_zumo``, where bids of zero prolong the game): the sample here follows
    every depth at which many histories remain. Sampling stops once the estimate exceeds
    ``cap``, so a huge game such as chess is recognised in milliseconds.
    """
    rng = np.random.default_rng(seed)
    level = [(game.new_initial_state(), 1.0)]
    total = 0.0
    while level and total <= cap:
        total += sum(weight for _, weight in level)
        children = [
            (state, action, weight) for state, weight in level if not state.is_terminal()
            for action in _actions_with_positive_probability(state)
        ]
        scale = 1.0
        if len(children) > probes:
            scale = len(children) / probes
            children = [children[i] for i in np.sort(rng.choice(len(children), size=probes, replace=False))]
        level = [(state.child(action), weight * scale) for state, action, weight in children]
    return total


def _actions_with_positive_probability(state: pyspiel.State) -> list[int]:
    if state.is_chance_node():
        return [outcome for outcome, probability in state.chance_outcomes() if probability > 0]
    return state.legal_actions()


#: Information-state strings held while enumerating may total this many characters per
#: history allowed by ``max_histories`` (128 MB at the default limit). Kuhn and Leduc
#: poker, Liar's Dice, Goofspiel and tic-tac-toe hold at most 11 per history; games whose
#: strings spell out long action histories hold thousands, and are refused when these run
#: out rather than when memory does.
INFOSTATE_CHARS_PER_HISTORY = 64


class _InfostateBuffers:
    """One player's information states in discovery order, in typed buffers."""

    def __init__(self, num_actions: int) -> None:
        self.num_actions = num_actions
        self.index: dict[str, int] = {}
        self.legal_mask = array.array("B")  # num_actions entries per information state
        self.tensors = array.array("f")
        self.parent_sequence = array.array("q")  # discovery numbering, -1 = empty
        self.level = array.array("i")
        self.representative = array.array("q")

    def add(self, key: str, actions: list[int], tensor: list[float] | None, own_sequence: int, h: int) -> int:
        """Register a new information state; returns its discovery number."""
        info = len(self.index)
        self.index[key] = info
        row = bytearray(self.num_actions)
        for action in actions:
            row[action] = 1
        self.legal_mask.extend(row)
        if tensor is not None:
            self.tensors.extend(tensor)
        self.parent_sequence.append(own_sequence)
        self.level.append(self.level[own_sequence // self.num_actions] + 1 if own_sequence >= 0 else 0)
        self.representative.append(h)
        return info

    def player_infostates(self, keys: np.ndarray, order: np.ndarray, rank: np.ndarray,
                          tensors: bool) -> PlayerInfostates:
        """The arrays, rows in ``order`` (the sorted order of the keys)."""
        count = keys.shape[0]
        mask = np.frombuffer(self.legal_mask, dtype=np.uint8).reshape(count, self.num_actions).astype(bool)
        tensor_rows = np.frombuffer(self.tensors, dtype=np.float32).reshape(count, -1) if tensors and count else None
        return PlayerInfostates(
            num_actions=self.num_actions,
            keys=keys[order],
            legal_mask=mask[order],
            tensors=None if tensor_rows is None else tensor_rows[order],
            parent_sequence=_renumber(self.parent_sequence, rank, self.num_actions)[order],
            level=np.frombuffer(self.level, dtype=np.int32)[order],
            representative_history=np.frombuffer(self.representative, dtype=np.int64)[order],
        )


class _Enumeration:
    """One depth-first enumeration of a game into flat buffers; :meth:`run`, then :meth:`compiled_game`.

    What is held per history is a few numbers in typed buffers (about 50 bytes). The
    depth-first stack holds, per level of the current path, an iterator over the children
    still to visit, which keeps its parent's state and creates each child's state only
    when it is visited: the OpenSpiel states held are those of the current path.
    Histories are numbered in pre-order, children in the order of their actions.
    """

    def __init__(self, game: pyspiel.Game, max_histories: int) -> None:
        self.game = game
        self.game_string = str(game)
        self.max_histories = max_histories
        self.max_infostate_chars = max_histories * INFOSTATE_CHARS_PER_HISTORY
        self.infostate_chars = 0
        self.num_actions = game.num_distinct_actions()
        self.provides_tensor = game.get_type().provides_information_state_tensor
        constant_sum = game.get_type().utility == pyspiel.GameType.Utility.CONSTANT_SUM
        self.utility_sum = float(game.utility_sum()) if constant_sum else 0.0
        # Per history; sequences are in discovery numbering (-1 = empty) until compiled_game().
        self.parent, self.parent_action = array.array("i"), array.array("i")
        self.depth, self.node_player, self.node_infostate = array.array("h"), array.array("b"), array.array("i")
        self.edge_chance_prob, self.chance_reach = array.array("d"), array.array("d")
        self.sequences = (array.array("q"), array.array("q"))
        self.terminals, self.terminal_returns = array.array("q"), array.array("d")
        self.infostates = (_InfostateBuffers(self.num_actions), _InfostateBuffers(self.num_actions))
        self.started = time.perf_counter()

    def run(self) -> None:
        """Enumerate every history; :class:`GameTooLargeError` past the limits."""
        stack = [iter([(self.game.new_initial_state(), -1, -1, 1.0, 1.0, -1, -1, 0)])]
        while stack:
            visit = next(stack[-1], None)
            if visit is None:
                stack.pop()
                continue
            children = self._add_history(*visit)
            if children is not None:
                stack.append(children)
        log.info("enumerated %s: %d histories in %.2f s", self.game_string, len(self.parent),
                 time.perf_counter() - self.started)

    def _add_history(self, state, parent, action, edge_prob, reach, seq0, seq1, depth) -> Iterator | None:
        """Record one history; returns an iterator over its children's visits (None at a terminal)."""
        h = len(self.parent)
        if h >= self.max_histories:
            raise too_many_histories(self.game_string, self.max_histories)
        if h and h % 500_000 == 0:
            log.info("enumerated %d histories of %s (%.1f s)", h, self.game_string, time.perf_counter() - self.started)
        self.parent.append(parent)
        self.parent_action.append(action)
        self.depth.append(depth)
        self.edge_chance_prob.append(edge_prob)
        self.chance_reach.append(reach)
        self.sequences[0].append(seq0)
        self.sequences[1].append(seq1)
        if state.is_terminal():
            self.node_player.append(TERMINAL)
            self.node_infostate.append(-1)
            self.terminals.append(h)
            self.terminal_returns.extend(state.returns())
            return None
        if state.is_chance_node():
            self.node_player.append(CHANCE)
            self.node_infostate.append(-1)
            return _chance_children(state, h, reach, seq0, seq1, depth + 1)
        player = state.current_player()
        if player not in (0, 1):
            raise GameNotSupportedError(
                f"{self.game_string} has a history where player {player} acts; expected players 0 and 1"
            )
        actions = state.legal_actions()
        info = self._infostate(state, player, seq0 if player == 0 else seq1, actions, h)
        self.node_player.append(player)
        self.node_infostate.append(info)
        return _decision_children(state, h, player, info * self.num_actions, actions, reach, seq0, seq1, depth + 1)

    def _infostate(self, state, player: int, own_sequence: int, actions: list[int], h: int) -> int:
        """Discovery number of the acting player's information state, registered on first sight."""
        infostates = self.infostates[player]
        key = state.information_state_string(player)
        info = infostates.index.get(key)
        if info is None:
            self._count_infostate_chars(key, h)
            tensor = state.information_state_tensor(player) if self.provides_tensor else None
            info = infostates.add(key, actions, tensor, own_sequence, h)
        elif infostates.parent_sequence[info] != own_sequence:
            raise GameNotSupportedError(
                f"{self.game_string} does not have perfect recall: player {player}'s information state "
                f"{key!r} is reached after different own action sequences; the sequence-form engine "
                "needs perfect recall"
            )
        return info

    def _count_infostate_chars(self, key: str, h: int) -> None:
        self.infostate_chars += len(key)
        if self.infostate_chars > self.max_infostate_chars:
            raise GameTooLargeError(
                f"{self.game_string} has information-state strings too long to hold: more than "
                f"{self.max_infostate_chars:,} characters ({INFOSTATE_CHARS_PER_HISTORY} per history of "
                f"the {self.max_histories:,}-history limit) within its first {h + 1:,} histories, the "
                f"last {len(key):,} long; choose a smaller variant of the game or raise max_histories"
            )

    def compiled_game(self) -> CompiledGame:
        """The arrays, with information states renumbered in the sorted order of their strings."""
        node_player = np.frombuffer(self.node_player, dtype=np.int8)
        node_infostate = np.frombuffer(self.node_infostate, dtype=np.int32).astype(np.int64)
        sequences = np.stack([np.frombuffer(s, dtype=np.int64) for s in self.sequences], axis=1)
        players = []
        for p, infostates in enumerate(self.infostates):
            keys = np.asarray(list(infostates.index), dtype=np.str_)
            order = np.argsort(keys, kind="stable")
            rank = np.empty(keys.shape[0], dtype=np.int64)
            rank[order] = np.arange(keys.shape[0])
            players.append(infostates.player_infostates(keys, order, rank, self.provides_tensor))
            sequences[:, p] = _renumber(sequences[:, p], rank, self.num_actions)
            acting = node_player == p
            node_infostate[acting] = rank[node_infostate[acting]]
        return CompiledGame(
            game_string=self.game_string,
            openspiel_version=openspiel_version(),
            num_actions=self.num_actions,
            utility_sum=self.utility_sum,
            parent=np.frombuffer(self.parent, dtype=np.int32),
            parent_action=np.frombuffer(self.parent_action, dtype=np.int32),
            depth=np.frombuffer(self.depth, dtype=np.int16),
            node_player=node_player,
            node_infostate=node_infostate.astype(np.int32),
            edge_chance_prob=np.frombuffer(self.edge_chance_prob, dtype=np.float64),
            chance_reach=np.frombuffer(self.chance_reach, dtype=np.float64),
            sequences=sequences,
            returns=self._returns(),
            players=(players[0], players[1]),
        )

    def _returns(self) -> np.ndarray:
        """``float64[H, 2]``, checked against the declared utility sum."""
        returns = np.zeros((len(self.parent), 2), dtype=np.float64)
        if not self.terminals:
            return returns
        term = np.frombuffer(self.terminals, dtype=np.int64)
        returns[term] = np.frombuffer(self.terminal_returns, dtype=np.float64).reshape(-1, 2)
        sums = returns[term].sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - self.utility_sum) > 1e-9 * max(1.0, np.abs(returns[term]).max()))
        if bad.size:
            h = int(term[bad[0]])
            raise GameNotSupportedError(
                f"{self.game_string} declares itself zero/constant-sum (sum {self.utility_sum}) but terminal "
                f"history {h} has returns {returns[h].tolist()}"
            )
        return returns


def _chance_children(state, h: int, reach: float, seq0: int, seq1: int, depth: int) -> Iterator:
    for outcome, probability in state.chance_outcomes():
        if probability > 0:
            yield state.child(outcome), h, outcome, probability, reach * probability, seq0, seq1, depth


def _decision_children(state, h: int, player: int, first_sequence: int, actions: list[int],
                       reach: float, seq0: int, seq1: int, depth: int) -> Iterator:
    for action in actions:
        if player == 0:
            yield state.child(action), h, action, 1.0, reach, first_sequence + action, seq1, depth
        else:
            yield state.child(action), h, action, 1.0, reach, seq0, first_sequence + action, depth


def _renumber(sequences, rank: np.ndarray, num_actions: int) -> np.ndarray:
    """Sequences in discovery numbering (-1 = empty) in the numbering of sorted information states."""
    sequences = np.asarray(sequences, dtype=np.int64)
    out = np.full(sequences.shape, rank.shape[0] * num_actions, dtype=np.int64)
    used = sequences >= 0
    out[used] = rank[sequences[used] // num_actions] * num_actions + sequences[used] % num_actions
    return out


def too_many_histories(game_string: str, max_histories: int) -> GameTooLargeError:
    """The error of a game with more than ``max_histories`` histories (compiled now, or cached before)."""
    return GameTooLargeError(
        f"{game_string} has more than {max_histories:,} histories (the enumeration "
        "limit); choose a smaller variant of the game or raise max_histories if you "
        "have the memory (about 200 bytes per history while compiling)"
    )


def _enumerate(game: pyspiel.Game, max_histories: int) -> CompiledGame:
    enumeration = _Enumeration(game, max_histories)
    enumeration.run()
    return enumeration.compiled_game()


# ---------------------------------------------------------------------------------------
# Disk cache

_HISTORY_FIELDS = (
    "parent", "parent_action", "depth", "node_player", "node_infostate",
    "edge_chance_prob", "chance_reach", "sequences", "returns",
)
_PLAYER_FIELDS = ("keys", "legal_mask", "tensors", "parent_sequence", "level", "representative_history")


def default_cache_dir() -> Path:
    """``$FUSION_PSRO_CACHE_DIR``, else ``$XDG_CACHE_HOME/fusion_psro``, else ``~/.cache/fusion_psro``."""
    if os.environ.get("FUSION_PSRO_CACHE_DIR"):
        return Path(os.environ["FUSION_PSRO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fusion_psro"


def cache_path(game_string: str, cache_dir: Path | str | None = None) -> Path:
    """Where the compiled form of ``game_string`` is cached."""
    key = f"{CACHE_FORMAT_VERSION}|{openspiel_version()}|{game_string}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9]+", "_", game_string)[:48].strip("_")
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return directory / "games" / f"{slug}-{digest}.npz"


def _save(compiled: CompiledGame, path: Path) -> None:
    arrays = {name: getattr(compiled, name) for name in _HISTORY_FIELDS}
    for p, info in enumerate(compiled.players):
        for name in _PLAYER_FIELDS:
            value = getattr(info, name)
            if value is not None:
                arrays[f"p{p}_{name}"] = value
    meta = {
        "format": CACHE_FORMAT_VERSION,
        "game_string": compiled.game_string,
        "openspiel_version": compiled.openspiel_version,
        "num_actions": compiled.num_actions,
        "utility_sum": compiled.utility_sum,
    }
    arrays["meta"] = np.asarray(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a crash never leaves a truncated cache entry
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def _load(path: Path, game_string: str) -> CompiledGame | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if (
                meta.get("format") != CACHE_FORMAT_VERSION
                or meta.get("game_string") != game_string
                or meta.get("openspiel_version") != openspiel_version()
            ):
                log.warning("ignoring stale compiled-game cache %s", path)
                return None
            players = []
            for p in range(2):
                fields = {name: data[f"p{p}_{name}"] if f"p{p}_{name}" in data else None for name in _PLAYER_FIELDS}
                players.append(PlayerInfostates(num_actions=meta["num_actions"], **fields))
            return CompiledGame(
                game_string=meta["game_string"],
                openspiel_version=meta["openspiel_version"],
                num_actions=meta["num_actions"],
                utility_sum=meta["utility_sum"],
                players=(players[0], players[1]),
                **{name: data[name] for name in _HISTORY_FIELDS},
            )
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable compiled-game cache %s (%s); recompiling", path, exc)
        return None


_MEMORY_CACHE: dict[tuple[str, str], CompiledGame] = {}


def compile_game(
    game: str | pyspiel.Game | CompiledGame,
    *,
    max_histories: int = DEFAULT_MAX_HISTORIES,
    cache: bool = True,
    cache_dir: Path | str | None = None,
) -> CompiledGame:
    """Enumerate a two-player zero-sum OpenSpiel game into a :class:`CompiledGame`.

    Parameters
    ----------
    game:
        Game string (``"leduc_poker"``, ``"goofspiel(num_cards=4,imp_info=True,points_order=descending)"``),
        a ``pyspiel.Game``, or an already compiled game (returned unchanged).
        Simultaneous-move games are converted to turn-based.
    max_histories:
        Enumeration limit. Games whose tree is estimated (:func:`estimate_tree_size`) to
        exceed ten times this are refused at once; others are refused as soon as
        enumeration passes the limit, or once their information-state strings total
        :data:`INFOSTATE_CHARS_PER_HISTORY` characters per allowed history, before memory
        runs out.
    cache:
        Read and write the on-disk cache (one ``.npz`` per game string and OpenSpiel
        version, see :func:`cache_path`). Compiled games are also kept in memory for the
        life of the process.
    cache_dir:
        Cache directory; default :func:`default_cache_dir`.

    Raises
    ------
    GameNotSupportedError
        Unknown game, not two-player zero/constant-sum, no information-state strings,
        sampled chance, or imperfect recall.
    GameTooLargeError
        The tree has more than ``max_histories`` histories, or too long information-state
        strings.
    ConfigError
        ``max_histories`` is not a positive integer.
    """
    if isinstance(game, CompiledGame):
        return game
    if isinstance(max_histories, bool) or not isinstance(max_histories, (int, np.integer)) or max_histories <= 0:
        raise ConfigError(f"max_histories must be a positive integer, got {max_histories!r}")
    loaded = load_openspiel_game(game)
    game_string = str(loaded)
    memory_key = (game_string, openspiel_version())
    if memory_key in _MEMORY_CACHE:
        return _within_limit(_MEMORY_CACHE[memory_key], max_histories)

    path = cache_path(game_string, cache_dir)
    compiled = _load(path, game_string) if cache and path.exists() else None
    if compiled is not None:
        _within_limit(compiled, max_histories)
    else:
        estimate = estimate_tree_size(loaded, cap=100.0 * max_histories)
        if estimate > 10 * max_histories:
            raise GameTooLargeError(
                f"{game_string} is far too large to enumerate: about {estimate:.3g} histories "
                f"(sampled estimate) against a limit of {max_histories:,}. fusion-psro computes "
                "exact payoffs and exploitability from the full game tree; use a small game such as "
                "kuhn_poker, leduc_poker, liars_dice or goofspiel(num_cards=4,imp_info=True,"
                "points_order=descending)"
            )
        compiled = _enumerate(loaded, max_histories)
        compiled.derived.openspiel_game = loaded
        if cache:
            try:
                _save(compiled, path)
            except OSError as exc:
                log.warning("could not write compiled-game cache %s: %s", path, exc)
    _MEMORY_CACHE[memory_key] = compiled
    return compiled


def _within_limit(compiled: CompiledGame, max_histories: int) -> CompiledGame:
    """``compiled``, unless it has more histories than ``max_histories``: a cached game obeys the
    limit as a fresh enumeration would."""
    if compiled.num_histories > max_histories:
        raise too_many_histories(compiled.game_string, max_histories)
    return compiled
