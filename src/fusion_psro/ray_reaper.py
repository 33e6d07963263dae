"""Stops what is left of a local Ray cluster once the process that started it is gone.

Run as a script (``python reaper.py``, standard library only, so it starts in
milliseconds) by :mod:`fusion_psro.ray_session`, with a pipe from the driver as
its standard input. The driver writes the Ray session's name (``session_2026-...``) to
the pipe once Ray has started, and ``done`` after Ray has shut down. Until then, the reaper
notes every process whose command line names the session, and all their descendants (the
raylet's agents and workers rename themselves ``ray::...``, so they are found through
their parents). If the pipe closes without ``done`` (the driver died, ``kill -9``
included), it waits for what Ray stops by itself, then kills with SIGKILL the noted
processes that are still alive: after a driver is
killed, Ray's dashboard and runtime-env agents wait forever on the dead GCS and ignore
SIGTERM. A process is killed only if its start time is the one noted, so a reused process
id is never hit. Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

#: Seconds between looks at the process table, and given to Ray's own shutdown.
INTERVAL = 1.0
GRACE = 2.0


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, start time in clock ticks, command line) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (name) "
        table[int(entry.name)] = (int(fields[1]), int(fields[19]), cmdline)
    return table


def session_processes(session: str, table: dict[int, tuple[int, int, str]]) -> dict[int, int]:
    """The processes of a Ray session (their command lines name it) and their descendants: pid -> start time."""
    found = {pid for pid, (_, _, cmdline) in table.items() if session in cmdline and pid != os.getpid()}
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    pending = list(found)
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return {pid: table[pid][1] for pid in found}


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the driver
    lines: list[str] = []
    buffer, noted = b"", {}
    while "done" not in lines:
        ready, _, _ = select.select([sys.stdin], [], [], INTERVAL)
        if ready:
            data = os.read(sys.stdin.fileno(), 4096)
            if not data:
                break  # the driver is gone
            buffer += data
            *complete, buffer = buffer.split(b"\n")
            lines += [line.decode(errors="replace").strip() for line in complete]
        sessions = [line for line in lines if line.startswith("session_")]
        if sessions:
            noted.update(session_processes(sessions[-1], _processes()))
    if "done" in lines or not noted:
        return
    time.sleep(GRACE)
    table = _processes()
    for pid, started in noted.items():
        if pid in table and table[pid][1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    main()
