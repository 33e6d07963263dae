"""Run directories that prove their own integrity: ``manifest.json``.

A run writes ``manifest.json`` beside its other files, atomically, after every
iteration's checkpoint and metrics row and when it ends. It vouches for:

* ``config_sha256``: the sha256 of ``config.json`` (its JSON, keys sorted), with a copy
  of it (``config``) so that a changed file is reported by what changed;
* ``rows`` and ``metrics_sha256``: how many rows of ``metrics.jsonl`` it vouches for and
  the sha256 of those rows' bytes (the file's first ``rows`` lines);
* ``members``: each player's population size after the last of those rows;
* ``files``: the sha256 of every checkpoint file the run keeps (``checkpoints/...``)
  and, once ``finished``, of every file of the final population (``population/...``).

Readers (``report``, ``plot``, ``export``, ``match``, ``load_run``, ``init-study`` and
``--resume``) open a run with :func:`open_run`, which checks ``config.json`` and the
metrics against the manifest, and read every other file through :meth:`RunFiles.read`,
which checks its bytes against the manifest before they are parsed (one read: what is
checked is what is parsed). A difference is a :class:`RunIntegrityError` naming the
file and what differs. Files the manifest does not list are never read: they are left
over from a write that a kill interrupted, or were added by hand.

The manifest is written after the files it lists, and files are removed (old
checkpoints pruned) only after a manifest that no longer lists them, so at every moment
the manifest on disk describes files that exist. A reader of a live run that finds a
listed file gone (pruned after it read the manifest) reads the new manifest and starts
again (:func:`read_with_retry`).

A run written before manifests existed gets one on first read, vouching for what the
directory holds then, with a warning; where the directory cannot be written, the
manifest is kept in memory for that read only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from fusion_psro.experiments.rundir import (
    CONFIG_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    POPULATION_DIR,
    RunDirectoryError,
    check_iterations,
    read_config_record,
)
from fusion_psro.files import write_json_atomic
from fusion_psro.psro.records import IterationRecord

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
CHECKPOINT_PREFIX = "checkpoints/"
POPULATION_PREFIX = POPULATION_DIR + "/"

T = TypeVar("T")


class RunIntegrityError(RunDirectoryError):
    """A run directory's files differ from what its ``manifest.json`` vouches for, or are damaged."""


