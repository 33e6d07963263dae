"""One PSRO run into a run directory, with a progress display."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import fusion_psro
from fusion_psro.experiments.approximate import evaluate_during_run
from fusion_psro.experiments.checkpoint import Checkpointer, CheckpointError, restore_latest
from fusion_psro.experiments.rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    POPULATION_DIR,
    MetricsLog,
    RunDirectoryError,
    prepare_run_directory,
    read_metrics,
    save_population,
)
from fusion_psro.games.loading import openspiel_version
from fusion_psro.psro import PSRO, IterationRecord, PSROConfig, resolved_settings

log = logging.getLogger(__name__)


def run_command(config: PSROConfig, out: Path | str) -> list[str]:
    """A ``fusion-psro run`` command line that reruns ``config`` into ``out``.

    Settings are given as ``--setting-name VALUE`` when they differ from their defaults;
    plug-ins that define components of the run come first as ``--plugin``.
    """
    from fusion_psro.registry import INITS, META_SOLVERS, ORACLES, VARIANTS, plugin_sources

    defaults = PSROConfig()
    command = ["fusion-psro"]
    components = [ORACLES.get(config.oracle), VARIANTS.get(config.variant), META_SOLVERS.get(config.meta_solver)]
    components += [INITS.get(name) for name in (config.init, config.fusion_fallback) if name is not None]
    for plugin in plugin_sources(components):
        command += ["--plugin", plugin]
    command += ["run"]
    for field in dataclasses.fields(PSROConfig):
        value = getattr(config, field.name)
        if field.name.endswith("_options"):
            flag = "--" + field.name[: -len("_options")].replace("_", "-") + "-option"
            for key, option in sorted(value.items()):
                command += [flag, f"{key}={json.dumps(option)}"]
        elif value is not None and value != getattr(defaults, field.name):
            command += ["--" + field.name.replace("_", "-"), str(value)]
    return command + ["--out", str(out)]


def run_config_record(config: PSROConfig, compiled_game_string: str, out: Path | str) -> dict[str, Any]:
    """What ``config.json`` holds: the resolved settings, the versions that ran them, and a
    command that reruns them (:func:`run_command`)."""
    import numpy
    import torch

    return {
        "psro": dataclasses.asdict(config),
        "game_string": compiled_game_string,
        "versions": {
            "fusion_psro": fusion_psro.__version__,
            "open_spiel": openspiel_version(),
            "numpy": numpy.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "command": run_command(config, out),
    }


def finished_run_metrics(out: Path | str, config: PSROConfig) -> list[IterationRecord] | None:
    """The metrics of ``out`` if it holds a finished run of exactly ``config``, else None."""
    out = Path(out)
    try:
        recorded = json.loads((out / CONFIG_FILE).read_text()).get("psro")
        rows = [IterationRecord.from_json(row) for row in read_metrics(out)]
    except (OSError, ValueError):
        return None
    saved = all((out / POPULATION_DIR / f"player{p}.npz").exists() for p in range(2))
    complete = bool(rows) and rows[-1].iteration == config.iterations and saved
    return rows if same_settings(recorded, config) and complete else None


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
    from fusion_psro.registry import INITS, META_SOLVERS, ORACLES, VARIANTS, plugin_sources

    components = [ORACLES.get(config.oracle or "exact"), VARIANTS.get(config.variant),
                  META_SOLVERS.get(config.meta_solver)]
    components += [INITS.get(name) for name in (config.init, config.fusion_fallback) if name is not None]
    return make_executor(workers, address, plugin_sources(components))


def run_psro(
    config: PSROConfig, out: Path | str, *, overwrite: bool = False, progress: bool = True, tensorboard: bool = False,
    workers: int = 1, address: str | None = None,
) -> list[IterationRecord]:
    """Run PSRO as configured, writing ``config.json``, ``metrics.jsonl`` and the population.

    Returns the metrics rows. The directory is checked before any work starts. If ``out``
    already holds this exact run, finished, its metrics are returned and nothing runs. A
    checkpoint is written after every iteration (see :mod:`fusion_psro.experiments.checkpoint`),
    so :func:`resume_psro` can continue the run if it is interrupted. With ``tensorboard``,
    each iteration's numbers are also written as TensorBoard scalars under ``out/tensorboard``
    (needs the ``tensorboard`` package: ``pip install -e '.[tensorboard]'``). With ``workers``
    > 1 or an ``address``, independent best responses, sampled meta-game entries and
    approximate best responses run as Ray tasks (:mod:`fusion_psro.psro.executors`); the
    results are the same.
    """
    executor = _executor(config, workers, address)  # an address that does not answer fails here, first
    psro = PSRO(config, executor=executor)  # validates the config and compiles the game first
    finished = finished_run_metrics(out, psro.config)
    if finished is not None and not overwrite:
        log.warning("%s already holds this finished run; nothing to do (pass --overwrite to run it again)", out)
        return finished
    out = prepare_run_directory(out, run_config_record(psro.config, psro.space.game_string, out), overwrite=overwrite)
    return _run_to_end(psro, out, [], progress, tensorboard)


def resume_psro(out: Path | str, *, progress: bool = True, tensorboard: bool = False, workers: int = 1,
                address: str | None = None) -> list[IterationRecord]:
    """Continue the run in ``out`` from its last good checkpoint.

    The resumed run ends with the same metrics (wall times aside) as an uninterrupted run
    with the same seed. Metrics rows written after the checkpoint (a crash between the two
    writes) are dropped and recomputed.
    """
    out = Path(out)
    try:
        record = json.loads((out / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{out} has no {CONFIG_FILE}; it is not a fusion-psro run directory") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {out / CONFIG_FILE}: {exc}") from None
    written_by = record.get("versions", {}).get("fusion_psro")
    if written_by != fusion_psro.__version__:
        raise CheckpointError(
            f"{out} was written by fusion-psro {written_by}; this is {fusion_psro.__version__}. Resume it with "
            "the version that wrote it, or start a new run"
        )
    try:
        config = PSROConfig.from_record(record["psro"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{out / CONFIG_FILE} does not describe a PSRO run ({exc})") from None
    psro = PSRO(config, executor=_executor(config, workers, address))
    finished = finished_run_metrics(out, psro.config)
    if finished is not None:
        log.warning("%s is already finished; nothing to resume", out)
        return finished
    iteration = restore_latest(psro, out)
    rows = [row for row in read_metrics(out) if row["iteration"] <= iteration] if (out / METRICS_FILE).exists() else []
    if [row["iteration"] for row in rows] != list(range(1, iteration + 1)):
        raise CheckpointError(
            f"{out / METRICS_FILE} does not hold iterations 1..{iteration} that the checkpoint records; "
            "the run directory was modified by hand"
        )
    # Rewrite the metrics to exactly the checkpointed iterations, atomically.
    tmp = out / f".{METRICS_FILE}.tmp"
    tmp.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    os.replace(tmp, out / METRICS_FILE)
    log.info("resuming %s after iteration %d", out, iteration)
    return _run_to_end(psro, out, [IterationRecord.from_json(row) for row in rows], progress, tensorboard)


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


def _run_to_end(psro: PSRO, out: Path, rows: list[IterationRecord], progress: bool,
                tensorboard: bool = False) -> list[IterationRecord]:
    metrics = MetricsLog(out / METRICS_FILE)
    checkpointer = Checkpointer(out)
    writer = _tensorboard_writer(out) if tensorboard else None
    log.info("running %s into %s", psro.config, out)
    label = f"{psro.config.variant} {psro.config.oracle}" + (f" {psro.config.init}" if psro.config.init else "")
    rows = list(rows)
    with tqdm(total=psro.config.iterations, initial=psro.state.iteration, desc=label, unit="it",
              disable=not progress, dynamic_ncols=True) as bar:
        def record(row: IterationRecord) -> None:
            evaluate_during_run(psro, row)  # --eval approx, when due
            metrics.append(row.to_json())
            checkpointer.save(psro)
            if writer is not None:
                for key, tag in TENSORBOARD_SCALARS.items():
                    writer.add_scalar(tag, getattr(row, key), row.iteration)
                for player, size in enumerate(row.population_sizes):
                    writer.add_scalar(f"population_size/player{player}", size, row.iteration)
                writer.flush()
            rows.append(row)
            bar.set_postfix(exploitability=f"{row.exploitability:.4f}", refresh=False)
            bar.update(1)

        try:
            psro.run(callback=record)
        finally:
            psro.executor.close()
            if writer is not None:
                writer.close()
    save_population(out, psro.state.populations)
    log.info("wrote %s, %s and the population to %s", CONFIG_FILE, METRICS_FILE, out)
    return rows
