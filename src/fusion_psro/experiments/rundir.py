"""Run directories: what a run wrote, written so that nothing computed is lost.

A run directory holds:

* ``config.json``: the resolved configuration, versions, and the command that ran;
* ``metrics.jsonl``: one JSON object per iteration, appended and flushed as it happens;
* ``checkpoints/``: the loop's state after the last two iterations, for ``--resume``
  (see :mod:`fusion_psro.experiments.checkpoint`);
* ``population/``: the final populations: ``player{p}.npz`` (tabular policies
  ``[K, I, A]``, each member's origin and whether it has network parameters) and, for learned oracles,
  ``player{p}_member{k:03d}.safetensors`` (network parameters);
* ``manifest.json``: what the run vouches for, to check every file a reader reads
  (:mod:`fusion_psro.experiments.manifest`);
* ``run.lock``: present while a process writes the directory (:class:`RunLock`).

A directory that already holds a run is never overwritten unless the caller says so, and
never written by two processes at once.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.errors import FusionPSROError
from fusion_psro.files import write_json_atomic

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
POPULATION_DIR = "population"
LOCK_FILE = "run.lock"
MANIFEST_FILE = "manifest.json"
#: Everything a run writes; ``--overwrite`` removes exactly these.
RUN_FILES = (CONFIG_FILE, METRICS_FILE, MANIFEST_FILE, POPULATION_DIR, "checkpoints", "tensorboard")
#: Directories of a run where a killed atomic write (:mod:`fusion_psro.files`) can leave a temporary file.
_WRITTEN_DIRS = (".", POPULATION_DIR, "checkpoints", "checkpoints/members")


class RunDirectoryError(FusionPSROError, ValueError):
    """The output directory cannot be used for this run."""


class RunDirectoryBusyError(RunDirectoryError):
    """Another live process is writing the run directory."""


def make_directory(path: Path | str) -> list[Path]:
    """Create ``path`` and its missing parents; returns the directories created, outermost first.

    Raises :class:`RunDirectoryError` naming the path and the reason when it cannot be
    created (a file in the way, no permission, a read-only file system).
    """
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()][::-1]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunDirectoryError(f"{path} exists and is not a directory") from None
    except NotADirectoryError:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise RunDirectoryError(f"cannot create {path}: {blocker} is a file, not a directory") from None
    except OSError as exc:
        raise RunDirectoryError(f"cannot create {path}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise RunDirectoryError(f"{path} exists and is not a directory")
    return missing


def remove_created(created: list[Path]) -> None:
    """Remove directories :func:`make_directory` created, innermost first, if they are empty."""
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            return


class RunLock:
    """An exclusive lock on a run directory, held for the life of a run.

    ``DIR/run.lock`` is locked with ``fcntl.flock`` and holds the holder's process id, host,
    command line and start time, so that a second writer is refused with a message naming
    the live process. The kernel releases the lock when the holder dies, however it dies
    (``kill -9`` included), so a stale file never blocks a later run; the file is removed
    when the lock is released. Use as a context manager.
    """

    def __init__(self, directory: Path | str, name: str = LOCK_FILE):
        self.directory = Path(directory)
        self.path = self.directory / name
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        if fcntl is None:  # pragma: no cover - not POSIX
            log.warning("file locks are not available here; nothing stops a second process writing %s", self.directory)
            return
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise RunDirectoryError(f"cannot write to {self.directory}: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                os.close(fd)
                raise RunDirectoryBusyError(
                    f"{self.directory} is being written by {holder}; wait for it to end (or stop it) "
                    f"before running into this directory ({self.path.name} says who holds it)"
                ) from None
            except OSError as exc:  # a file system without locks
                log.warning("cannot lock %s (%s); nothing stops a second process writing it", self.path, exc)
                self._fd = fd
                return
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file as we locked it: lock the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_holder_record()).encode() + b"\n", 0)
            self._fd = fd
            return
        raise RunDirectoryBusyError(f"{self.directory}: could not take {LOCK_FILE}; another process keeps replacing it")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            record = json.loads(os.pread(fd, 65536, 0).decode() or "{}")
        except (OSError, ValueError):
            record = {}
        if not isinstance(record, dict) or "pid" not in record:
            return "another process"
        return (f"process {record['pid']} on {record.get('host', '?')} ({record.get('command', '?')}), "
                f"running since {record.get('started', '?')}")


def _holder_record() -> dict[str, Any]:
    argv = list(sys.argv) or ["python"]
    if argv[0].endswith(("cli.py", "fusion-psro")):
        argv[0] = "fusion-psro"
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": shlex.join(argv),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }



def prepare_run_directory(path: Path | str, run_config: dict[str, Any], *, overwrite: bool = False,
                          same: Callable[[Any], bool] | None = None) -> Path:
    """Create (or, with ``overwrite``, clear) ``path`` for a run described by ``run_config``.

    Refuses, with a :class:`RunDirectoryError`, a directory that holds another run or
    files that are not a run's, unless ``overwrite`` is set; with ``overwrite`` only the
    run's own files (:data:`RUN_FILES`) are removed. A directory holding this same run
    (``same(recorded psro settings)``, default: equal records) that was stopped before its
    first checkpoint is started again; one with checkpoints is refused with the command
    that continues it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(f"output path {path} exists and is not a directory")
    same = same or (lambda recorded: recorded == run_config.get("psro"))
    if path.exists():
        entries = sorted(p.name for p in path.iterdir() if p.name != LOCK_FILE)
        restart = False
        if entries and not overwrite:
            restart = _check_reuse(path, entries, run_config, same)
        if overwrite or restart:
            remove_run_files(path)
    make_directory(path)
    try:
        write_json_atomic(path / CONFIG_FILE, run_config)
    except OSError as exc:
        raise RunDirectoryError(f"cannot write to {path}: {exc.strerror or exc}") from None
    return path


