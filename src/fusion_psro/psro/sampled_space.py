"""The ``sampled`` game kind: any two-player zero-sum OpenSpiel game, evaluated by sampled games.

A game too large to compile (:func:`~fusion_psro.games.sampled.too_large_to_compile`), or
any game with ``evaluation="sampled"``, is played from pyspiel states
(:mod:`fusion_psro.games.sampled`) instead of enumerated:

* **Policies are networks.** A member's policy is its network as one vector
  (:mod:`fusion_psro.oracles.network_policy`); every population starts with the uniform
  random policy (a vector of kind ``UNIFORM``, without parameters, so it takes no part in
  fusion). Every initialization that works on parameters (scratch, inherit, fusion and its
  variants) applies unchanged; one that needs a mixture's exact behaviour
  (``nash-distill``) is refused, as are diversity terms without a sampled form.
* **The meta-game is estimated** (:class:`SampledMetaGame`): entry ``(i, j)`` is the mean
  of player 0's returns over games between member ``i`` and member ``j``, with its
  standard error; either ``sims_per_entry`` games, or (with ``payoff_tolerance``) rounds of
  ``sims_per_entry`` games until the 95% half-width ``1.96 s / sqrt(n)`` is at most the
  tolerance or ``max_sims_per_entry`` games are reached (such entries are counted and
  warned about in the metrics). A new member costs its row or column only; a replaced
  one (P-PSRO's learners) its row or column again.
* **Every game comes from a seeded draw.** An entry's games are seeded by the run seed and
  digests of the two members' vectors (round ``r`` of adaptive sampling by that seed and
  ``r``), so an entry is a function of its two members: the same whichever order, process
  or Ray worker computes it, and a resumed run samples exactly what an uninterrupted one
  would.
* **Evaluation.** Where the game compiles (``evaluation="sampled"`` on a small game), the
  exploitability of the meta-strategy mixture is still computed exactly, from each
  member's greedy table over the compiled information states. Where it does not, it is
  NaN: the approximate exploitability (:mod:`fusion_psro.psro.approximate_exploitability`) measures it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from typing import Any

import numpy as np

from fusion_psro.errors import ConfigError, GameNotSupportedError, GameTooLargeError
from fusion_psro.games.compiled import CompiledGame, compile_game
from fusion_psro.games.sampled import load_sampled_game, tensor_size, too_large_to_compile
from fusion_psro.psro.meta_game import MetaGame
from fusion_psro.psro.spaces import PolicySpace, SpaceEvaluation
from fusion_psro.registry import ORACLES

log = logging.getLogger(__name__)

#: z of a two-sided 95% normal interval.
Z95 = 1.959963984540054
#: Default games per meta-game entry (the prior code's 1,000 simulations).
DEFAULT_SIMS_PER_ENTRY = 1000
#: Default cap on an entry's games when sampling to a tolerance.
DEFAULT_MAX_SIMS_PER_ENTRY = 20_000


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """How meta-game entries are sampled; see the module docstring."""

    game: str
    sims_per_entry: int = DEFAULT_SIMS_PER_ENTRY
    payoff_tolerance: float | None = None
    max_sims_per_entry: int = DEFAULT_MAX_SIMS_PER_ENTRY
    seed: int = 0
    num_envs: int = 256


def digest(vector: np.ndarray) -> list[int]:
    """Four 32-bit words identifying a policy vector (seeds of the games it plays)."""
    raw = hashlib.sha256(np.ascontiguousarray(vector, dtype=np.float64).tobytes()).digest()[:16]
    return np.frombuffer(raw, dtype=np.uint32).tolist()


def entry_seed(seed: int, row: np.ndarray, column: np.ndarray, *extra: int) -> np.random.SeedSequence:
    """The seed of the games between ``row`` (player 0) and ``column`` (player 1)."""
    return np.random.SeedSequence([int(seed), *digest(row), *digest(column), *extra])


def sample_entries(settings: SamplingSettings, rows, columns) -> list[tuple[float, float, int]]:
    """``(mean, standard error, games)`` of player 0's return for each pair ``rows[k]`` vs ``columns[k]``.

    A pure function of its arguments (module docstring), so entries may be computed in any
    process.
    """
    from fusion_psro.oracles.network_policy import NetworkSeat  # noqa: PLC0415 (PyTorch)

    game = load_sampled_game(settings.game)
    size, actions = tensor_size(game), game.num_distinct_actions()
    seats: dict[bytes, Any] = {}

    def seat(vector):
        key = hashlib.sha256(np.ascontiguousarray(vector).tobytes()).digest()
        if key not in seats:
            seats[key] = NetworkSeat([vector], np.ones(1), size, actions)
        return seats[key]

    return [_sample_entry(game, settings, row, column, seat(row), seat(column)) for row, column in zip(rows, columns)]


def _sample_entry(game, settings: SamplingSettings, row, column, seat0, seat1) -> tuple[float, float, int]:
    from fusion_psro.games.sampled import play_games  # noqa: PLC0415

    total = squares = 0.0
    count, round = 0, 0
    while True:
        seed = entry_seed(settings.seed, row, column, round)
        returns = play_games(game, (seat0, seat1), settings.sims_per_entry, seed=seed, num_envs=settings.num_envs)
        total, squares, count = total + returns.sum(), squares + (returns ** 2).sum(), count + returns.size
        round += 1
        error = standard_error(total, squares, count)
        if settings.payoff_tolerance is None or count >= settings.max_sims_per_entry \
                or Z95 * error <= settings.payoff_tolerance:
            return total / count, error, count


def standard_error(total: float, squares: float, count: int) -> float:
    """Standard error of a mean from the sum and sum of squares of ``count`` samples (inf below 2)."""
    if count < 2:
        return math.inf
    variance = max(squares - total * total / count, 0.0) / (count - 1)
    return math.sqrt(variance / count)


class SampledMetaGame(MetaGame):
    """Estimated payoffs between the two populations; see the module docstring.

    ``matrix[i, j]`` is the sampled mean of player 0's return, member ``i`` against member
    ``j``; ``standard_errors`` and ``samples`` hold each entry's standard error and games.
    """

    def __init__(self, space: SampledSpace) -> None:
        self.space = space
        self._policies: list[list[np.ndarray]] = [[], []]
        self.matrix = np.zeros((0, 0))
        self.standard_errors = np.zeros((0, 0))
        self.samples = np.zeros((0, 0), dtype=np.int64)
        self._report = _SamplingReport()

    @property
    def sizes(self) -> tuple[int, int]:
        return self.matrix.shape  # type: ignore[return-value]

    def policies(self, player: int) -> list[np.ndarray]:
        return list(self._policies[player])

    def _sample(self, player: int, policy: np.ndarray) -> list[tuple[float, float, int]]:
        """Entries of ``policy`` (a member of ``player``) against every opponent member."""
        opponents = self._policies[1 - player]
        if not opponents:
            return []
        pairs = [(policy, o) if player == 0 else (o, policy) for o in opponents]
        entries = self.space.sample_pairs(pairs)
        self._report.add(entries, self.space.settings)
        return entries

    def add(self, player: int, policy: np.ndarray) -> int:
        policy = np.asarray(policy, dtype=np.float64)
        entries = self._sample(player, policy)
        values = np.array([e[0] for e in entries]), np.array([e[1] for e in entries]), np.array([e[2] for e in entries])
        if player == 0:
            self.matrix = np.vstack([self.matrix, values[0][None, :]])
            self.standard_errors = np.vstack([self.standard_errors, values[1][None, :]])
            self.samples = np.vstack([self.samples, values[2][None, :].astype(np.int64)])
        else:
            self.matrix = np.hstack([self.matrix, values[0][:, None]])
            self.standard_errors = np.hstack([self.standard_errors, values[1][:, None]])
            self.samples = np.hstack([self.samples, values[2][:, None].astype(np.int64)])
        self._policies[player].append(policy)
        return len(self._policies[player]) - 1

    def replace(self, player: int, index: int, policy: np.ndarray) -> None:
        policy = np.asarray(policy, dtype=np.float64)
        entries = self._sample(player, policy)
        self._policies[player][index] = policy
        if not entries:
            return
        where = (index, slice(None)) if player == 0 else (slice(None), index)
        self.matrix[where] = [e[0] for e in entries]
        self.standard_errors[where] = [e[1] for e in entries]
        self.samples[where] = [e[2] for e in entries]

    def payoffs(self, player: int) -> np.ndarray:
        """``player``'s payoff matrix, rows = own members, columns = opponent members."""
        return self.matrix if player == 0 else self.space.utility_sum - self.matrix.T

    def plan(self, player: int, index: int) -> np.ndarray:
        raise GameNotSupportedError("a sampled meta-game has no realization plans; its payoffs are estimates")

    def mixed_plan(self, player: int, weights: np.ndarray) -> np.ndarray:
        raise GameNotSupportedError("a sampled meta-game has no realization plans; its payoffs are estimates")

    def checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """What a checkpoint saves beside the matrix (restored by :meth:`SampledSpace.restore_meta_game`)."""
        return {"standard_errors": self.standard_errors, "samples": self.samples}

    def take_report(self) -> dict[str, Any]:
        """The sampling done since the last call, for the metrics row (``meta_game`` and ``warnings``)."""
        report, self._report = self._report, _SamplingReport()
        return report.to_json(self.space.settings)


