"""Getting a run's results back: its settings, metrics, populations and final mixtures.

::

    import fusion_psro
    run = fusion_psro.load_run("runs/leduc-fusion")
    run.config                      # the PSROConfig it ran
    run.records[-1].exploitability  # typed metrics rows
    run.populations[0][3].policy    # member 3 of player 0: tabular policy (and .parameters)
    run.meta_strategies(5)          # the meta-strategies after iteration 5
    run.population_at(5)            # the populations as they were after iteration 5
    run.networks(0)                 # player 0's members as torch modules (learned oracles)
    run.final_policy()              # the final meta-strategy mixtures as one OpenSpiel TabularPolicy
    run.meta_game()                 # payoff matrix between the final populations (player 0's payoffs)

A run that has not finished (killed, or still running) is read from its newest checkpoint:
its records stop at that checkpoint's iteration and ``run.finished`` is False.
:func:`match_runs` plays two runs' final mixtures against each other, exactly, in both seats;
:func:`export_meta_game` writes a run's meta-game and meta-strategies as CSV and JSON.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.errors import OracleError
from fusion_psro.experiments.manifest import MANIFEST_FILE, RunFiles, RunIntegrityError, read_with_retry
from fusion_psro.experiments.rundir import CONFIG_FILE, POPULATION_DIR, RunDirectoryError, make_directory
from fusion_psro.files import write_json_atomic
from fusion_psro.psro.config import PSROConfig
from fusion_psro.psro.population import Member
from fusion_psro.psro.records import IterationRecord


@dataclasses.dataclass(eq=False)
class SavedRun:
    """A run read back from its directory; see the module docstring."""

    path: Path
    config: PSROConfig
    records: list[IterationRecord]
    #: The populations after the last of :attr:`records`, one list of members per player.
    populations: list[list[Member]]
    #: The canonical game string the run recorded.
    game_string: str
    #: Whether the run finished (its final population is saved); else it was read from a checkpoint.
    finished: bool = True

    @property
    def iterations(self) -> int:
        return self.records[-1].iteration if self.records else 0

    def record(self, iteration: int) -> IterationRecord:
        """The metrics row of ``iteration`` (1 for the first)."""
        if not 1 <= iteration <= self.iterations:
            raise RunDirectoryError(f"{self.path} recorded iterations 1..{self.iterations}; there is no iteration {iteration}")
        return self.records[iteration - 1]

    def meta_strategies(self, iteration: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each player's meta-strategy after ``iteration`` (default: the last)."""
        record = self.record(iteration or self.iterations)
        return np.asarray(record.meta_strategies[0]), np.asarray(record.meta_strategies[1])

    def population_at(self, iteration: int) -> list[list[Member]]:
        """The populations after ``iteration``: the first members of the final ones.

        Only for variants whose members never change once added (not P-PSRO, whose
        learners keep training in place).
        """
        from fusion_psro.registry import VARIANTS  # noqa: PLC0415

        if not VARIANTS.get(self.config.variant).appends_members:
            raise RunDirectoryError(
                f"{self.path} is a {self.config.variant} run: its members kept training after they joined, so the "
                f"populations of iteration {iteration} are not the first members of the final ones; accepted: "
                f"runs of {VARIANTS.accepted(lambda v: v.appends_members)}"
            )
        sizes = self.record(iteration).population_sizes
        return [self.populations[p][: sizes[p]] for p in range(2)]

    def policies(self, player: int) -> np.ndarray:
        """``player``'s final population as one array of policies (``[K, I, A]`` tabular policies)."""
        return np.stack([m.policy for m in self.populations[_player(player)]])

    def space(self):
        """The run's policy space (:mod:`fusion_psro.psro.spaces`): its game's payoffs and evaluation."""
        from fusion_psro.psro.spaces import make_space  # noqa: PLC0415

        space = make_space(self.config.resolved())
        for player, members in enumerate(self.populations):
            expected = np.shape(space.initial_policy(player))
            shapes = {np.shape(m.policy) for m in members}
            if shapes != {expected}:
                raise RunIntegrityError(f"{self.path}: player {player}'s members have policies of shape "
                                        f"{sorted(shapes)}, not {expected} as the game {self.config.game!r} of its "
                                        f"{CONFIG_FILE} needs; the files do not belong together")
        return space

    def networks(self, player: int) -> list[Any]:
        """``player``'s members as torch modules (None for members without parameters)."""
        from fusion_psro.psro.loop import make_oracle  # noqa: PLC0415 (loads the oracle and PyTorch)

        config = self.config.resolved()
        oracle = make_oracle(config, self.space())
        none = RunDirectoryError(f"the {config.oracle} oracle of {self.path} has no networks; its members are the "
                                 "policies in run.populations")
        if not oracle.trains_parameters:
            raise none
        try:
            return [None if m.parameters is None else oracle.network(player, m.parameters)
                    for m in self.populations[_player(player)]]
        except OracleError:
            raise none from None

    def final_policy(self):
        """The final meta-strategy mixtures of both players as one OpenSpiel ``TabularPolicy``.

        Each player's mixture "draw a member from the meta-strategy, then follow it" as the
        equivalent behaviour strategy (:func:`~fusion_psro.evaluation.behaviour.mixture_behaviour`),
        so its exploitability is the run's last recorded exploitability.
        """
        from fusion_psro.interop import to_openspiel_policy  # noqa: PLC0415
        from fusion_psro.evaluation.behaviour import mixture_behaviour  # noqa: PLC0415

        compiled = self.space().compiled
        if compiled is None:
            raise RunDirectoryError(f"{self.path} ran {self.config.game!r}, which is not an OpenSpiel game; its "
                                    "final mixtures are run.populations weighted by run.meta_strategies()")
        sigma = self.meta_strategies()
        behaviour = [mixture_behaviour(compiled, p, self.policies(p), sigma[p]) for p in range(2)]
        return to_openspiel_policy(compiled, behaviour)

    def meta_game(self) -> np.ndarray:
        """Payoff matrix between the final populations: ``M[i, j]`` is player 0's exact payoff
        of its member ``i`` against player 1's member ``j``."""
        return _meta_game(self.space(), self.populations[0], self.populations[1]).matrix


