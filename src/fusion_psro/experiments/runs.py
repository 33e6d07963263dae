"""Run directories read back for reports and plots, and grouped into methods.

Runs that differ only in their seed form one *method*; :func:`group_by_method` groups
them and :func:`method_label` names them (``Fusion-PSRO``, ``PSRO-rN (normal init)``).
Seeds of one method that recorded different numbers of iterations (an unfinished run, a
run stopped at its target exploitability) are compared at the last iteration all of them
recorded, in reports and plots alike (:func:`common_iteration`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.experiments.manifest import open_run
from fusion_psro.experiments.rundir import RunDirectoryError

log = logging.getLogger(__name__)


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
    """Read the config and metrics of each run directory (clear error if one is not a run).

    A directory given twice (by any path) counts once, with a warning. A path that is a
    file, not a directory, is skipped (``DIR/*`` over a sweep also names its report.md and
    figures). The config and the metrics rows are checked against the run's manifest
    (:func:`~fusion_psro.experiments.manifest.open_run`): rows must record iterations 1..N
    once each, with every number a report uses, and as many as the manifest vouches for;
    rows a live run has written but not yet vouched for are left out.
    """
    from fusion_psro.psro.config import recorded_settings  # noqa: PLC0415

    runs = []
    seen: dict[Path, Path] = {}
    skipped = []
    for run_dir in run_dirs:
        path = Path(run_dir)
        if path.is_file():
            skipped.append(path.name)
            continue
        if path.resolve() in seen:
            log.warning("%s is %s given again; counted once", path, seen[path.resolve()])
            continue
        seen[path.resolve()] = path
        files = open_run(path)  # config.json and the metrics, checked against the run's manifest
        recorded = files.record["psro"]
        # Resolved with today's defaults, so seeds written by different versions group together.
        settings = recorded_settings(recorded) or recorded
        rows = files.rows
        if not rows:
            raise RunDirectoryError(f"{path} has no iterations recorded yet")
        runs.append(RunSummary(path, settings, rows))
    if skipped:
        log.info("skipped %d file(s) that are no run directories: %s", len(skipped), ", ".join(skipped))
        if not runs:
            raise RunDirectoryError(f"no run directory given, only files ({', '.join(skipped[:5])}); give the run "
                                    "directories, e.g. runs/NAME/*")
    return runs


def common_iteration(runs: list[RunSummary]) -> int:
    """The last iteration every run of ``runs`` recorded: where seeds of unequal length are compared."""
    return min(run.final["iteration"] for run in runs)


def note_unequal_lengths(label: str, runs: list[RunSummary]) -> str | None:
    """A sentence saying where the seeds of a method are compared, if they differ in length (else None)."""
    at = common_iteration(runs)
    longer = [run for run in runs if run.final["iteration"] > at]
    if not longer:
        return None
    return (f"{label}: its {len(runs)} seeds recorded {'/'.join(str(r.final['iteration']) for r in runs)} iterations; "
            f"all are compared at iteration {at}, the last that every seed recorded")


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
    flat = _flat(settings)
    extras = [f"{k.rpartition('.')[2]}={flat[k]}" for k in varying
              if k not in ("variant", "init") and flat.get(k) is not None]
    return name + (f" [{', '.join(extras)}]" if extras else "")


def _flat(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with each variant setting as its own ``variant_options.NAME`` entry (variants
    have different settings: one that a variant does not have is absent, not different)."""
    flat = {k: v for k, v in settings.items() if k != "variant_options"}
    options = settings.get("variant_options")
    flat.update({f"variant_options.{k}": v for k, v in (options.items() if isinstance(options, dict) else ())})
    return flat


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
    flat = [_flat(run.settings) for run in runs]
    keys = sorted({k for settings in flat for k in settings if k != "seed"})
    return [k for k in keys if len({json.dumps(s[k], sort_keys=True) for s in flat if k in s}) > 1]