class ListedFileMissingError(RunIntegrityError):
    """A file the manifest lists is gone (pruned by a live run after the manifest was read, or deleted)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config_sha256(record: Any) -> str:
    """The sha256 of a ``config.json`` record: its JSON with sorted keys, so formatting does not count."""
    return sha256_bytes(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())


@dataclasses.dataclass
class Manifest:
    """What ``manifest.json`` holds; see the module docstring."""

    config_sha256: str
    config: Any
    rows: int
    metrics_sha256: str
    members: list[int]
    finished: bool
    files: dict[str, str]
    format: int = MANIFEST_FORMAT

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: Path) -> Manifest:
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(data, dict) or sorted(data) != sorted(names):
            raise RunIntegrityError(f"{where} is damaged (not the fields of a manifest); `fusion-psro repair` "
                                    "cannot rebuild it: rerun the run with --overwrite")
        manifest = cls(**data)
        if manifest.format != MANIFEST_FORMAT:
            raise RunIntegrityError(f"{where} has manifest format {manifest.format!r}; this version of fusion-psro "
                                    f"reads format {MANIFEST_FORMAT}")
        ok = (isinstance(manifest.rows, int) and not isinstance(manifest.rows, bool) and manifest.rows >= 0
              and isinstance(manifest.files, dict) and all(isinstance(v, str) for v in manifest.files.values())
              and isinstance(manifest.members, list) and isinstance(manifest.finished, bool)
              and isinstance(manifest.config_sha256, str) and isinstance(manifest.metrics_sha256, str))
        if not ok:
            raise RunIntegrityError(f"{where} is damaged (a field of the wrong type); rerun the run with --overwrite")
        return manifest

    def write(self, run_dir: Path) -> None:
        """Write ``run_dir/manifest.json`` atomically; a full disk is a :class:`RunDirectoryError`."""
        try:
            write_json_atomic(Path(run_dir) / MANIFEST_FILE, self.to_json(), indent=1)
        except OSError as exc:
            raise RunDirectoryError(f"cannot write {Path(run_dir) / MANIFEST_FILE}: {exc.strerror or exc}; what was "
                                    "recorded before is kept") from None


def read_manifest(run_dir: Path) -> Manifest | None:
    """The manifest of ``run_dir``; None if it has none (a run written before manifests)."""
    path = Path(run_dir) / MANIFEST_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunIntegrityError(f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    return Manifest.from_json(data, path)


# --- metrics rows -------------------------------------------------------------------------

#: Numbers every metrics row holds; each must be finite, except the two exact ones, which are
#: NaN together where the game is too large to evaluate exactly.
_FINITE = ("wall_s", "iteration_s", "fusion_s", "meta_game_value")
_EXACT = ("exploitability", "nash_conv")
#: Numbers a row may hold; when present they must be finite.
_OPTIONAL_FINITE = ("checkpoint_s", "approx_s", "approx_exploitability")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Every field of the metrics schema (:class:`~fusion_psro.psro.records.IterationRecord`).
_SCHEMA = tuple(f.name for f in dataclasses.fields(IterationRecord) if f.name != "extra")


def check_row(row: dict[str, Any], where: str) -> None:
    """:class:`RunIntegrityError` unless ``row`` holds every field of the schema, and every number a
    report or reader uses, finite."""
    missing = [key for key in _SCHEMA if key not in row]
    if missing:
        raise RunIntegrityError(f"{where} has no {', '.join(map(repr, missing))}; the file was edited or damaged")
    for key in ("episodes", *_FINITE, *_EXACT, *_OPTIONAL_FINITE):
        if key in _OPTIONAL_FINITE and row.get(key) is None:
            continue
        if key not in row:
            raise RunIntegrityError(f"{where} has no {key!r}; the file was edited or damaged")
        value = row[key]
        if not _number(value):
            raise RunIntegrityError(f"{where}: {key} is {value!r}, not a number; the file was edited or damaged")
        if key in _EXACT:
            continue
        if not math.isfinite(value) or (key == "episodes" and (value < 0 or value != int(value))):
            raise RunIntegrityError(f"{where}: {key} is {value!r}; the file was edited or damaged")
    exploitability, nash_conv = row["exploitability"], row["nash_conv"]
    both_nan = math.isnan(exploitability) and math.isnan(nash_conv)
    if not both_nan and not (math.isfinite(exploitability) and math.isfinite(nash_conv)
                             and math.isclose(2 * exploitability, nash_conv, rel_tol=1e-9, abs_tol=1e-12)):
        raise RunIntegrityError(f"{where}: exploitability {exploitability!r} is not NashConv / 2 "
                                f"(NashConv {nash_conv!r}); the file was edited or damaged")
    _check_meta_strategies(row, where)


def _check_meta_strategies(row: dict[str, Any], where: str) -> None:
    sizes, sigma = row.get("population_sizes"), row.get("meta_strategies")
    shaped = (isinstance(sizes, list) and len(sizes) == 2 and all(_number(s) and s >= 1 for s in sizes)
              and isinstance(sigma, list) and len(sigma) == 2
              and all(isinstance(w, list) and len(w) == s for w, s in zip(sigma, sizes)))
    if not shaped:
        raise RunIntegrityError(f"{where}: population_sizes {sizes!r} and meta_strategies do not fit (one weight "
                                "per member of each player); the file was edited or damaged")
    for player, weights in enumerate(sigma):
        if not all(_number(w) and math.isfinite(w) and w >= -1e-9 for w in weights) or abs(sum(weights) - 1) > 1e-6:
            raise RunIntegrityError(f"{where}: player {player}'s meta-strategy is not a probability vector; "
                                    "the file was edited or damaged")


def _metrics_lines(run_dir: Path) -> list[bytes]:
    """The complete lines (ending in a newline) of ``metrics.jsonl``, each with its newline."""
    path = run_dir / METRICS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunIntegrityError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    return [line + b"\n" for line in lines[:-1]]  # the last piece is "" or a line cut short by a kill


def parse_rows(lines: list[bytes], run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``lines`` (see :func:`_metrics_lines`), each checked (:func:`check_row`), in order 1..N."""
    rows = []
    for number, line in enumerate(lines, start=1):
        where = f"{run_dir / METRICS_FILE} line {number}"
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            row = None
        if not isinstance(row, dict):
            raise RunIntegrityError(f"{where} is not a JSON object; the file was edited or damaged")
        check_row(row, where)
        rows.append(row)
    check_iterations(rows, run_dir)
    return rows


