"""Sweeps: a grid of PSRO runs (games x variants x inits x seeds ...) as Ray tasks.

A sweep config is a TOML file::

    [sweep]
    out = "runs/leduc-init"        # each cell is a run directory below this
    workers = 2                     # local Ray: parallel cells (default: CPU count)
    plugins = ["my_oracle.py"]      # modules that register components the cells name
                                    # (paths relative to the config file)

    [grid]                          # every combination of these lists is one cell
    init = ["normal", "fusion", "inherit"]
    seed = [0, 1, 2, 3, 4]

    [settings]                      # the same for every cell
    game = "leduc_poker"
    oracle = "dqn"
    iterations = 15
    episodes = 6000

An optional ``[protocol]`` section fixes the study before its runs: the arms, the seeds, the
primary endpoint, the comparisons and the equivalence margin
(:mod:`fusion_psro.experiments.protocol`). It must fit the grid (every arm runs every
protocol seed once), and the sweep records it, with its hash, in ``<out>/protocol.json``
before the first run is written; once runs exist, a changed protocol is refused. The
``[quick]`` scale checks the protocol's form only and records nothing: it is no study.

Settings that go together (an init and its options) form an *arm*: a ``[grid]`` key
``arm`` lists inline tables of settings, each with an optional ``name`` (the run names
start with it), and every arm is combined with the other grid lists::

    [grid]
    arm = [{name = "normal", init = "normal"},
           {name = "uniform", init = "fusion", init_options = {weights = "uniform"}}]
    seed = [0, 1, 2]

An optional ``[quick]`` table gives replacement values (for grid or settings keys) for a
small scale, selected with ``fusion-psro sweep CONFIG --quick``. Keys of ``[grid]``,
``[settings]`` and ``[quick]`` are the fields of
:class:`fusion_psro.psro.PSROConfig` (``oracle_options`` as an inline table). A grid over
variants shares its ``variant_options`` table: each cell takes the entries its variant has
(a key that no cell's variant has is an error); the old flat names of variant settings
(``pipeline_learners``, ...) are taken the same way. Every cell
is an ordinary run directory named after its grid values, so a finished cell is skipped
when the sweep runs again, and a killed one is resumed from its checkpoint, not restarted.

Without ``--address`` a local Ray is started in-process with ``workers`` CPUs (one worker:
the cells run in this process, without Ray); with ``--address HOST:PORT`` the sweep joins
an existing Ray cluster (whose nodes must have fusion-psro installed) after checking,
within seconds, that the address answers (:mod:`fusion_psro.experiments.parallel`).

Batched sweeps (``[sweep] executor = "batched"``, or ``fusion-psro sweep --batched``): the
unfinished cells that share the game, the oracle and its settings and the iteration count
(:data:`~fusion_psro.experiments.batched.SHARED`) advance in lockstep in one process, their
best responses trained together (:mod:`fusion_psro.experiments.batched`). Each such group
is split into at most ``workers`` batches of near-equal size (in the order cells start);
one batch runs in this process, several as Ray tasks of one CPU each. ``[sweep] device``
(``"auto"``, ``"cpu"``, ``"cuda"``) is where the batched training runs. Every cell is still
an ordinary run directory (it resumes alone, or in the next batched sweep).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import re
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

from fusion_psro.errors import ConfigError, FusionPSROError
from fusion_psro.experiments.protocol import Protocol, ProtocolError, check_cells, parse_protocol, record_protocol
from fusion_psro.psro.config import LEGACY_VARIANT_SETTINGS, PSROConfig

log = logging.getLogger(__name__)

_SECTIONS = {"sweep", "grid", "settings", "quick", "protocol"}
_SWEEP_KEYS = {"out", "workers", "plugins", "executor", "device"}
#: Values of ``[sweep] executor``: each cell a run of its own, or cells batched (module docstring).
EXECUTORS = ("single", "batched")
#: Keys of [grid], [settings] and [quick]: the PSROConfig fields, and the old names of variant settings.
_CONFIG_FIELDS = {field.name for field in dataclasses.fields(PSROConfig)} | set(LEGACY_VARIANT_SETTINGS)


class SweepConfigError(FusionPSROError, ValueError):
    """A sweep config with unknown keys, bad values, or cells that would not run."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the sweep."""

    name: str
    config: PSROConfig
    out: Path


