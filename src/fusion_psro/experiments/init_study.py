"""The initialization study: does a best response start better from Nash Policy Fusion?

Fusion-PSRO's claim is about one step of PSRO: for the same training budget, a best
response that starts from the meta-Nash-weighted average of the population's parameters is
better than one that starts elsewhere. The study measures that step exactly and paired.
For each recorded run and chosen iteration ``k`` it rebuilds the PSRO state after ``k``
(the populations and the meta-strategies, from the saved members and ``metrics.jsonl``),
and for each player trains one best response from each initialization against the
opponent's meta-strategy mixture, as iteration ``k + 1`` would, ``repeats`` times. The
initializations of a repeat share their random numbers: the training seed depends on the
run, the iteration, the player and the repeat, not on the initialization, so exploration
and minibatch draws coincide as long as the trajectories do.

At every budget (and before training, budget 0) a cell records, exactly: the value of the
response's policy against the opponent mixture, the best-response value, their gap (>= 0),
the training return (the oracle's ``training_return``: the DQN's mean return of its last
1,000 episodes) and the oracle's diagnostics of the network (the DQN's dead-ReLU fraction
per hidden layer, parameter norm, mean gap between the best and worst legal Q-value).

Study directory::

    study.json                                   budgets and seed (a rerun must match them)
    cells/<run>-<hash>/i005-p0-fusion-r1.json    one cell: a response's measurements at each budget

Each cell is written atomically when it finishes, so a killed study loses at most the
cells in progress and a rerun skips the finished ones. Cells run as Ray tasks
(:mod:`fusion_psro.experiments.parallel`); ``shard=(k, n)`` runs every n-th cell from the
k-th, to split a study between machines without a cluster. The report is
:mod:`fusion_psro.experiments.init_study_report`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.errors import ConfigError, FusionPSROError
from fusion_psro.experiments.results import SavedRun, load_run
from fusion_psro.experiments.rundir import RunDirectoryError
from fusion_psro.files import write_json_atomic

STUDY_FILE = "study.json"
CELLS_DIR = "cells"
#: Iterations studied when none are named: every one from this on (the first ones have tiny populations).
FIRST_ITERATION = 3


class StudyError(FusionPSROError, ValueError):
    """A study that cannot run as asked (bad settings, runs that cannot be rebuilt)."""


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What every cell of a study shares; a study directory keeps one set."""

    budgets: tuple[int, ...]
    seed: int = 0
    #: Settings of the inits by name (``--init-option``), e.g. ``{"shrink": 0.5}``; each init takes its own.
    init_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        budgets = tuple(self.budgets)
        if not budgets or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b <= 0 for b in budgets):
            raise StudyError(f"budgets must be positive integers (training episodes), got {list(budgets)}")
        object.__setattr__(self, "budgets", tuple(sorted({int(b) for b in budgets})))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise StudyError(f"seed must be a non-negative integer, got {self.seed!r}")


@dataclasses.dataclass(frozen=True)
class StudyCell:
    """One best response of the study: from ``init``, at the state after ``iteration`` of ``run``."""

    run: str
    iteration: int
    player: int
    init: str
    repeat: int

    @property
    def run_key(self) -> str:
        """The run's directory name and a digest of its path (two runs may share a name)."""
        path = Path(self.run).resolve()
        return f"{path.name}-{hashlib.sha1(str(path).encode()).hexdigest()[:6]}"

    def path(self, out: Path) -> Path:
        return Path(out) / CELLS_DIR / self.run_key / f"i{self.iteration:03d}-p{self.player}-{self.init}-r{self.repeat}.json"


def parse_iterations(text: str) -> tuple[int, ...]:
    """``"5,10,15"`` or ``"3-8,10"`` -> the iterations, sorted; a clear error otherwise."""
    found: set[int] = set()
    for part in (p.strip() for p in str(text).split(",")):
        try:
            low, _, high = part.partition("-")
            first, last = int(low), int(high or low)
        except ValueError:
            raise StudyError(f"--at takes iterations like 5,10,15 or 3-8, got {text!r}") from None
        if first < 1 or last < first:
            raise StudyError(f"--at iterations start at 1 and ranges go up (3-8), got {part!r}")
        found.update(range(first, last + 1))
    return tuple(sorted(found))


