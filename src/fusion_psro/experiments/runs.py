"""Run directories read back for reports and plots, and grouped into methods.

Runs that differ only in their seed form one *method*; :func:`group_by_method` groups
them and :func:`method_label` names them (``Fusion-PSRO``, ``PSRO-rN (normal init)``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.experiments.rundir import CONFIG_FILE, RunDirectoryError, read_metrics


@dataclasses.dataclass
class RunSummary:
    """One run directory read back: its resolved settings and one metrics row per iteration."""

    path: Path
    settings: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def final(self) -> dict[str, Any]:
        """The metrics of the last recorded iteration."""
        return self.rows[-1]


def load_runs(run_dirs: Iterable[Path | str]) -> list[RunSummary]:
    """Read the config and metrics of each run directory (clear error if one is not a run)."""
    from fusion_psro.psro.config import recorded_settings  # noqa: PLC0415

    runs = []
    for run_dir in run_dirs:
        path = Path(run_dir)
        config_path = path / CONFIG_FILE
        if not config_path.exists():
            raise RunDirectoryError(f"{path} has no {CONFIG_FILE}; is it a fusion-psro run directory?")
        recorded = json.loads(config_path.read_text())["psro"]
        # Resolved with today's defaults, so seeds written by different versions group together.
        settings = recorded_settings(recorded) or recorded
        rows = read_metrics(path)
        if not rows:
            raise RunDirectoryError(f"{path} has no iterations recorded yet")
        runs.append(RunSummary(path, settings, rows))
    return runs


_VARIANT_NAMES = {
    "psro": "PSRO", "psro-rn": "PSRO-rN", "p-psro": "P-PSRO",
    "dpp": "DPP-PSRO", "bdrd": "BD&RD-PSRO", "psd": "PSD-PSRO",
}


def method_label(settings: dict[str, Any], varying: Iterable[str]) -> str:
    """The method's name (``Fusion-PSD-PSRO``), then the ``varying`` settings that are set."""
    variant = _VARIANT_NAMES.get(settings["variant"], settings["variant"].upper())
    init = settings.get("init")
    name = f"Fusion-{variant}" if init == "fusion" else variant
    if init and init != "fusion":
        name += f" ({init} init)"
    # An unset setting (None, e.g. the diversity weight of a non-diversity variant) says nothing.
    extras = [f"{k}={settings[k]}" for k in varying if k not in ("variant", "init") and settings.get(k) is not None]
    return name + (f" [{', '.join(extras)}]" if extras else "")


def mean_and_standard_error(values: list[float]) -> tuple[float, float]:
    """Mean and standard error ``std(ddof=1) / sqrt(n)``; the error is NaN for one value."""
    array = np.asarray(values, dtype=np.float64)
    if array.size < 2:
        return float(array.mean()), math.nan
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(array.size))


def group_by_method(runs: list[RunSummary]) -> dict[tuple, list[RunSummary]]:
    """Runs grouped by all their settings but the seed, in order of first appearance."""
    groups: dict[tuple, list[RunSummary]] = {}
    for run in runs:
        key = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in run.settings.items() if k != "seed"))
        groups.setdefault(key, []).append(run)
    return groups


def varying_settings(runs: list[RunSummary]) -> list[str]:
    """The settings (other than the seed) whose value differs between runs."""
    keys = sorted({k for run in runs for k in run.settings if k != "seed"})
    return [k for k in keys if len({json.dumps(r.settings.get(k), sort_keys=True) for r in runs}) > 1]
