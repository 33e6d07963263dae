"""One PSRO run into a run directory, with a progress display."""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import fusion_psro
from fusion_psro import interrupts
from fusion_psro.experiments.approximate import evaluate_during_run
from fusion_psro.experiments.checkpoint import CHECKPOINT_DIR, Checkpointer, CheckpointError, restore_latest
from fusion_psro.experiments.manifest import MANIFEST_FILE, ManifestWriter, RunFiles, open_run
from fusion_psro.experiments.rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    POPULATION_DIR,
    MetricsLog,
    RunDirectoryError,
    RunLock,
    make_directory,
    prepare_run_directory,
    remove_created,
    remove_leftovers,
    remove_run_files,
    save_population,
)
from fusion_psro.errors import ConfigError, UnknownComponentError
from fusion_psro.files import atomic_path, check_output_path, write_json_atomic
from fusion_psro.games.loading import openspiel_version
from fusion_psro.psro import PSRO, IterationRecord, PSROConfig, resolved_settings
from fusion_psro.psro.config import ignored_settings

log = logging.getLogger(__name__)


def run_command(config: PSROConfig, out: Path | str) -> list[str]:
    """A ``fusion-psro run`` command line that reruns ``config`` into ``out``.

    Settings are given as ``--setting-name VALUE`` when they differ from their defaults;
    plug-ins that define components of the run come first as ``--plugin``.
    """
    from fusion_psro.registry import VARIANTS

    defaults = PSROConfig()
    command = ["fusion-psro"]
    for plugin in run_plugins(config):
        command += ["--plugin", plugin]
    command += ["run"]
    variant = VARIANTS.get(config.variant)
    variant_defaults = _json_settings(variant.settings_from({}))
    for field in dataclasses.fields(PSROConfig):
        value = getattr(config, field.name)
        option = "--" + field.name.replace("_", "-")
        if field.name.endswith("_options"):
            flag = "--" + field.name[: -len("_options")].replace("_", "-") + "-option"
            for key, item in sorted(value.items()):
                if field.name != "variant_options" or variant_defaults.get(key) != item:  # defaults go without saying
                    command += [flag, f"{key}={json.dumps(item)}"]
        elif isinstance(value, bool):  # a flag, as the command line takes it
            if value != getattr(defaults, field.name):
                command += [option if value else "--no-" + option[2:]]
        elif value is not None and value != getattr(defaults, field.name):
            command += [option, str(value)]
    return command + ["--out", str(out)]


def run_plugins(config: PSROConfig) -> list[str]:
    """The plug-ins (modules or ``.py`` files) another process must load to know the components of ``config``
    (:func:`fusion_psro.registry.plugin_sources`)."""
    from fusion_psro.registry import INITS, META_SOLVERS, ORACLES, VARIANTS, plugin_sources

    components = [ORACLES.get(config.oracle or "exact"), VARIANTS.get(config.variant),
                  META_SOLVERS.get(config.meta_solver)]
    components += [INITS.get(name) for name in (config.init, config.fusion_fallback) if name is not None]
    return plugin_sources(components)


def _json_settings(settings: Any) -> dict[str, Any]:
    return {} if settings is None else json.loads(json.dumps(dataclasses.asdict(settings)))


def run_config_record(config: PSROConfig, compiled_game_string: str, out: Path | str) -> dict[str, Any]:
    """What ``config.json`` holds: the resolved settings, the plug-ins that define their components
    (``plugins``, loaded again by :func:`resume_psro`), the versions that ran them, and a command
    that reruns them (:func:`run_command`)."""
    import numpy
    from importlib.metadata import version  # noqa: PLC0415 (PyTorch's version without importing it)

    return {
        "psro": dataclasses.asdict(config),
        "plugins": run_plugins(config),
        "game_string": compiled_game_string,
        "versions": {
            "fusion_psro": fusion_psro.__version__,
            "open_spiel": openspiel_version(),
            "numpy": numpy.__version__,
            "torch": version("torch"),
            "python": platform.python_version(),
        },
        "command": run_command(config, out),
        # Says that the run keeps a manifest: one missing from a run that has files was deleted.
        "integrity": MANIFEST_FILE,
    }