def trap_summary(run: Any):
    """The run's trapped responses and the iteration from which it never changes again
    (:class:`~fusion_psro.experiments.traps.TrapSummary`: ``trapped_iterations``,
    ``frozen_from``, ``responses``), derived from its metrics rows.

    ``run``: a :class:`SavedRun`, a :class:`~fusion_psro.experiments.runs.RunSummary`, or a
    run directory (read without its populations).
    """
    from fusion_psro.experiments.runs import RunSummary, load_runs  # noqa: PLC0415
    from fusion_psro.experiments.traps import compares_values, summarize_traps  # noqa: PLC0415

    if isinstance(run, SavedRun):
        settings, rows = run.config.to_json(), [record.to_json() for record in run.records]
    else:
        summary = run if isinstance(run, RunSummary) else load_runs([run])[0]
        settings, rows = summary.settings, summary.rows
    return summarize_traps(rows, compares_values=compares_values(settings))


def _player(player: int) -> int:
    from fusion_psro.validation import check_player  # noqa: PLC0415

    return check_player(player)


def _meta_game(space, row_members: list[Member], column_members: list[Member]):
    meta_game = space.new_meta_game()
    for member in row_members:
        meta_game.add(0, member.policy)
    for member in column_members:
        meta_game.add(1, member.policy)
    return meta_game


def load_run(path: Path | str) -> SavedRun:
    """Read a run directory (config, metrics and populations); see the module docstring.

    Every file read is checked against the run's manifest
    (:mod:`fusion_psro.experiments.manifest`); a difference is a
    :class:`~fusion_psro.experiments.manifest.RunIntegrityError`. A live run is read at its
    newest complete checkpoint (opened again if the run prunes it while it is read).
    """
    return read_with_retry(path, _load)