def check_init_options(inits: list[str], options: dict) -> None:
    """Every option belongs to at least one of ``inits`` and has a valid value there."""
    from fusion_psro.registry import INITS  # noqa: PLC0415

    used = set()
    for name in inits:
        init = INITS.get(name)
        init.settings(_options_for(init, options))
        used |= {f.name for f in dataclasses.fields(init.settings_class)} if init.settings_class else set()
    unknown = sorted(set(options) - used)
    if unknown:
        raise StudyError(f"--init-option {unknown} belongs to none of the inits {', '.join(inits)}")


def plan_study(run_dirs: list[Path | str], inits: list[str], *, at: tuple[int, ...] | None, repeats: int) -> list[StudyCell]:
    """Every cell of a study, after checking that each run and init can be studied (fast, before any training)."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise StudyError(f"repeats must be an integer >= 1, got {repeats!r}")
    if not run_dirs:
        raise StudyError("name at least one run directory")
    cells = []
    for run_dir in run_dirs:
        run = _study_run(str(run_dir))
        _check_run(run, inits)
        iterations = at if at is not None else tuple(range(FIRST_ITERATION, run.iterations + 1))
        if not iterations:
            raise StudyError(f"{run.path} has {run.iterations} iterations; the study starts at {FIRST_ITERATION} "
                             "unless --at names earlier ones")
        for iteration in iterations:
            _check_state(run, iteration)
        cells += [StudyCell(str(run.path), k, p, init, r) for k in iterations for p in range(2)
                  for init in inits for r in range(repeats)]
    return cells


def _check_run(run: SavedRun, inits: list[str]) -> None:
    from fusion_psro.registry import INITS, ORACLES  # noqa: PLC0415

    config = run.config.resolved()
    oracle_class = ORACLES.get(config.oracle)
    if not (oracle_class.trains_parameters and getattr(oracle_class, "takes_checkpoints", False)):
        able = ORACLES.accepted(lambda o: o.trains_parameters and getattr(o, "takes_checkpoints", False))
        raise StudyError(f"{run.path} used the {config.oracle} oracle, which trains no best response the study can "
                         f"measure along the way; accepted: runs of {able}")
    if not inits:
        raise StudyError("name at least one init")
    for init in inits:
        reason = INITS.get(init).unsupported_by(oracle_class)
        if reason is not None:
            usable = INITS.accepted(lambda i: i.unsupported_by(oracle_class) is None)
            raise StudyError(f"init {init!r} does not apply to the {config.oracle} oracle of {run.path} ({reason}); "
                             f"accepted: {usable}")


def _check_state(run: SavedRun, iteration: int) -> None:
    if not 1 <= iteration <= run.iterations:
        raise StudyError(f"{run.path} recorded iterations 1..{run.iterations}; it never reached iteration {iteration}")
    for player, members in enumerate(run.population_at(iteration)):
        missing = [k for k, m in enumerate(members) if m.parameters is None and m.origin != "initial"]
        if missing:
            raise StudyError(f"{run.path}: the parameters of player {player}'s members {missing[:5]} were not saved; "
                             "the study needs every trained member's network")


@functools.lru_cache(maxsize=8)
def _study_run(run_dir: str) -> SavedRun:
    """A run read once per process (cells of the same run share it)."""
    try:
        return load_run(run_dir)
    except RunDirectoryError as exc:
        raise StudyError(str(exc)) from None
    except ConfigError as exc:
        raise StudyError(f"{run_dir}: {exc}") from None


def prepare_study_directory(out: Path | str, settings: StudySettings) -> Path:
    """Create ``out`` or check that it holds a study with the same budgets and seed."""
    out = Path(out)
    wanted = dataclasses.asdict(settings)
    wanted["budgets"] = list(settings.budgets)
    study_file = out / STUDY_FILE
    if study_file.exists():
        try:
            recorded = json.loads(study_file.read_text())
        except (OSError, ValueError) as exc:
            raise StudyError(f"cannot read {study_file}: {exc}") from None
        if recorded != wanted:
            raise StudyError(f"{out} holds a study with {recorded}; this one has {wanted}. Choose another --out "
                             "(cells measured at other budgets or seeds cannot be pooled)")
        return out
    if out.exists() and not out.is_dir():
        raise StudyError(f"--out {out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        raise StudyError(f"--out {out} is not empty and holds no study; choose another directory")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(study_file, wanted)
    return out


def _write_json(path: Path, data: Any) -> None:
    write_json_atomic(path, data, indent=1)


def cell_seed(settings: StudySettings, cell: StudyCell) -> int:
    """The training seed of a cell: shared by every init of the same state, player and repeat."""
    key = int(hashlib.sha1(cell.run_key.encode()).hexdigest()[:8], 16)
    return int(np.random.SeedSequence([settings.seed, key, cell.iteration, cell.player, cell.repeat]).generate_state(1)[0])


def run_study_cell(cell: StudyCell, settings: StudySettings, out: str, plugins: tuple[str, ...] = ()) -> dict[str, Any]:
    """Train and measure one cell, write its file, and return its record."""
    from fusion_psro.registry import load_plugin  # noqa: PLC0415

    for plugin in plugins:
        load_plugin(plugin)
    started = time.perf_counter()
    record = _measure_cell(cell, settings)
    record["wall_s"] = time.perf_counter() - started  # rebuilding the state, training, measuring
    _write_json(cell.path(Path(out)), record)
    return record


def _measure_cell(cell: StudyCell, settings: StudySettings) -> dict[str, Any]:
    from fusion_psro.evaluation.sequence_form import best_response_to_plans, realization_plans, sequence_form  # noqa: PLC0415
    from fusion_psro.oracles.base import BestResponseRequest  # noqa: PLC0415

    run = _study_run(cell.run)
    state = _StudyState.rebuild(run, cell, settings)
    compiled, player = state.space.compiled, cell.player
    mixture = state.opponent_weights @ realization_plans(compiled, 1 - player, state.opponent_policies)
    sequence_values = np.asarray(sequence_form(compiled).matrices[player] @ mixture)
    best_value = float(best_response_to_plans(compiled, player, mixture).value)
    measurements = []

    def measure(budget: int, snapshot) -> None:
        value = float(realization_plans(compiled, player, snapshot.policy) @ sequence_values)
        measurements.append({
            "budget": budget, "episodes": int(snapshot.episodes), "value": value, "best_response_value": best_value,
            "gap": best_value - value, "training_return": _training_return(snapshot.metrics, budget),
            **state.oracle.diagnostics(player, snapshot.parameters),
        })

    choice = state.start()
    state.oracle.best_response(BestResponseRequest(
        player=player, opponent_population=state.opponent_policies, opponent_meta_strategy=state.opponent_weights,
        initial_parameters=choice.parameters, seed=state.seed, checkpoints=(0, *settings.budgets),
        on_checkpoint=measure,
    ))
    return {
        **dataclasses.asdict(cell), "run_key": cell.run_key, "game": run.config.game,
        "source": {"variant": run.config.variant, "init": run.config.init, "seed": run.config.seed},
        "seed": state.seed, "init_used": choice.strategy, "fusion_equals_inherit": state.fusion_equals_inherit(),
        "population_size": len(state.own), "measurements": measurements,
    }


def _training_return(metrics, budget: int) -> float | None:
    value = getattr(metrics, "training_return", None)
    return None if budget == 0 or value is None or not np.isfinite(value) else float(value)


@dataclasses.dataclass
class _StudyState:
    """The PSRO state a cell starts from, and the oracle that trains its response."""

    cell: StudyCell
    seed: int
    space: Any
    oracle: Any
    own: list
    own_weights: np.ndarray
    opponent_policies: np.ndarray
    opponent_weights: np.ndarray
    init_options: dict

    @classmethod
    def rebuild(cls, run: SavedRun, cell: StudyCell, settings: StudySettings) -> _StudyState:
        from fusion_psro.psro.loop import make_oracle  # noqa: PLC0415
        from fusion_psro.psro.spaces import make_space  # noqa: PLC0415
        from fusion_psro.registry import ORACLES  # noqa: PLC0415

        config = run.config.resolved()
        budget_setting = ORACLES.get(config.oracle).budget_setting
        budget = max(settings.budgets)
        if budget_setting == "episodes":
            config = dataclasses.replace(config, episodes=budget)
        else:
            config = dataclasses.replace(config, oracle_options={**config.oracle_options, budget_setting: budget})
        space = make_space(config)
        populations = run.population_at(cell.iteration)
        sigma = run.meta_strategies(cell.iteration)
        keep = sigma[1 - cell.player] > 0
        opponents = np.stack([m.policy for m in populations[1 - cell.player]])[keep]
        weights = sigma[1 - cell.player][keep] / sigma[1 - cell.player][keep].sum()
        return cls(cell, cell_seed(settings, cell), space, make_oracle(config, space), populations[cell.player],
                   sigma[cell.player], opponents, weights, settings.init_options)

    def start(self):
        """The init's choice: as iteration ``k + 1`` of the run would make it (fusion from the first iteration)."""
        from fusion_psro.psro.initialization import StartContext  # noqa: PLC0415
        from fusion_psro.registry import INITS  # noqa: PLC0415

        init = INITS.get(self.cell.init)
        return init.choose(StartContext(
            oracle=self.oracle, player=self.cell.player, iteration=self.cell.iteration + 1, seed=self.seed,
            population_parameters=[m.parameters for m in self.own], meta_strategy=self.own_weights,
            previous_parameters=self.own[-1].parameters, previous_index=len(self.own) - 1, fusion_start=1,
            fusion_fallback="normal",
            population_policies=[m.policy for m in self.own], opponent_policies=self.opponent_policies,
            opponent_weights=self.opponent_weights, settings=init.settings(_options_for(init, self.init_options)),
        ))

    def fusion_equals_inherit(self) -> bool:
        """Whether fusion starts where inherit does: the meta-Nash over members with parameters is
        pure on the latest member."""
        weights = np.array([w if m.parameters is not None else 0.0 for m, w in zip(self.own, self.own_weights)])
        return bool(weights.sum() > 0 and weights[-1] / weights.sum() >= 1.0 - 1e-12)