def finished_run_metrics(out: Path | str, config: PSROConfig) -> list[IterationRecord] | None:
    """The metrics of ``out`` if it holds a finished run of exactly ``config``, else None.

    A run is finished when its manifest says so (its population is saved) and it recorded
    ``config.iterations`` iterations, or stopped earlier at its target exploitability. The
    run's files are checked against its manifest first
    (:class:`~fusion_psro.experiments.manifest.RunIntegrityError` if they differ).
    """
    out = Path(out)
    if not (out / CONFIG_FILE).is_file():
        return None
    return _finished_rows(open_run(out), config)


def _finished_rows(files: RunFiles, config: PSROConfig) -> list[IterationRecord] | None:
    if not files.manifest.finished:
        return None
    for relative in files.listed(POPULATION_DIR + "/"):
        files.read(relative)  # the saved population is what the manifest vouches for (even to extend the run)
    if not (files.rows and same_settings(files.record["psro"], config)):
        return None
    rows = [IterationRecord.from_json(row) for row in files.rows]
    target = config.target_exploitability
    reached = target is not None and rows[-1].exploitability <= target
    return rows if rows[-1].iteration == config.iterations or reached else None


def unused_settings(config: PSROConfig, given: Iterable[str]) -> dict[str, str]:
    """The settings among ``given`` that a run of ``config`` (resolved) would not use, each with why
    (:func:`fusion_psro.psro.config.ignored_settings`: asked of the run's components)."""
    return ignored_settings(config, set(given))


def same_settings(recorded: dict[str, Any] | None, config: PSROConfig) -> bool:
    """Whether the ``psro`` record of a ``config.json`` describes the same run as ``config``.

    Both sides are resolved first (:func:`~fusion_psro.psro.resolved_settings`), so a
    record written before a setting existed (it then has that setting's default) still matches.
    """
    then = resolved_settings(recorded)
    return then is not None and then == resolved_settings(dataclasses.asdict(config))


def _executor(config: PSROConfig, workers: int, address: str | None):
    """Where the run's independent work goes (:mod:`fusion_psro.psro.executors`): this process, or Ray."""
    from fusion_psro.psro.executors import make_executor

    return make_executor(workers, address, run_plugins(config))


