"""Files written whole or not at all: run configs, checkpoints, study cells, compiled-game caches.

A writer fills a temporary file beside the target; on success the file is flushed to disk,
given the permissions a plain ``open()`` would give it, and renamed onto the target (an
atomic replace on POSIX), so a reader or a crash never sees half a file. On failure the
temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path to write; it replaces ``path`` when the block ends without an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it 0600; a plain open() would not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path | str, data: Any, *, indent: int = 2) -> None:
    """Write ``data`` as JSON (sorted keys, a final newline) to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, sort_keys=True) + "\n")


def check_output_path(path: Path | str, *, suffix_bytes: int = 0) -> Path:
    """``path`` if a command may write there; else an :class:`~fusion_psro.errors.OutputPathError`.

    Refused: a path under ``/dev`` (``--out /dev/null`` would write ``/dev/null.png``), an
    existing device, pipe or socket, and a path component longer than the file system
    allows (checked with ``suffix_bytes`` more, for names the command derives from it, such
    as ``PREFIX.png``). A path that names an existing file where a directory is expected is
    refused by the directory's creation (:func:`fusion_psro.experiments.rundir.make_directory`).
    """
    from fusion_psro.errors import OutputPathError  # noqa: PLC0415

    path = Path(path)
    absolute = Path(os.path.abspath(path))
    for candidate in (absolute, Path(os.path.realpath(absolute))):
        if candidate == Path("/dev") or Path("/dev") in candidate.parents:
            raise OutputPathError(f"{path} is under /dev, where devices live, not files; give a path in a "
                                  "directory of your own, e.g. runs/NAME")
    too_long = name_too_long(absolute, suffix_bytes=suffix_bytes)
    if too_long:
        raise OutputPathError(too_long)
    try:
        mode = os.stat(absolute).st_mode
    except OSError:
        return path
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise OutputPathError(f"{path} exists and is a device, pipe or socket, not a file or directory; give "
                              "another path")
    return path


def name_too_long(path: Path | str, *, suffix_bytes: int = 0) -> str | None:
    """A sentence naming the component of ``path`` longer than its file system allows (with
    ``suffix_bytes`` more on the last one), or None when every name fits."""
    path = Path(path)
    absolute = Path(os.path.abspath(path))
    limit = _name_max(absolute)
    for index, part in enumerate(absolute.parts[1:], start=1):
        size = len(os.fsencode(part)) + (suffix_bytes if index == len(absolute.parts) - 1 else 0)
        if size > limit:
            shown = part if len(part) <= 40 else f"{part[:20]}...{part[-10:]} ({len(part)} characters)"
            where = f"{path}: the name" if len(str(path)) <= 120 else "the path has a name"
            return f"{where} {shown} is too long; this file system allows {limit} bytes per name (file or directory)"
    return None


def _name_max(path: Path) -> int:
    """The longest file name (bytes) of the file system holding ``path``'s nearest existing ancestor."""
    for ancestor in (path, *path.parents):
        try:
            if ancestor.is_dir():
                return os.pathconf(ancestor, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


__all__ = ["atomic_path", "check_output_path", "name_too_long", "write_json_atomic"]
