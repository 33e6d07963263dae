"""One PSRO run into a run directory, with a progress display."""

from __future__ import annotations

import dataclasses
import logging
import platform
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from fusion_psro.experiments.rundir import CONFIG_FILE, METRICS_FILE, MetricsLog, prepare_run_directory, save_population
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


def run_psro(
    config: PSROConfig, out: Path | str, *, overwrite: bool = False, progress: bool = True
) -> list[dict[str, Any]]:
    """Run PSRO as configured, writing ``config.json``, ``metrics.jsonl`` and the population.

    Returns the metrics rows. The directory is checked before any work starts.
    """
    psro = PSRO(config)  # validates the config and compiles the game first
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