def _vouched_rows(run_dir: Path, manifest: Manifest) -> list[dict[str, Any]]:
    lines = _metrics_lines(run_dir)
    path = run_dir / METRICS_FILE
    if len(lines) < manifest.rows:
        raise RunIntegrityError(f"{path} holds {len(lines)} complete rows; {MANIFEST_FILE} vouches for "
                                f"{manifest.rows} (rows were deleted or the file was cut short)")
    if manifest.finished and len(lines) > manifest.rows:
        parse_rows(lines, run_dir)  # what is wrong with the rows themselves, if anything (two writers: 1, 2, 2)
        raise RunIntegrityError(f"{path} holds {len(lines)} rows; the finished run's {MANIFEST_FILE} vouches for "
                                f"{manifest.rows} (rows were added)")
    # Rows past the manifest's count: being written by a live run, or left by a kill; not read.
    rows = parse_rows(lines[:manifest.rows], run_dir)
    if sha256_bytes(b"".join(lines[:manifest.rows])) != manifest.metrics_sha256:
        raise RunIntegrityError(f"{path}: its {manifest.rows} rows differ from what {MANIFEST_FILE} vouches for "
                                "(the file was edited)")
    sizes = rows[-1]["population_sizes"] if rows else None
    if rows and list(sizes) != list(manifest.members):
        raise RunIntegrityError(f"{path}: the last row's population sizes {sizes} are not the {manifest.members} "
                                f"members {MANIFEST_FILE} vouches for")
    return rows


# --- opening a run ------------------------------------------------------------------------

@dataclasses.dataclass
class RunFiles:
    """A run directory checked against its manifest: its config, its vouched rows, and a reader of its files."""

    path: Path
    record: dict[str, Any]
    rows: list[dict[str, Any]]
    manifest: Manifest

    def listed(self, prefix: str) -> dict[str, str]:
        """The files the manifest lists under ``prefix`` (relative path -> sha256)."""
        return {name: digest for name, digest in self.manifest.files.items() if name.startswith(prefix)}

    def read(self, relative: str) -> bytes:
        """The bytes of ``relative`` (a path inside the run directory), checked against the manifest."""
        expected = self.manifest.files.get(relative)
        path = self.path / relative
        if expected is None:
            raise RunIntegrityError(f"{path} is not vouched for by {self.path / MANIFEST_FILE}; it was added by "
                                    "hand or left by an interrupted write")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ListedFileMissingError(f"{path} is missing; {MANIFEST_FILE} vouches for it{self._repair_hint(relative)}"
                                         ) from None
        except OSError as exc:
            raise RunIntegrityError(f"cannot read {path}: {exc.strerror or exc}") from None
        if sha256_bytes(data) != expected:
            raise RunIntegrityError(f"{path} differs from what {MANIFEST_FILE} vouches for (sha256 "
                                    f"{sha256_bytes(data)[:12]}…, expected {expected[:12]}…): edited or damaged"
                                    f"{self._repair_hint(relative)}")
        return data

    def _repair_hint(self, relative: str) -> str:
        if relative.startswith(POPULATION_PREFIX):
            return f"; `fusion-psro repair {self.path}` restores it from the checkpoint if that holds a good copy"
        return ""


def open_run(run_dir: Path | str, *, allow_more_iterations: bool = False) -> RunFiles:
    """Open ``run_dir``: its ``config.json`` and the metrics rows its manifest vouches for, both checked.

    A run without a manifest (written before manifests existed) gets one now, with a
    warning (:func:`adopt_legacy_run`). ``allow_more_iterations`` accepts a ``config.json``
    that differs from the manifest's only in the number of iterations and the command
    (``--resume --iterations``, interrupted between writing the two).
    """
    path = Path(run_dir)
    record = read_config_record(path)
    manifest = read_manifest(path)
    if manifest is None:
        _check_not_deleted(path, record)
        manifest = adopt_legacy_run(path, record)
    _check_config(path, record, manifest, allow_more_iterations)
    return RunFiles(path, record, _vouched_rows(path, manifest), manifest)


def _check_not_deleted(path: Path, record: dict[str, Any]) -> None:
    """A run that says it keeps a manifest (``"integrity"`` in its config) and has files but no manifest lost it."""
    if record.get("integrity") != MANIFEST_FILE:
        return  # written before manifests
    written = [name for name in (METRICS_FILE, POPULATION_DIR, "checkpoints")
               if (path / name).exists() and ((path / name).is_file() and (path / name).stat().st_size
                                              or (path / name).is_dir() and any((path / name).iterdir()))]
    if written:
        raise RunIntegrityError(f"{path / MANIFEST_FILE} is missing, but the run keeps one and has written "
                                f"{', '.join(written)}: it was deleted, so nothing vouches for the files. Rerun the run "
                                "with --overwrite")