@dataclasses.dataclass(frozen=True)
class Sweep:
    out: Path
    workers: int
    cells: tuple[Cell, ...]
    #: What every worker loads before running a cell (see :func:`fusion_psro.registry.plugin_sources`).
    plugins: tuple[str, ...] = ()
    #: The ``[protocol]`` to record before the first run (None: none, or the quick scale).
    protocol: Protocol | None = None
    #: The config file the sweep was read from.
    config: Path | None = None
    #: ``"single"`` (each cell a run of its own) or ``"batched"`` (:mod:`fusion_psro.experiments.batched`).
    executor: str = "single"
    #: Where a batched sweep trains (``"auto"``, ``"cpu"``, ``"cuda"``); None: the oracle's setting.
    device: str | None = None


def _cell_name(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        text = re.sub(r"[^A-Za-z0-9.]+", "_", str(value)).strip("_")
        parts.append(f"seed{text}" if key == "seed" else text if key in ("game", "variant", "init", "arm") else f"{key}{text}")
    return "-".join(parts) or "run"


def load_sweep(path: Path | str, *, quick: bool = False, batched: bool = False) -> Sweep:
    """Read and validate a sweep config; every cell's settings are checked before anything runs.

    With ``quick``, the values of the config's ``[quick]`` table replace those of the same
    key in ``[grid]`` or ``[settings]`` (a scale that finishes in minutes), and the runs go
    to ``<out>-quick``. ``batched`` (``fusion-psro sweep --batched``) makes the sweep's
    executor ``"batched"`` before its settings are checked (so ``[sweep] device`` applies).
    """
    path = Path(path)
    if path.is_dir():
        raise SweepConfigError(f"{path} is a directory; sweep takes a config file (TOML), e.g. configs/main.toml")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SweepConfigError(f"sweep config {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepConfigError(f"cannot read sweep config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepConfigError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise SweepConfigError(f"{path}: unknown section(s) {unknown}; accepted: [sweep], [grid], [settings], [quick], "
                               "[protocol]")
    for section in ("sweep", "grid", "settings", "quick", "protocol"):
        if not isinstance(data.get(section, {}), dict):
            raise SweepConfigError(f"{path}: [{section}] must be a table, got {data[section]!r}")
    sweep_section = data.get("sweep", {})
    bad = sorted(set(sweep_section) - _SWEEP_KEYS)
    if bad:
        raise SweepConfigError(f"{path}: unknown key(s) {bad} in [sweep]; accepted: {sorted(_SWEEP_KEYS)}")
    if not data.get("grid") and not data.get("settings"):
        raise SweepConfigError(f"{path} has no [grid] or [settings] values: nothing to run. A sweep needs at least "
                               "one, e.g. [grid] seed = [0, 1] and [settings] game = \"kuhn_poker\"")
    grid, settings = dict(data.get("grid", {})), dict(data.get("settings", {}))
    for section, table in (("grid", grid), ("settings", settings), ("quick", data.get("quick", {}))):
        bad = sorted(set(table) - _CONFIG_FIELDS - ({"arm"} if section != "settings" else set()))
        if bad:
            raise SweepConfigError(
                f"{path}: unknown key(s) {bad} in [{section}]; accepted: {', '.join(sorted(_CONFIG_FIELDS))}"
            )
    both = sorted(set(grid) & set(settings))
    if both:
        raise SweepConfigError(f"{path}: {both} appear in both [grid] and [settings]; put each in one place")
    if quick:
        if "quick" not in data:
            raise SweepConfigError(f"{path} has no [quick] table, so it has no quick scale")
        for key, value in data["quick"].items():
            (grid if key in grid else settings)[key] = value
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepConfigError(f"{path}: [grid] {key} must be a non-empty list, got {values!r}")
    out = sweep_section.get("out", str(Path("runs") / path.with_suffix("").name))
    if not isinstance(out, str) or not out.strip():
        raise SweepConfigError(f"{path}: [sweep] out must be a directory path (a string), got {out!r}")
    out = Path(out)
    if quick:
        out = out.with_name(out.name + "-quick")
    if not out.is_absolute():
        out = (Path.cwd() / out).resolve()
    _check_out(path, out)
    workers = sweep_section.get("workers", os.cpu_count() or 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise SweepConfigError(f"{path}: [sweep] workers must be a positive integer, got {workers!r}")
    _load_plugins(path, sweep_section.get("plugins", []))

    arms = _arms(path, grid.get("arm"), settings)
    if arms:
        grid["arm"] = list(arms)
    cells = _grid_cells(path, grid, settings, arms, out)
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise SweepConfigError(f"{path}: grid values give duplicate run names; make the values distinct")
    _check_cells(path, cells, set(grid) - {"arm"} | set(settings) | {k for arm in arms.values() for k in arm} - {"name"})
    protocol = _protocol(path, data, cells, quick)
    executor, device = _executor_settings(path, sweep_section, cells, batched, workers)
    return Sweep(out=out, workers=workers, cells=tuple(cells), plugins=tuple(_cell_plugins(cells)),
                 protocol=protocol, config=path, executor=executor, device=device)


def select_seeds(sweep: Sweep, seeds: list[int]) -> Sweep:
    """``sweep`` with only the cells of ``seeds``: a study run in parts, one machine a part.

    The protocol is checked against the whole grid before this selection (every part records
    and checks the same protocol), and the cells keep their directories, so parts run on several
    machines into copies of ``out`` merge by copying their run directories together.
    """
    wanted, grid_seeds = set(seeds), sorted({cell.config.seed for cell in sweep.cells})
    missing = sorted(wanted - set(grid_seeds))
    if missing:
        raise SweepConfigError(f"{sweep.config}: --seeds names seed(s) {_seed_ranges(missing)} that the grid does not "
                               f"run; its seeds are {_seed_ranges(grid_seeds)}")
    return dataclasses.replace(sweep, cells=tuple(cell for cell in sweep.cells if cell.config.seed in wanted))


def parse_seeds(text: str) -> list[int]:
    """The seeds of ``--seeds``: comma-separated integers and inclusive ranges, e.g. ``15-29`` or ``0,3,5-7``."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None or (match[2] is not None and int(match[2]) < int(match[1])):
            raise SweepConfigError(f"--seeds takes comma-separated seeds and ranges (e.g. 15-29 or 0,3,5-7), got {text!r}")
        seeds.extend(range(int(match[1]), int(match[2] or match[1]) + 1))
    return sorted(set(seeds))


def _seed_ranges(seeds: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0-2, 5``."""
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _executor_settings(path: Path, section: dict[str, Any], cells: list[Cell],
                       batched: bool = False, workers: int = 1) -> tuple[str, str | None]:
    """``[sweep] executor`` (``"batched"`` with ``batched``) and ``device``, checked (a device only
    with ``"batched"``, ``"cuda"`` only with one worker, and only one this machine has, for oracles
    that train batched)."""
    from fusion_psro.experiments.batched import BatchError, check_device  # noqa: PLC0415

    executor, device = section.get("executor", "single"), section.get("device")
    if executor not in EXECUTORS:
        raise SweepConfigError(f"{path}: [sweep] executor must be \"single\" (each cell a run of its own) or "
                               f"\"batched\" (cells that share game, oracle and iterations advance together); got "
                               f"{executor!r}")
    if batched:
        executor = "batched"
    if device is not None and executor != "batched":
        raise SweepConfigError(f"{path}: [sweep] device applies to executor = \"batched\"; add that, or leave device out")
    if device == "cuda" and workers > 1:
        raise SweepConfigError(f"{path}: [sweep] device = \"cuda\" needs workers = 1 (with more, batches run as "
                               "Ray tasks, which see no GPU); set workers = 1")
    try:
        for oracle in sorted({cell.config.oracle for cell in cells}):
            check_device(device, oracle)
    except BatchError as exc:
        raise SweepConfigError(f"{path}: [sweep] {exc}") from None
    return executor, device


def _protocol(path: Path, data: dict[str, Any], cells: list[Cell], quick: bool) -> Protocol | None:
    """The config's validated ``[protocol]`` (checked against the cells), None at the quick scale."""
    if "protocol" not in data:
        return None
    try:
        protocol = parse_protocol(data["protocol"])
        if quick:
            return None
        check_cells(protocol, [(cell.name, cell.config.to_json()) for cell in cells])
    except ProtocolError as exc:
        raise SweepConfigError(f"{path}: {exc}") from None
    return protocol


def _grid_cells(path: Path, grid: dict[str, list], settings: dict[str, Any], arms: dict[str, dict[str, Any]],
                out: Path) -> list[Cell]:
    """One cell per combination of the ``grid`` values (an arm's settings merged in), with the
    ``settings``; each cell's settings checked."""
    cells = []
    keys = list(grid)
    used: set[str] = set()
    for combination in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combination))
        arm = arms[values.pop("arm")] if "arm" in values else {}
        options = _variant_settings_of_cell({**settings, **{k: v for k, v in arm.items() if k != "name"}, **values},
                                            used)
        if arm:
            values = {"arm": arm["name"], **values}
        if isinstance(options.get("oracle_options"), dict):
            options["oracle_options"] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in options["oracle_options"].items()
            }
        name = _cell_name(values)
        try:
            config = PSROConfig(**options).resolved()
        except (ConfigError, TypeError) as exc:
            raise SweepConfigError(f"{path}: cell {name} ({values}): {exc}") from None
        cells.append(Cell(name=name, config=config, out=out / name))
    _check_variant_settings_used(path, {**grid, **settings}, used)
    return cells