def _load(files: RunFiles) -> SavedRun:
    path = files.path
    try:
        config = PSROConfig.from_record(files.record["psro"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RunDirectoryError(f"cannot read the settings in {path / CONFIG_FILE}: {exc}") from None
    try:
        records = [IterationRecord.from_json(row) for row in files.rows]
    except (TypeError, ValueError) as exc:
        raise RunIntegrityError(f"{path}: a metrics row cannot be read ({exc})") from None
    game_string = str(files.record.get("game_string", config.game))
    if files.manifest.finished:
        run = SavedRun(path, config, records, [_members(files, p) for p in range(2)], game_string)
    else:
        from fusion_psro.experiments.checkpoint import read_checkpoint  # noqa: PLC0415 (loads PyTorch)

        iteration, populations = read_checkpoint(files, at_most=len(records))
        run = SavedRun(path, config, records[:iteration], populations, game_string, finished=False)
    sizes = [len(population) for population in run.populations]
    if not run.records or sizes != run.records[-1].population_sizes:
        where = path / POPULATION_DIR if run.finished else path / "checkpoints"
        recorded = run.records[-1].population_sizes if run.records else "no members"
        raise RunIntegrityError(f"{where} holds {sizes[0]} and {sizes[1]} members; the metrics row of iteration "
                                f"{run.iterations} has meta-strategies over {recorded}")
    return run


def _members(files: RunFiles, player: int) -> list[Member]:
    from safetensors import SafetensorError  # noqa: PLC0415

    relative = f"{POPULATION_DIR}/player{player}.npz"
    raw = files.read(relative)  # checked against the manifest; what follows parses exactly these bytes
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            policies, origins = data["policies"], data["origins"]
            # Runs written before population files said which members have parameters: those listed.
            has = data["has_parameters"] if "has_parameters" in data.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise RunIntegrityError(f"{files.path / relative} cannot be read ({type(exc).__name__}: {exc}); the file "
                                "is damaged") from None
    shapes_fit = origins.shape == policies.shape[:1] and (has is None or has.shape == policies.shape[:1])
    if policies.ndim < 2 or not shapes_fit or not np.isfinite(policies).all():
        raise RunIntegrityError(f"{files.path / relative} does not hold a population (policies of shape "
                                f"{policies.shape}, {origins.shape[0] if origins.ndim else 0} origins)")
    members = []
    for k, (policy, origin) in enumerate(zip(policies, origins)):
        parameters_file = f"{POPULATION_DIR}/player{player}_member{k:03d}.safetensors"
        parameters = None
        listed = parameters_file in files.manifest.files
        if has is not None and bool(has[k]) != listed:
            raise RunIntegrityError(f"{files.path / relative} says member {k} has {'' if has[k] else 'no '}network "
                                    f"parameters; {MANIFEST_FILE} {'lists no' if has[k] else 'lists'} {parameters_file}: "
                                    "the files do not belong together")
        if listed:
            from safetensors.torch import load  # noqa: PLC0415 (parameters only: they are PyTorch's)

            raw = files.read(parameters_file)
            try:
                parameters = load(raw)
            except (ValueError, KeyError, SafetensorError) as exc:
                raise RunIntegrityError(f"{files.path / parameters_file} cannot be read ({exc}); the file is "
                                        "damaged") from None
        members.append(Member(policy=np.asarray(policy, dtype=np.float64), parameters=parameters, origin=str(origin)))
    return members


def load_population_policies(run_dir: Path | str, player: int) -> np.ndarray:
    """Tabular policies ``[K, I, A]`` of ``player``'s final population (checked against the manifest)."""
    run = load_run(run_dir)
    if not run.finished:
        raise RunDirectoryError(f"{run.path / POPULATION_DIR} does not exist; the run has not finished")
    return run.policies(player)


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """Exact values of run A's final mixture against run B's, in both seats (A's payoffs)."""

    #: A's value playing player 0 against B's player-1 mixture.
    a_as_player0: float
    #: A's value playing player 1 against B's player-0 mixture.
    a_as_player1: float
    #: The players' payoffs sum to this (0 for zero-sum games).
    utility_sum: float = 0.0

    @property
    def a_mean(self) -> float:
        """A's value with the seats drawn uniformly."""
        return (self.a_as_player0 + self.a_as_player1) / 2

    @property
    def b_mean(self) -> float:
        """B's value with the seats drawn uniformly."""
        return self.utility_sum - self.a_mean


def match_runs(a: SavedRun | Path | str, b: SavedRun | Path | str) -> MatchResult:
    """Play ``a``'s final meta-strategy mixtures against ``b``'s, both seats, exactly.

    Both runs must have played the same game. The values are expected payoffs of "draw a
    member from each side's meta-strategy, then play", computed by the engine.
    """
    a = a if isinstance(a, SavedRun) else load_run(a)
    b = b if isinstance(b, SavedRun) else load_run(b)
    if a.game_string != b.game_string:
        raise RunDirectoryError(f"the runs played different games: {a.path} {a.game_string}, {b.path} {b.game_string}")
    space = a.space()
    sigma_a, sigma_b = a.meta_strategies(), b.meta_strategies()
    a_first = float(sigma_a[0] @ _meta_game(space, a.populations[0], b.populations[1]).matrix @ sigma_b[1])
    b_first = float(sigma_b[0] @ _meta_game(space, b.populations[0], a.populations[1]).matrix @ sigma_a[1])
    utility_sum = float(space.utility_sum)
    return MatchResult(a_as_player0=a_first, a_as_player1=utility_sum - b_first, utility_sum=utility_sum)


#: Files :func:`export_meta_game` writes.
EXPORT_FILES = ("meta_game.csv", "meta_strategies.csv", "meta_game.json")


def export_meta_game(run: SavedRun | Path | str, out: Path | str, *, overwrite: bool = False) -> list[Path]:
    """Write a run's final meta-game and its meta-strategies of every iteration to ``out``.

    * ``meta_game.csv``: the payoff matrix between the final populations (player 0's
      payoffs; a row per player-0 member, a column per player-1 member, with headers);
    * ``meta_strategies.csv``: one row per iteration, player and member: its weight;
    * ``meta_game.json``: all of it, with each member's origin and the population sizes.

    Existing files are replaced only with ``overwrite``. Returns the paths written.
    """
    run = run if isinstance(run, SavedRun) else load_run(run)
    out = Path(out)
    paths = [out / name for name in EXPORT_FILES]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise RunDirectoryError(f"{', '.join(existing)} exist; pass --overwrite to replace them")
    matrix = run.meta_game()
    make_directory(out)
    try:
        with open(paths[0], "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["player0", *(f"player1 member{j}" for j in range(matrix.shape[1]))])
            writer.writerows([f"member{i}", *map(repr, map(float, row))] for i, row in enumerate(matrix))
        with open(paths[1], "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["iteration", "player", "member", "weight"])
            for record in run.records:
                for player, weights in enumerate(record.meta_strategies):
                    writer.writerows([record.iteration, player, k, repr(float(w))] for k, w in enumerate(weights))
        write_json_atomic(paths[2], {
            "run": str(run.path), "game": run.game_string, "iterations": run.iterations, "finished": run.finished,
            "matrix": matrix.tolist(), "matrix_payoffs_of": "player 0",
            "members": [[m.origin for m in run.populations[p]] for p in range(2)],
            "meta_strategies": [{"iteration": r.iteration, "population_sizes": r.population_sizes,
                                 "weights": r.meta_strategies} for r in run.records],
        })
    except OSError as exc:
        raise RunDirectoryError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return paths


__all__ = ["EXPORT_FILES", "MatchResult", "SavedRun", "export_meta_game", "load_population_policies", "load_run",
           "match_runs", "trap_summary"]