def run_psro(
    config: PSROConfig, out: Path | str, *, overwrite: bool = False, progress: bool = True, tensorboard: bool = False,
    workers: int = 1, address: str | None = None, executor=None,
) -> list[IterationRecord]:
    """Run PSRO as configured, writing ``config.json``, ``metrics.jsonl``, the population and the manifest.

    Returns the metrics rows. The settings and the directory are checked before any work
    starts, and the directory is locked (:class:`~fusion_psro.experiments.rundir.RunLock`)
    for the life of the run. If ``out`` already holds this exact run, finished, its metrics
    are returned and nothing runs; if it holds this run stopped before its first iteration
    was recorded, the run starts again. A checkpoint is written after every iteration (see
    :mod:`fusion_psro.experiments.checkpoint`), so :func:`resume_psro` can continue the run
    if it is interrupted; a run that fails before its first checkpoint leaves nothing
    behind. ``manifest.json`` vouches for the files (:mod:`fusion_psro.experiments.manifest`).
    With ``tensorboard``, each iteration's numbers are also written as TensorBoard
    scalars under ``out/tensorboard`` (needs the ``tensorboard`` package:
    ``pip install -e '.[tensorboard]'``). With ``workers`` > 1 or an ``address``,
    independent best responses, sampled meta-game entries and approximate best responses
    run as Ray tasks (:mod:`fusion_psro.psro.executors`); the results are the same. An
    ``executor`` given replaces that choice (a run of a
    :class:`~fusion_psro.psro.executors.LockstepExecutor`); the run closes it when it ends.
    """
    check_output_path(out)
    if executor is None:
        executor = _executor(config, workers, address)  # an address that does not answer fails here, first
    psro = PSRO(config, executor=executor)  # validates the config and compiles the game first
    out = Path(out)
    created = make_directory(out)
    try:
        with RunLock(out):
            remove_leftovers(out)
            finished = None if overwrite else finished_run_metrics(out, psro.config)
            if finished is not None:
                log.warning("%s already holds this finished run; nothing to do (pass --overwrite to run it again)", out)
                return finished
            record = run_config_record(psro.config, psro.space.game_string, out)
            prepare_run_directory(out, record, overwrite=overwrite, same=lambda r: same_settings(r, psro.config))
            try:
                manifest = ManifestWriter(out, record)
                manifest.commit({}, _sizes(psro))
                return _run_to_end(psro, out, [], progress, tensorboard, manifest, Checkpointer(out))
            except BaseException:
                if not any((out / CHECKPOINT_DIR).glob("iteration-*.npz")):
                    remove_run_files(out)  # nothing computed yet: leave the directory as it was
                raise
    finally:
        executor.close()
        remove_created(created)  # only directories left empty


def _sizes(psro: PSRO) -> list[int]:
    return [len(population) for population in psro.state.populations]


def resume_psro(out: Path | str, *, iterations: int | None = None, progress: bool = True,
                tensorboard: bool = False, workers: int = 1, address: str | None = None,
                executor=None) -> list[IterationRecord]:
    """Continue the run in ``out`` from its last good checkpoint (``executor``: as :func:`run_psro` takes it).

    The resumed run ends with the same metrics (wall times aside) as an uninterrupted run
    with the same seed. Metrics rows written after the checkpoint (a crash between the two
    writes) are dropped and recomputed. ``iterations`` changes the run's number of
    iterations: a finished run is extended to it, with the same results as a run asked for
    that many from the start; no other setting may differ from what the run's manifest
    vouches for (:class:`~fusion_psro.experiments.manifest.RunIntegrityError`).
    """
    out = Path(out)
    if not out.is_dir():
        raise CheckpointError(f"{out} is not a directory; --resume takes the run directory of an earlier run")
    with RunLock(out):
        remove_leftovers(out)
        files = open_run(out, allow_more_iterations=iterations is not None)
        config = _recorded_config(out, files.record)
        if iterations is not None:
            config = dataclasses.replace(config, iterations=iterations)
        psro = PSRO(config, executor=executor if executor is not None else _executor(config, workers, address))
        finished = _finished_rows(files, psro.config)
        if finished is not None:
            log.warning("%s is already finished; nothing to resume", out)
            return finished
        rows = files.rows
        if iterations is not None and rows and rows[-1]["iteration"] > iterations:
            raise CheckpointError(
                f"{out} has run {rows[-1]['iteration']} iterations already; --iterations must be at least that"
            )
        restored = restore_latest(psro, files, at_most=len(rows))
        iteration = restored.record["iteration"] if restored else 0
        rows = rows[:iteration]
        if rows:  # the recorded wall time includes checkpoint writing, which the loop's own clock leaves out
            psro.state.wall_s = float(rows[-1]["wall_s"])
        record = _record_settings(out, psro, files.record, changed=iterations is not None)
        checkpointer = Checkpointer(out)
        if restored is not None:
            checkpointer.adopt(files, restored)
        lines = _metrics_prefix(out, iteration)
        manifest = ManifestWriter(out, record, lines)
        manifest.commit(checkpointer.vouched(), _sizes(psro))
        # Rewrite the metrics to exactly the checkpointed iterations, atomically; the saved population goes
        # (the manifest no longer lists it): it is written again when the run ends.
        try:
            with atomic_path(out / METRICS_FILE) as tmp:
                tmp.write_bytes(b"".join(lines))
        except OSError as exc:
            raise RunDirectoryError(f"cannot write {out / METRICS_FILE}: {exc.strerror or exc}") from None
        shutil.rmtree(out / POPULATION_DIR, ignore_errors=True)
        log.info("resuming %s after iteration %d", out, iteration)
        return _run_to_end(psro, out, [IterationRecord.from_json(row) for row in rows], progress, tensorboard,
                           manifest, checkpointer)