def _options_for(init, options: dict) -> dict:
    """The study's init options that ``init``'s settings have (one study passes options to several inits)."""
    fields = {f.name for f in dataclasses.fields(init.settings_class)} if init.settings_class else set()
    return {key: value for key, value in options.items() if key in fields}


def run_study(cells: list[StudyCell], settings: StudySettings, out: Path | str, *, workers: int,
              address: str | None = None, progress: bool = True, shard: tuple[int, int] = (0, 1)) -> dict[str, Any]:
    """Run the cells of ``shard`` not yet in ``out`` (see the module docstring); a summary of what happened."""
    from fusion_psro.experiments.parallel import run_tasks  # noqa: PLC0415
    from fusion_psro.registry import PLUGINS  # noqa: PLC0415

    index, count = shard
    if not (isinstance(count, int) and count >= 1 and isinstance(index, int) and 0 <= index < count):
        raise StudyError(f"--shard is K/N with 0 <= K < N, got {index}/{count}")
    out = prepare_study_directory(out, settings)
    mine = cells[index::count]
    todo = [cell for cell in mine if not cell.path(out).exists()]
    outcomes = run_tasks(
        run_study_cell, [(cell, settings, str(out), tuple(PLUGINS)) for cell in todo], workers=workers,
        address=address, progress=progress, desc=f"init-study ({len(todo)} of {len(mine)} cells to run)",
        describe=lambda r: f"{r['init']} gap {r['measurements'][-1]['gap']:.3f}",
    )
    failures = [f"{cell.path(out).name}: {o.error}" for cell, o in zip(todo, outcomes) if o.failed]
    return {"cells": len(mine), "skipped": len(mine) - len(todo), "ran": len(todo) - len(failures), "failed": failures}


def load_study(out: Path | str) -> list[dict[str, Any]]:
    """Every finished cell record of the study in ``out``."""
    out = Path(out)
    if not (out / STUDY_FILE).is_file():
        raise StudyError(f"{out} holds no study ({STUDY_FILE} is missing)")
    return [json.loads(path.read_text()) for path in sorted((out / CELLS_DIR).glob("*/*.json"))]


__all__ = [
    "StudyCell", "StudyError", "StudySettings", "cell_seed", "check_init_options", "load_study", "parse_iterations",
    "plan_study",
    "prepare_study_directory", "run_study", "run_study_cell",
]