class _SamplingReport:
    """Entries sampled, their games, widest interval and entries stopped at the cap."""

    def __init__(self) -> None:
        self.entries = self.games = self.capped = 0
        self.widest = 0.0

    def add(self, entries, settings: SamplingSettings) -> None:
        for _, error, games in entries:
            self.entries += 1
            self.games += games
            self.widest = max(self.widest, Z95 * error)
            tolerance = settings.payoff_tolerance
            self.capped += tolerance is not None and Z95 * error > tolerance

    def to_json(self, settings: SamplingSettings) -> dict[str, Any]:
        row: dict[str, Any] = {"meta_game": {"entries_sampled": self.entries, "games": self.games,
                                             "max_half_width_95": self.widest if self.entries else None,
                                             "capped_entries": self.capped}}
        if self.capped:
            message = (f"{self.capped} meta-game entries stopped at the cap of {settings.max_sims_per_entry:,} games "
                       f"with a 95% half-width above the payoff tolerance {settings.payoff_tolerance} (widest "
                       f"{self.widest:.4g}); raise max_sims_per_entry or the tolerance")
            log.warning(message)
            row["warnings"] = [message]
        return row


class SampledSpace(PolicySpace):
    """A two-player zero-sum OpenSpiel game played by sampling; see the module docstring."""

    description = "an OpenSpiel game played by sampling (its payoffs are estimated from sampled games)"
    default_oracle = "dqn"
    evaluation = "sampled"
    exact = False
    estimates_payoffs = True

    def __init__(self, settings: SamplingSettings, hidden_sizes: tuple[int, ...], *,
                 reference: CompiledGame | None = None) -> None:
        self.settings = settings
        #: The (turn-based) OpenSpiel game the oracles play (what a network oracle asks for).
        self.sampled_game = load_sampled_game(settings.game)
        self.game_string = str(self.sampled_game)
        game_type = self.sampled_game.get_type()
        import pyspiel  # noqa: PLC0415

        constant = game_type.utility == pyspiel.GameType.Utility.CONSTANT_SUM
        self.utility_sum = float(self.sampled_game.utility_sum()) if constant else 0.0
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.input_size = tensor_size(self.sampled_game)
        self.num_actions = int(self.sampled_game.num_distinct_actions())
        #: The compiled game, for exact evaluation, where the game compiles (else None).
        self.reference = reference
        self.executor = None
        self._tables: dict[tuple[int, bytes], np.ndarray] = {}

    @classmethod
    def claims(cls, game: str) -> bool:
        return too_large_to_compile(game)

    @classmethod
    def serves(cls, game: str) -> bool:
        """Every OpenSpiel game (one that cannot be played, say general-sum, is refused by :meth:`create`
        with the reason)."""
        import pyspiel  # noqa: PLC0415

        return game.split("(", 1)[0].strip() in pyspiel.registered_names()

    @classmethod
    def create(cls, config: Any, *, compiled: CompiledGame | None = None) -> SampledSpace:
        settings = SamplingSettings(
            game=config.game, sims_per_entry=config.sims_per_entry or DEFAULT_SIMS_PER_ENTRY,
            payoff_tolerance=config.payoff_tolerance,
            max_sims_per_entry=config.max_sims_per_entry or DEFAULT_MAX_SIMS_PER_ENTRY, seed=config.seed,
        )
        reference = compiled
        if reference is None and not too_large_to_compile(config.game):
            try:
                reference = compile_game(config.game)
            except GameTooLargeError:
                reference = None
        return cls(settings, network_hidden_sizes(config), reference=reference)

    def set_executor(self, executor) -> None:
        """Where meta-game entries are sampled (an :mod:`~fusion_psro.psro.executors` executor)."""
        self.executor = executor

    def sample_pairs(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, float, int]]:
        """Entries of ``(row, column)`` policy pairs, in parallel when the run has workers."""
        rows, columns = [p[0] for p in pairs], [p[1] for p in pairs]
        workers = getattr(self.executor, "workers", 1)
        if workers <= 1 or len(pairs) < 2:
            return sample_entries(self.settings, rows, columns)
        chunks = np.array_split(np.arange(len(pairs)), min(workers, len(pairs)))
        tasks = [(self.settings, [rows[i] for i in c], [columns[i] for i in c]) for c in chunks]
        return [entry for part in self.executor.map(sample_entries, tasks) for entry in part]

    def initial_policy(self, player: int) -> np.ndarray:
        from fusion_psro.oracles.network_policy import uniform_vector  # noqa: PLC0415 (PyTorch)

        return uniform_vector(self.input_size, self.hidden_sizes, self.num_actions)

    def new_meta_game(self) -> SampledMetaGame:
        return SampledMetaGame(self)

    def restore_meta_game(self, policies, matrix, standard_errors=None, samples=None) -> SampledMetaGame:
        meta_game = SampledMetaGame(self)
        if np.shape(matrix) != (len(policies[0]), len(policies[1])):
            raise ValueError(f"saved meta-game is {np.shape(matrix)}, populations are {len(policies[0])}x{len(policies[1])}")
        meta_game._policies = [[np.asarray(p, dtype=np.float64) for p in policies[q]] for q in range(2)]
        meta_game.matrix = np.array(matrix, dtype=np.float64)
        meta_game.standard_errors = np.full(meta_game.matrix.shape, np.nan) if standard_errors is None \
            else np.array(standard_errors, dtype=np.float64)
        meta_game.samples = np.zeros(meta_game.matrix.shape, dtype=np.int64) if samples is None \
            else np.array(samples, dtype=np.int64)
        return meta_game

    def tabular(self, player: int, policy: np.ndarray) -> np.ndarray:
        """A member's greedy table over the compiled information states (only where the game compiles)."""
        from fusion_psro.oracles.episode_sources import tabulate_member  # noqa: PLC0415 (PyTorch)

        key = (player, hashlib.sha256(np.ascontiguousarray(policy).tobytes()).digest())
        if key not in self._tables:
            self._tables[key] = tabulate_member(policy, self.reference, player)
        return self._tables[key]

    def evaluate(self, meta_game: SampledMetaGame, meta_strategies) -> SpaceEvaluation:
        """Exact where the game compiles (the members' greedy tables); NaN where it does not."""
        if self.reference is None:
            return SpaceEvaluation(nash_conv=math.nan, exploitability=math.nan)
        from fusion_psro.evaluation import evaluate_mixture  # noqa: PLC0415

        populations = [np.stack([self.tabular(p, v) for v in meta_game.policies(p)]) for p in range(2)]
        evaluation = evaluate_mixture(self.reference, populations, list(meta_strategies))
        return SpaceEvaluation(nash_conv=evaluation.nash_conv, exploitability=evaluation.exploitability)

    def value_against(self, meta_game: SampledMetaGame, player, policy, opponent_count, weights) -> float:
        """``player``'s sampled value of ``policy`` against the mixture of the opponent's first members."""
        from fusion_psro.games.sampled import play_games  # noqa: PLC0415
        from fusion_psro.oracles.network_policy import NetworkSeat  # noqa: PLC0415

        weights = np.asarray(weights, dtype=np.float64)
        opponents = meta_game.policies(1 - player)[:opponent_count]
        own = NetworkSeat([policy], np.ones(1), self.input_size, self.num_actions)
        mixture = NetworkSeat(opponents, weights, self.input_size, self.num_actions)
        seats = (own, mixture) if player == 0 else (mixture, own)
        seed = entry_seed(self.settings.seed, policy, weights, int(opponent_count), player)
        returns = play_games(self.sampled_game, seats, self.settings.sims_per_entry, seed=seed)
        mean = float(returns.mean())
        return mean if player == 0 else self.utility_sum - mean


def network_hidden_sizes(config: Any) -> tuple[int, ...]:
    """Hidden widths of the run's member networks, as its oracle declares them
    (:meth:`~fusion_psro.oracles.base.Oracle.member_hidden_sizes`)."""
    oracle = ORACLES.get(config.oracle)
    sizes = oracle.member_hidden_sizes(oracle.settings(config.oracle_options))
    if sizes is None:
        raise ConfigError(f"the {config.oracle} oracle's members are no networks; sampled play needs network "
                          f"members: {ORACLES.accepted(lambda o: 'sampled' in o.game_kinds)}")
    return tuple(sizes)


__all__ = [
    "DEFAULT_MAX_SIMS_PER_ENTRY", "DEFAULT_SIMS_PER_ENTRY", "SampledMetaGame", "SampledSpace", "SamplingSettings",
    "Z95", "digest", "entry_seed", "network_hidden_sizes", "sample_entries", "standard_error",
]