def _check_out(path: Path, out: Path) -> None:
    """Refuse an ``out`` that cannot hold the cells' directories: a file, a device, a name too long."""
    from fusion_psro.files import check_output_path  # noqa: PLC0415

    try:
        check_output_path(out)
    except FusionPSROError as exc:
        raise SweepConfigError(f"{path}: [sweep] out: {exc}") from None
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise SweepConfigError(f"{path}: [sweep] out {out}: {blocker} is a file, not a directory; the cells' run "
                               "directories go below out")


def _variant_settings_of_cell(options: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """``options`` with the variant settings (``variant_options`` entries, and the old flat names such
    as ``pipeline_learners``) that the cell's variant does not have left out; those it has are
    added to ``used`` (by name as given). A grid over variants shares one ``[settings]`` table."""
    from fusion_psro.registry import VARIANTS  # noqa: PLC0415

    name = options.get("variant", PSROConfig().variant)
    if not isinstance(name, str) or name not in VARIANTS:
        return options  # refused by the config check, naming what is accepted
    variant = VARIANTS.get(name)
    accepted = {f.name for f in dataclasses.fields(variant.settings_class)} if variant.settings_class else set()
    kept = dict(options)
    if isinstance(options.get("variant_options"), dict):
        kept["variant_options"] = {k: v for k, v in options["variant_options"].items() if k in accepted}
        used.update(f"variant_options.{k}" for k in kept["variant_options"])
    for old in LEGACY_VARIANT_SETTINGS:
        if old in kept and old not in variant.legacy_settings:
            del kept[old]
        elif old in kept:
            used.add(old)
    return kept


def _check_variant_settings_used(path: Path, given: dict[str, Any], used: set[str]) -> None:
    options = given.get("variant_options")
    names = [f"variant_options.{k}" for k in options] if isinstance(options, dict) else []
    unused = [n for n in names + [old for old in LEGACY_VARIANT_SETTINGS if old in given] if n not in used]
    if unused:
        raise SweepConfigError(f"{path}: {unused[0]} is a setting of none of the cells' variants. Leave it out")


def _arms(path: Path, arms: Any, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``[grid] arm`` tables by name (a table without ``name`` is named after its values)."""
    if arms is None:
        return {}
    named = {}
    for arm in arms:
        if not isinstance(arm, dict) or not arm:
            raise SweepConfigError(f"{path}: [grid] arm must list inline tables of settings, got {arm!r}")
        bad = sorted(set(arm) - _CONFIG_FIELDS - {"name"})
        if bad:
            raise SweepConfigError(f"{path}: unknown key(s) {bad} in arm {arm}; accepted: name, "
                                   f"{', '.join(sorted(_CONFIG_FIELDS))}")
        both = sorted(set(arm) & set(settings))
        if both:
            raise SweepConfigError(f"{path}: {both} appear in both arm {arm} and [settings]; put each in one place")
        name = str(arm.get("name") or _cell_name({k: v for k, v in arm.items()}))
        if name in named:
            raise SweepConfigError(f"{path}: two arms are named {name!r}; give each a distinct name")
        named[name] = {**arm, "name": name}
    return named


def _check_cells(path: Path, cells: list[Cell], given: set[str]) -> None:
    """Refuse, before anything runs, a cell whose game or oracle settings would fail, and a
    setting that no cell uses."""
    from fusion_psro.experiments.runner import unused_settings  # noqa: PLC0415
    from fusion_psro.psro.loop import make_oracle  # noqa: PLC0415
    from fusion_psro.psro.spaces import make_space  # noqa: PLC0415

    checked: set[str] = set()
    unused: dict[str, str] | None = None
    for cell in cells:
        config = cell.config
        key = json.dumps([config.game, config.evaluation, config.oracle, config.episodes, config.oracle_options], sort_keys=True,
                         default=str)
        if key not in checked:
            try:
                make_oracle(config, make_space(config))  # loads the game (compiled games are cached)
            except FusionPSROError as exc:
                raise SweepConfigError(f"{path}: cell {cell.name}: {exc}") from None
            checked.add(key)
        reasons = unused_settings(config, given)
        unused = reasons if unused is None else {k: v for k, v in unused.items() if k in reasons}
    if unused:
        name, why = next(iter(unused.items()))
        raise SweepConfigError(f"{path}: {name} applies to none of the cells: {why}. Leave it out")


def _load_plugins(path: Path, plugins: Any) -> None:
    from fusion_psro.registry import load_plugin

    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise SweepConfigError(f"{path}: [sweep] plugins must be a list of module names or .py paths, got {plugins!r}")
    for plugin in plugins:
        try:
            load_plugin(str(path.parent / plugin) if plugin.endswith(".py") else plugin)
        except ConfigError as exc:
            raise SweepConfigError(f"{path}: {exc}") from None


def _cell_plugins(cells: list[Cell]) -> list[str]:
    """Plug-ins a worker needs: the loaded ones and the files of non-built-in components the cells name."""
    from fusion_psro.registry import INITS, META_SOLVERS, ORACLES, VARIANTS, plugin_sources

    components = []
    for cell in cells:
        config = cell.config
        components += [ORACLES.get(config.oracle), VARIANTS.get(config.variant), META_SOLVERS.get(config.meta_solver)]
        components += [INITS.get(name) for name in (config.init, config.fusion_fallback) if name is not None]
    return plugin_sources(components)


def run_cell(config: PSROConfig, out: str, plugins: tuple[str, ...] = (), executor=None) -> dict[str, Any]:
    """Run, resume, or skip one cell; returns its last metrics row and what was done.

    ``plugins`` are loaded first (a Ray worker is a fresh process that knows only the
    built-in components). ``executor``: where the run's best responses go (a run of a
    batch, :mod:`fusion_psro.experiments.batched`); default: this process.
    """
    from fusion_psro.experiments.checkpoint import CHECKPOINT_DIR
    from fusion_psro.experiments.rundir import CONFIG_FILE, RunDirectoryError, read_metrics
    from fusion_psro.experiments.runner import finished_run_metrics, resume_psro, run_psro, same_settings
    from fusion_psro.registry import load_plugin

    for plugin in plugins:
        load_plugin(plugin)
    out_path = Path(out)
    finished = finished_run_metrics(out_path, config)
    if finished is not None:
        return {"action": "skipped (finished)", "last": finished[-1].to_json()}
    if any((out_path / CHECKPOINT_DIR).glob("iteration-*.npz")):
        recorded = json.loads((out_path / CONFIG_FILE).read_text()).get("psro")
        if same_settings(recorded, config):
            rows = resume_psro(out_path, progress=False, executor=executor)
            return {"action": "resumed", "last": rows[-1].to_json()}
        if isinstance(recorded, dict) and same_settings({**recorded, "iterations": config.iterations}, config):
            done = len(read_metrics(out_path))
            state = "finished" if done == recorded.get("iterations") else "stopped"
            if done > config.iterations:
                raise RunDirectoryError(
                    f"{out_path} holds this cell {state} at {done} iterations, more than this sweep's "
                    f"{config.iterations}; nothing was changed. Give iterations = {done} or more, or move the run away"
                )
            rows = resume_psro(out_path, iterations=config.iterations, progress=False, executor=executor)
            return {"action": f"{state} at {done} iterations; extended to {config.iterations}",
                    "last": rows[-1].to_json()}
        raise RunDirectoryError(
            f"{out_path} holds a run with other settings than this sweep's cell (more than its iterations); "
            "nothing was changed. Move it away, or restore the sweep config that made it"
        )
    rows = run_psro(config, out_path, progress=False, executor=executor)
    return {"action": "ran", "last": rows[-1].to_json()}


def _record_protocol(sweep: Sweep) -> None:
    """Record the sweep's protocol before its first run, or refuse one changed after it."""
    from fusion_psro.experiments.rundir import METRICS_FILE  # noqa: PLC0415

    written = [cell.name for cell in sweep.cells
               if (cell.out / METRICS_FILE).is_file() and (cell.out / METRICS_FILE).stat().st_size > 0]
    try:
        record_protocol(sweep.out, sweep.protocol, sweep.config or Path("?"), written)
    except ProtocolError as exc:
        raise SweepConfigError(str(exc)) from None


def run_cells_batched(cells: list[tuple[PSROConfig, str]], plugins: tuple[str, ...] = (),
                      device: str | None = None) -> list:
    """Run, resume or skip ``cells`` (``(config, out)``) as one batch (:func:`run_cell` each, in lockstep:
    :func:`~fusion_psro.experiments.batched.run_batch`); one :class:`~fusion_psro.experiments.parallel.TaskOutcome`
    per cell."""
    from fusion_psro.experiments.batched import run_batch  # noqa: PLC0415
    from fusion_psro.registry import load_plugin  # noqa: PLC0415

    for plugin in plugins:
        load_plugin(plugin)
    return run_batch([config for config, _ in cells], [out for _, out in cells], device=device, cell=run_cell,
                     arguments=[(config, out) for config, out in cells])


def _run_batched(sweep: Sweep, todo: list[int], address: str | None, bar: SweepProgress) -> list:
    """The outcomes of the cells ``todo`` run in batches (module docstring), in ``todo``'s order."""
    from fusion_psro.experiments.batched import plan_batches  # noqa: PLC0415
    from fusion_psro.experiments.parallel import TaskOutcome, run_tasks  # noqa: PLC0415

    batches = plan_batches([cell.config for cell in sweep.cells], todo, sweep.workers)
    outcomes: dict[int, Any] = {}

    def finished(k: int, outcome) -> None:
        per_cell = [TaskOutcome(error=outcome.error)] * len(batches[k]) if outcome.failed else outcome.result
        for index, cell_outcome in zip(batches[k], per_cell):
            outcomes[index] = cell_outcome
            bar.cell_done(index, cell_outcome)

    arguments = [([(sweep.cells[i].config, str(sweep.cells[i].out)) for i in batch], sweep.plugins, sweep.device)
                 for batch in batches]
    log.info("running %d cells in %d batch(es)", len(todo), len(batches))
    if sweep.device != "cpu" and (address is not None or min(sweep.workers, len(batches)) > 1):
        log.warning("the batches run as Ray tasks, which see no GPU: they train on the CPU")
    run_tasks(run_cells_batched, arguments, workers=min(sweep.workers, max(len(batches), 1)), address=address,
              progress=False, on_finish=finished)
    return [outcomes[index] for index in todo]


def run_sweep(sweep: Sweep, *, address: str | None = None, progress: bool = True,
              batched: bool | None = None) -> list[dict[str, Any]]:
    """Run every cell of ``sweep`` as a Ray task; returns one result per cell, in grid order.

    ``batched`` (default: the sweep's ``executor`` says) runs the cells in batches instead
    (module docstring; :mod:`fusion_psro.experiments.batched`).

    Cells start seed by seed (:func:`seed_major`), so a sweep stopped part way holds paired seeds.

    Finished cells are skipped before Ray starts (a sweep whose cells are all finished
    starts no Ray at all); unfinished ones are resumed from their checkpoints. A cell that
    fails is reported with its error; the others go on. The sweep holds ``out/sweep.lock``
    while it runs, so a second sweep into the same directory is refused at once. The
    progress bar counts iterations over all cells (an ETA follows) and names each cell as it ends.
    """
    from fusion_psro.experiments.parallel import run_tasks
    from fusion_psro.experiments.rundir import RunLock, make_directory
    from fusion_psro.experiments.runner import finished_run_metrics

    if batched is None:
        batched = sweep.executor == "batched"
    if batched and address is not None and sweep.device == "cuda":
        raise SweepConfigError(f"{sweep.config}: [sweep] device = \"cuda\" cannot run with --address (batches run "
                               "as Ray tasks, which see no GPU); run it without --address")
    make_directory(sweep.out)
    with RunLock(sweep.out, SWEEP_LOCK):
        results: list[dict[str, Any] | None] = [None] * len(sweep.cells)
        todo = []
        for index, cell in enumerate(sweep.cells):
            finished = finished_run_metrics(cell.out, cell.config)
            if finished is None:
                todo.append(index)
            else:
                results[index] = {"cell": cell.name, "out": str(cell.out), "action": "skipped (finished)",
                                  "last": finished[-1].to_json()}
        todo = seed_major(sweep.cells, todo)
        log.info("%d of %d cells finished already; running %d", len(sweep.cells) - len(todo), len(sweep.cells),
                 len(todo))
        if sweep.protocol is not None:
            _record_protocol(sweep)
        with SweepProgress(sweep, todo, enabled=progress) as bar:
            try:
                if batched:
                    outcomes = _run_batched(sweep, todo, address, bar)
                else:
                    outcomes = run_tasks(
                        run_cell, [(sweep.cells[i].config, str(sweep.cells[i].out), sweep.plugins) for i in todo],
                        workers=sweep.workers, address=address, progress=False,
                        on_finish=lambda k, outcome: bar.cell_done(todo[k], outcome),
                    )
            except ConfigError as exc:
                raise SweepConfigError(str(exc)) from None
    for index, outcome in zip(todo, outcomes):
        cell = sweep.cells[index]
        if outcome.failed:
            results[index] = {"cell": cell.name, "out": str(cell.out), "action": "failed", "error": outcome.error}
        else:
            results[index] = {"cell": cell.name, "out": str(cell.out), **outcome.result}
        if outcome.warning is not None:  # a batched cell whose batched oracle call failed
            results[index]["warning"] = outcome.warning
    failures = [r for r in results if r["action"] == "failed"]
    if failures:
        log.error("%d of %d cells failed; the others' results are kept", len(failures), len(sweep.cells))
    return [r for r in results if r is not None]


def seed_major(cells: list[Cell], indices: list[int]) -> list[int]:
    """``indices`` in the order the sweep starts them: by seed, then grid order.

    Every arm of seed 0 starts before any cell of seed 1, so a sweep stopped part way (a study
    run in resumable parts) holds complete paired seeds, not some arms' seeds and none of others'.
    """
    return sorted(indices, key=lambda i: (cells[i].config.seed, i))


#: The file a running sweep holds in its ``out`` directory (see :class:`~fusion_psro.experiments.rundir.RunLock`).
SWEEP_LOCK = "sweep.lock"


def recorded_iterations(run_dir: Path) -> int:
    """Metrics rows ``run_dir`` holds now (0 when it has none); cheap enough to poll."""
    try:
        return (run_dir / "metrics.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


class SweepProgress:
    """The sweep's progress bar: iterations recorded over iterations planned, across all cells.

    A thread reads the cells' metrics files every :attr:`INTERVAL` seconds (cells run in
    other processes), so the bar and its ETA move with every iteration, not every cell;
    :meth:`cell_done` names each cell as it ends.
    """

    INTERVAL = 1.0

    def __init__(self, sweep: Sweep, todo: list[int], *, enabled: bool):
        from tqdm.auto import tqdm  # noqa: PLC0415

        self.cells, self.todo = sweep.cells, list(todo)
        self.ended, self.ended_cells = 0, set()
        planned = sum(cell.config.iterations for cell in self.cells)
        done = planned - sum(self._left(i) for i in todo)
        self.bar = tqdm(total=planned, initial=done, desc=f"sweep ({len(todo)} of {len(self.cells)} cells to run)",
                        unit="it", disable=not enabled, dynamic_ncols=True)
        self.enabled = enabled and bool(todo)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True, name="sweep-progress")

    def __enter__(self) -> SweepProgress:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.bar.close()

    def _left(self, index: int) -> int:
        """Iterations cell ``index`` has still to run (none once it ended: its metrics may be on a
        cluster node this process cannot read)."""
        planned = self.cells[index].config.iterations
        if index in self.ended_cells:
            return 0
        return planned - min(recorded_iterations(self.cells[index].out), planned)

    def _poll(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self.refresh()

    def refresh(self) -> None:
        """Move the bar to the iterations the cells have recorded so far."""
        with self._lock:
            now = self.bar.total - sum(self._left(i) for i in self.todo)
            if now > self.bar.n:
                self.bar.update(now - self.bar.n)

    def cell_done(self, index: int, outcome) -> None:
        """Name the cell that ended, with its seed, init and result, above the bar."""
        cell = self.cells[index]
        self.ended += 1
        if not outcome.failed:
            self.ended_cells.add(index)
        what = (f"failed: {outcome.error}" if outcome.failed else
                f"{outcome.result['action']}, exploitability {outcome.result['last']['exploitability']:.4f}")
        init = f", init {cell.config.init}" if cell.config.init else ""
        if self.enabled:
            self.refresh()
            with self._lock:
                self.bar.write(f"[{self.ended}/{len(self.todo)}] {cell.name} (seed {cell.config.seed}{init}): {what}",
                               file=sys.stderr)
