"""One PSRO run into a run directory, with a progress display."""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from fusion_psro.experiments.rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    POPULATION_DIR,
    MetricsLog,
    prepare_run_directory,
    read_metrics,
    save_population,
)
from fusion_psro.games.loading import openspiel_version
from fusion_psro.psro.loop import PSRO, PSROConfig

log = logging.getLogger(__name__)


def run_config_record(config: PSROConfig, compiled_game_string: str) -> dict[str, Any]:
    """What ``config.json`` holds: the resolved settings and the versions that ran them."""
    import fusion_psro
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
        "command": sys.argv,
    }


def finished_run_metrics(out: Path | str, config: PSROConfig) -> list[dict[str, Any]] | None:
    """The metrics of ``out`` if it holds a finished run of exactly ``config``, else None."""
    out = Path(out)
    try:
        recorded = json.loads((out / CONFIG_FILE).read_text()).get("psro")
        rows = read_metrics(out)
    except (OSError, ValueError):
        return None
    saved = all((out / POPULATION_DIR / f"player{p}.npz").exists() for p in range(2))
    complete = bool(rows) and rows[-1].get("iteration") == config.iterations and saved
    same = recorded == json.loads(json.dumps(dataclasses.asdict(config)))
    return rows if same and complete else None


def run_psro(
    config: PSROConfig, out: Path | str, *, overwrite: bool = False, progress: bool = True
) -> list[dict[str, Any]]:
    """Run PSRO as configured, writing ``config.json``, ``metrics.jsonl`` and the population.

    Returns the metrics rows. The directory is checked before any work starts. If ``out``
    already holds this exact run, finished, its metrics are returned and nothing runs.
    """
    psro = PSRO(config)  # validates the config and compiles the game first
    finished = finished_run_metrics(out, psro.config)
    if finished is not None and not overwrite:
        log.warning("%s already holds this finished run; nothing to do (pass --overwrite to run it again)", out)
        return finished
    out = prepare_run_directory(out, run_config_record(psro.config, psro.compiled.game_string), overwrite=overwrite)
    metrics = MetricsLog(out / METRICS_FILE)
    log.info("running %s into %s", psro.config, out)
    label = f"{psro.config.variant} {psro.config.oracle}" + (f" {psro.config.init}" if psro.config.init else "")
    with tqdm(total=psro.config.iterations, desc=label, unit="it", disable=not progress, dynamic_ncols=True) as bar:
        def record(row: dict[str, Any]) -> None:
            metrics.append(row)
            bar.set_postfix(exploitability=f"{row['exploitability']:.4f}", refresh=False)
            bar.update(1)

        rows = psro.run(callback=record)
    save_population(out, psro.state.populations)
    log.info("wrote %s, %s and the population to %s", CONFIG_FILE, METRICS_FILE, out)
    return rows