def _metrics_prefix(out: Path, rows: int) -> list[bytes]:
    """The first ``rows`` lines of ``out/metrics.jsonl`` as written (checked against the manifest by the caller)."""
    return [line + b"\n" for line in (out / METRICS_FILE).read_bytes().split(b"\n")[:rows]] if rows else []


def _recorded_config(out: Path, record: dict[str, Any]) -> PSROConfig:
    """The settings in ``out/config.json`` (``record``), refused if another fusion-psro version wrote them."""
    versions = record.get("versions")
    written_by = versions.get("fusion_psro") if isinstance(versions, dict) else None
    if written_by != fusion_psro.__version__:
        raise CheckpointError(
            f"{out} was written by fusion-psro {written_by}; this is {fusion_psro.__version__}. Resume it with "
            "the version that wrote it, or start a new run"
        )
    _load_recorded_plugins(out, record.get("plugins", []))
    try:
        config = PSROConfig.from_record(record["psro"])
        run_plugins(config)  # looks up every component the run names
    except UnknownComponentError as exc:
        raise CheckpointError(f"{out} was run with a component no loaded plug-in registers ({exc}); pass the "
                              "--plugin that registers it: fusion-psro --plugin MODULE run --resume DIR") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{out / CONFIG_FILE} does not describe a PSRO run ({exc})") from None
    return config


def _load_recorded_plugins(out: Path, plugins: Any) -> None:
    """Load the plug-ins ``config.json`` records (:func:`run_plugins`), so a run of plug-in components resumes."""
    from fusion_psro.registry import load_plugin  # noqa: PLC0415

    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise CheckpointError(f"{out / CONFIG_FILE}: plugins must be a list of modules or .py files, got {plugins!r}")
    for plugin in plugins:
        try:
            load_plugin(plugin)
        except ConfigError as exc:
            raise CheckpointError(f"{out} was run with the plug-in {plugin}, which does not load now ({exc}); "
                                  "pass the --plugin that registers its components instead") from None


def _record_settings(out: Path, psro: PSRO, record: dict[str, Any], *, changed: bool) -> dict[str, Any]:
    """With ``changed`` settings (more iterations), record them in ``config.json``; returns its record."""
    if not changed:
        return record
    record = {**record, "psro": dataclasses.asdict(psro.config), "command": run_command(psro.config, out)}
    try:
        write_json_atomic(out / CONFIG_FILE, record)
    except OSError as exc:
        raise RunDirectoryError(f"cannot write {out / CONFIG_FILE}: {exc.strerror or exc}") from None
    return json.loads((out / CONFIG_FILE).read_text())  # as JSON reads it back (tuples are lists)


#: Numbers of a metrics row written as TensorBoard scalars, by tag.
TENSORBOARD_SCALARS = {
    "exploitability": "exploitability (NashConv / 2)", "nash_conv": "nash_conv", "episodes": "episodes",
    "wall_s": "wall_s", "fusion_s": "fusion_s", "meta_game_value": "meta_game_value",
}