def read_config_record(run_dir: Path | str) -> dict[str, Any]:
    """The record in ``run_dir/config.json``: an object whose ``psro`` is an object of settings.

    :class:`RunDirectoryError`, naming the file and what is wrong, otherwise.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunDirectoryError(f"{run_dir} has no {CONFIG_FILE}; it is not a fusion-psro run directory")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunDirectoryError(f"cannot read {path}: {exc}") from None
    if not isinstance(record, dict) or not isinstance(record.get("psro"), dict):
        found = type(record.get("psro") if isinstance(record, dict) else record).__name__
        raise RunDirectoryError(f"{path} does not hold a run's settings: expected an object whose \"psro\" is an "
                                f"object of settings, found {found}; the file was edited or damaged")
    return record


def _check_reuse(path: Path, entries: list[str], run_config: dict[str, Any], same: Callable[[Any], bool]) -> bool:
    """True if ``path`` holds this run, stopped before its first checkpoint (to start again); else refuses."""
    config_path = path / CONFIG_FILE
    hint = "Choose another --out, or pass --overwrite to replace the run's files"
    if not config_path.exists():
        what = f"is not empty and holds no run (found: {', '.join(entries[:5])})"
    else:
        try:
            existing = json.loads(config_path.read_text()).get("psro", {})
        except (OSError, ValueError, AttributeError):
            existing = None
        if existing is not None and same(existing):
            recorded = _recorded_iterations(path)
            if recorded == 0 and not (path / POPULATION_DIR).exists():
                log.warning("%s holds this run, stopped before its first iteration was recorded; starting it again",
                            path)
                return True
            what = f"holds this run, unfinished ({recorded} iterations recorded)"
            hint = f"Continue it with `fusion-psro run --resume {path}`, or pass --overwrite to start it again"
        else:
            what = f"holds a different run ({_differences(existing or {}, run_config.get('psro', {}))})"
    raise RunDirectoryError(f"output directory {path} {what}; nothing was changed. {hint}")


def _recorded_iterations(path: Path) -> int | str:
    """How many metrics rows ``path`` holds ("unreadable" when its metrics are damaged)."""
    if not (path / METRICS_FILE).exists():
        return 0
    try:
        return len(read_metrics(path))
    except RunDirectoryError:
        return "unreadable"


def remove_run_files(path: Path) -> None:
    """Remove the run's own files (:data:`RUN_FILES`) from ``path``; other files stay."""
    for name in RUN_FILES:
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    diffs = [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(diffs[:4]) + ("; ..." if len(diffs) > 4 else "") if diffs else "unreadable config"


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl``, flushed and synced after every row."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, row: dict[str, Any]) -> bytes:
        """Append ``row``; returns the line written (for the manifest). A full disk is a :class:`RunDirectoryError`."""
        line = (json.dumps(row, sort_keys=True) + "\n").encode()
        try:
            with open(self.path, "ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise RunDirectoryError(f"cannot write {self.path}: {exc.strerror or exc}; what was recorded before is "
                                    f"kept (free space, then `fusion-psro run --resume {self.path.parent}`)") from None
        return line


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Remove what killed atomic writes left in ``run_dir`` (``.NAME.*.tmp`` files, ``.population.tmp``).

    Call only while holding the run's lock (:class:`RunLock`): a live writer's temporary
    files look the same. Returns what was removed.
    """
    removed = []
    for sub in _WRITTEN_DIRS:
        directory = run_dir / sub
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        log.info("removed %d temporary files left by interrupted writes in %s", len(removed), run_dir)
    return removed


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """The metrics rows of a run directory.

    A last line cut short (what a kill while appending leaves: no newline, not JSON) is
    left out with a warning; any other line that is not a JSON object is an error.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        raise RunDirectoryError(f"{run_dir} has no {METRICS_FILE}; is it a fusion-psro run directory?")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirectoryError(f"cannot read {path}: {exc}") from None
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        elif number == len(lines):  # the last line, without its newline: cut short by a kill
            log.warning("%s: its last line was cut short (the run was killed while writing it); left out", path)
        else:
            raise RunDirectoryError(f"{path}: line {number} is not a JSON object; the file was damaged")
    return rows


def check_iterations(rows: list[dict[str, Any]], where: Path | str) -> None:
    """:class:`RunDirectoryError` unless ``rows`` record iterations 1..N, once each and in order."""
    iterations = [row.get("iteration") for row in rows]
    if iterations != list(range(1, len(rows) + 1)):
        shown = ", ".join(map(str, iterations[:12])) + (", ..." if len(iterations) > 12 else "")
        raise RunDirectoryError(
            f"{Path(where) / METRICS_FILE} records iterations [{shown}], not 1..{len(rows)} once each: "
            "two processes wrote the run at once, or the file was edited. Rerun it with --overwrite"
        )


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` archive of ``arrays``, the same bytes for the same arrays (no timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def population_files(populations) -> dict[str, bytes]:
    """The final population's files (see the module docstring), by path inside the run directory.

    The same populations give the same bytes, so a population rebuilt from a checkpoint can
    be compared with the one written at the end of the run.
    """
    files = {}
    for player, members in enumerate(populations):
        files[f"{POPULATION_DIR}/player{player}.npz"] = _npz_bytes({
            "policies": np.stack([m.policy for m in members]),
            "origins": np.asarray([m.origin for m in members], dtype=np.str_),
            "has_parameters": np.asarray([m.parameters is not None for m in members]),
        })
        for k, member in enumerate(members):
            if member.parameters is not None:
                from safetensors.torch import save  # noqa: PLC0415 (parameters only: they are PyTorch's)

                tensors = {name: t.detach().cpu().contiguous() for name, t in member.parameters.items()}
                files[f"{POPULATION_DIR}/player{player}_member{k:03d}.safetensors"] = save(tensors)
    return files


def save_population(run_dir: Path, populations) -> dict[str, str]:
    """Write the final populations (see the module docstring); returns each file's sha256, by relative path.

    A full disk is a :class:`RunDirectoryError` (the checkpoints and metrics are kept).
    """
    final = run_dir / POPULATION_DIR
    staging = run_dir / f".{POPULATION_DIR}.tmp"
    try:
        files = population_files(populations)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        for relative, data in files.items():
            (staging / relative.split("/", 1)[1]).write_bytes(data)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RunDirectoryError(f"cannot write the population to {final}: {exc.strerror or exc}; "
                                f"the checkpoints and metrics are kept (free space, then `fusion-psro run --resume "
                                f"{run_dir}`)") from None
    return {relative: hashlib.sha256(data).hexdigest() for relative, data in files.items()}