def _check_config(path: Path, record: dict[str, Any], manifest: Manifest, allow_more_iterations: bool) -> None:
    if config_sha256(record) == manifest.config_sha256:
        return
    then = manifest.config if isinstance(manifest.config, dict) else {}
    if allow_more_iterations and _without_length(record) == _without_length(then):
        return
    settings, made = record.get("psro"), then.get("psro") if isinstance(then.get("psro"), dict) else {}
    missing = "(none)"
    changed = sorted(k for k in set(settings) | set(made) if settings.get(k, missing) != made.get(k, missing))
    if changed:
        shown = "; ".join(f"{k} {settings.get(k, missing)!r} (the run was made with {made.get(k, missing)!r})"
                          for k in changed[:4])
        what = f"its settings changed: {shown}"
    else:
        keys = sorted(k for k in set(record) | set(then) if record.get(k) != then.get(k)) or ["its JSON"]
        what = f"{', '.join(keys)} changed"
    raise RunIntegrityError(f"{path / CONFIG_FILE} differs from what {MANIFEST_FILE} vouches for: {what}. "
                            "Only --resume --iterations N may change a run's settings")


def _without_length(record: dict[str, Any]) -> dict[str, Any]:
    """A config record without what ``--resume --iterations`` changes: the number of iterations and the command."""
    psro = record.get("psro")
    rest = {k: v for k, v in record.items() if k != "command"}
    if isinstance(psro, dict):
        rest["psro"] = {k: v for k, v in psro.items() if k != "iterations"}
    return rest


def read_with_retry(run_dir: Path | str, read: Callable[[RunFiles], T], *, attempts: int = 20,
                    **open_options: Any) -> T:
    """``read(open_run(run_dir))``, opened again while a live run prunes a listed file away under it.

    A listed file that is gone while the manifest is unchanged was deleted: that is an error.
    """
    last: ListedFileMissingError | None = None
    for _ in range(attempts):
        files = open_run(run_dir, **open_options)
        try:
            return read(files)
        except ListedFileMissingError as exc:
            last = exc
            if read_manifest(files.path) == files.manifest:
                raise
            time.sleep(0.05)
    raise last  # type: ignore[misc]


# --- writing ------------------------------------------------------------------------------

class ManifestWriter:
    """Keeps a run's manifest: the config it was made with, its metrics rows, and the files it keeps.

    :meth:`row_appended` takes each metrics line as written; :meth:`commit` writes the manifest.
    """

    def __init__(self, run_dir: Path, record: dict[str, Any], lines: Iterable[bytes] = (),
                 members: list[int] | None = None):
        self.run_dir = Path(run_dir)
        self.record = record
        self._metrics = hashlib.sha256()
        self.rows = 0
        for line in lines:
            self.row_appended(line)
        self.members = list(members or [0, 0])

    def row_appended(self, line: bytes) -> None:
        self._metrics.update(line)
        self.rows += 1

    def build(self, files: dict[str, str], members: list[int], *, finished: bool = False) -> Manifest:
        """The manifest vouching for the rows so far, ``files`` and ``members``."""
        self.members = list(members)
        return Manifest(config_sha256=config_sha256(self.record), config=self.record, rows=self.rows,
                        metrics_sha256=self._metrics.hexdigest(), members=self.members, finished=finished,
                        files=dict(sorted(files.items())))

    def commit(self, files: dict[str, str], members: list[int], *, finished: bool = False) -> Manifest:
        """Write the manifest vouching for the rows so far, ``files`` and ``members``; returns it."""
        manifest = self.build(files, members, finished=finished)
        manifest.write(self.run_dir)
        return manifest


def adopt_legacy_run(run_dir: Path, record: dict[str, Any]) -> Manifest:
    """A manifest for a run written before manifests: vouching for what ``run_dir`` holds now.

    Written to ``run_dir`` with a warning; kept in memory only where it cannot be written.
    """
    lines = _metrics_lines(run_dir)
    rows = parse_rows(lines, run_dir)
    files = {}
    for sub in (POPULATION_DIR, "checkpoints"):
        root = run_dir / sub
        if root.is_dir():
            for file in sorted(root.rglob("*")):
                if file.is_file() and not file.name.startswith("."):
                    files[file.relative_to(run_dir).as_posix()] = sha256_bytes(file.read_bytes())
    finished = all(f"{POPULATION_PREFIX}player{p}.npz" in files for p in range(2))
    members = list(rows[-1]["population_sizes"]) if rows else [0, 0]
    manifest = ManifestWriter(run_dir, record, lines).build(files, members, finished=finished)
    try:
        manifest.write(run_dir)
        log.warning("%s has no %s (written before fusion-psro kept one); wrote one vouching for what it holds now",
                    run_dir, MANIFEST_FILE)
    except RunDirectoryError:
        log.warning("%s has no %s (written before fusion-psro kept one) and cannot be written; its files are read "
                    "unchecked", run_dir, MANIFEST_FILE)
    return manifest


__all__ = ["MANIFEST_FILE", "Manifest", "ManifestWriter", "RunFiles", "RunIntegrityError", "check_row",
           "open_run", "read_manifest", "read_with_retry", "sha256_bytes"]