def _tensorboard_writer(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RunDirectoryError(
            "--tensorboard needs the tensorboard package: pip install -e '.[tensorboard]'"
        ) from None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def _run_to_end(psro: PSRO, out: Path, rows: list[IterationRecord], progress: bool, tensorboard: bool,
                manifest: ManifestWriter, checkpointer: Checkpointer) -> list[IterationRecord]:
    """Run the remaining iterations; after each, write its checkpoint, then its metrics row.

    The row's ``wall_s`` is the time since the run started (resumed runs: the time recorded
    before, plus the time since the resume), checkpoint writing included; ``checkpoint_s``
    is the time this iteration's checkpoint took. A checkpoint is written before its row,
    so every recorded iteration has had a checkpoint; resuming starts from the newest
    checkpoint whose row was recorded. The manifest is written after the row, and only
    then are the checkpoints it no longer lists pruned; the last manifest, written with
    the population, says the run is finished.
    """
    metrics = MetricsLog(out / METRICS_FILE)
    writer = _tensorboard_writer(out) if tensorboard else None
    log.info("running %s into %s", psro.config, out)
    label = f"{psro.config.variant} {psro.config.oracle}" + (f" {psro.config.init}" if psro.config.init else "")
    rows = list(rows)
    base, started = psro.state.wall_s, time.perf_counter()
    with tqdm(total=psro.config.iterations, initial=psro.state.iteration, desc=label, unit="it",
              disable=not progress, dynamic_ncols=True) as bar:
        display = _ProgressDisplay(bar, rows[-1].exploitability if rows else None)

        def record(row: IterationRecord) -> None:
            nonlocal started
            interrupts.check()  # a Ctrl-C that a library's optional import swallowed stops the run here
            evaluation_started = time.perf_counter()
            evaluate_during_run(psro, row)  # --eval approx, when due
            started += time.perf_counter() - evaluation_started  # recorded as approx_s, not run time
            checkpoint_started = time.perf_counter()
            checkpointer.save(psro)
            row.extra["checkpoint_s"] = time.perf_counter() - checkpoint_started
            row.wall_s = psro.state.wall_s = base + (time.perf_counter() - started)
            manifest.row_appended(metrics.append(row.to_json()))
            manifest.commit(checkpointer.vouched(), _sizes(psro))
            checkpointer.prune()
            if writer is not None:
                _write_scalars(writer, row)
            rows.append(row)
            display.iteration_done(row)

        psro.on_progress = display.best_response if progress else None
        try:
            psro.run(callback=record)
        finally:
            psro.on_progress = None
            psro.executor.close()
            if writer is not None:
                writer.close()
    population = save_population(out, psro.state.populations)
    manifest.commit({**checkpointer.vouched(), **population}, _sizes(psro), finished=True)
    log.info("wrote %s, %s and the population to %s", CONFIG_FILE, METRICS_FILE, out)
    return rows


def _write_scalars(writer, row: IterationRecord) -> None:
    for key, tag in TENSORBOARD_SCALARS.items():
        writer.add_scalar(tag, getattr(row, key), row.iteration)
    for player, size in enumerate(row.population_sizes):
        writer.add_scalar(f"population_size/player{player}", size, row.iteration)
    writer.flush()


class _ProgressDisplay:
    """The run's progress bar: iterations, the last exploitability, and the current best response's episodes."""

    #: Seconds between redraws for progress inside an iteration.
    INTERVAL = 0.5

    def __init__(self, bar, exploitability: float | None):
        self.bar = bar
        self.exploitability = exploitability
        self._drawn = 0.0

    def _text(self, extra: str = "") -> str:
        text = "" if self.exploitability is None else f"exploitability {self.exploitability:.4f}"
        return ", ".join(t for t in (text, extra) if t)

    def best_response(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn >= self.INTERVAL or done >= total:
            self._drawn = now
            self.bar.set_postfix_str(self._text(f"best response {done:,}/{total:,} episodes"), refresh=True)

    def iteration_done(self, row: IterationRecord) -> None:
        self.exploitability = row.exploitability
        self.bar.set_postfix_str(self._text(), refresh=False)
        self.bar.update(1)
