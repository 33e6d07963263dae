"""Run directories: what a run wrote, written so that nothing computed is lost.

A run directory holds:

* ``config.json``: the resolved configuration, versions, and the command that ran;
* ``metrics.jsonl``: one JSON object per iteration, appended and flushed as it happens;
* ``checkpoints/``: the loop's state after the last two iterations, for ``--resume``
  (see :mod:`fusion_psro.experiments.checkpoint`);
* ``population/``: the final populations: ``player{p}.npz`` (tabular policies
  ``[K, I, A]`` and each member's origin) and, for learned oracles,
  ``player{p}_member{k:03d}.safetensors`` (network parameters).

A directory that already holds a run is never overwritten unless the caller says so.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.errors import FusionPSROError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
POPULATION_DIR = "population"
#: Everything a run writes; ``--overwrite`` removes exactly these.
RUN_FILES = (CONFIG_FILE, METRICS_FILE, POPULATION_DIR, "checkpoints", "tensorboard")


class RunDirectoryError(FusionPSROError, ValueError):
    """The output directory cannot be used for this run."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_run_directory(path: Path | str, run_config: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Create (or, with ``overwrite``, clear) ``path`` for a run described by ``run_config``.

    Refuses, with a :class:`RunDirectoryError`, a directory that holds another run or
    files that are not a run's, unless ``overwrite`` is set; with ``overwrite`` only the
    run's own files (:data:`RUN_FILES`) are removed.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(f"output path {path} exists and is not a directory")
    if path.exists():
        entries = sorted(p.name for p in path.iterdir())
        if entries and not overwrite:
            config_path = path / CONFIG_FILE
            if config_path.exists():
                try:
                    existing = json.loads(config_path.read_text()).get("psro", {})
                except (OSError, json.JSONDecodeError):
                    existing = None
                if existing == run_config.get("psro"):
                    what = "already holds a run with this exact configuration"
                else:
                    differences = _differences(existing or {}, run_config.get("psro", {}))
                    what = f"holds a different run ({differences})"
            else:
                what = f"is not empty and holds no run (found: {', '.join(entries[:5])})"
            raise RunDirectoryError(
                f"output directory {path} {what}; nothing was changed. Choose another --out, or pass "
                "--overwrite to replace the run's files"
            )
        if overwrite:
            for name in RUN_FILES:
                target = path / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
    path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path / CONFIG_FILE, run_config)
    return path


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    diffs = [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(diffs[:4]) + ("; ..." if len(diffs) > 4 else "") if diffs else "unreadable config"


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl``, flushed after every row."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """The metrics rows of a run directory."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        raise RunDirectoryError(f"{run_dir} has no {METRICS_FILE}; is it a fusion-psro run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_population(run_dir: Path, populations) -> Path:
    """Write the final populations (see the module docstring); returns the directory."""
    from safetensors.torch import save_file

    final = run_dir / POPULATION_DIR
    staging = run_dir / f".{POPULATION_DIR}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for player, members in enumerate(populations):
        np.savez_compressed(
            staging / f"player{player}.npz",
            policies=np.stack([m.policy for m in members]),
            origins=np.asarray([m.origin for m in members], dtype=np.str_),
        )
        for k, member in enumerate(members):
            if member.parameters is not None:
                tensors = {name: t.detach().cpu().contiguous() for name, t in member.parameters.items()}
                save_file(tensors, str(staging / f"player{player}_member{k:03d}.safetensors"))
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    return final


def load_population_policies(run_dir: Path | str, player: int) -> np.ndarray:
    """Tabular policies ``[K, I, A]`` of ``player``'s final population."""
    path = Path(run_dir) / POPULATION_DIR / f"player{player}.npz"
    if not path.exists():
        raise RunDirectoryError(f"{path} does not exist; the run may not have finished")
    with np.load(path) as data:
        return data["policies"]
