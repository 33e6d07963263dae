"""Independent tasks (sweep cells, study cells) run in parallel on Ray, local or a cluster.

:func:`run_tasks` starts a fresh local Ray with ``workers`` CPUs (``ray.init(address=
"local")``, so a ``RAY_ADDRESS`` in the environment never redirects a local run) or joins
the cluster at ``address`` after checking, within seconds, that something answers there.
Each task takes one CPU; a task that fails is reported with its error, in one line, and the
others go on. With one local worker the tasks run in this process, one after the other,
without Ray. A local Ray is shut down however the driver ends (see :func:`_ray_session`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from fusion_psro.errors import ConfigError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TaskOutcome:
    """What one task returned, or the one-line error it failed with."""

    result: Any = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast, with a clear error, if nothing answers at a Ray ``HOST:PORT``."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\]]+?)\]?:(\d+)", address.strip())
    if not match:
        raise ConfigError(f"Ray address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379)")
    host, port = match.group(1), int(match.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at {host}:{port} ({exc.strerror or exc}); start one with "
            f"`ray start --head --port {port}` or leave out --address to run locally"
        ) from None


def run_tasks(function: Callable[..., Any], arguments: Sequence[tuple], *, workers: int, address: str | None = None,
              progress: bool = True, desc: str = "tasks", describe: Callable[[Any], str] | None = None,
              ) -> list[TaskOutcome]:
    """``function(*args)`` for every tuple of ``arguments``, in parallel; outcomes in argument order.

    ``describe(result)`` is shown beside the progress bar as each task finishes.
    """
    if address is not None:
        check_ray_address(address)
    outcomes = [TaskOutcome() for _ in arguments]
    with tqdm(total=len(arguments), desc=desc, unit="task", disable=not progress, dynamic_ncols=True) as bar:
        def finished(index: int, outcome: TaskOutcome) -> None:
            outcomes[index] = outcome
            if describe is not None and not outcome.failed:
                bar.set_postfix_str(describe(outcome.result), refresh=False)
            bar.update(1)

        if not arguments:
            return outcomes
        if address is None and workers == 1:
            for index, args in enumerate(arguments):
                finished(index, _call(function, args))
        else:
            _run_on_ray(function, arguments, workers, address, finished)
    return outcomes


def _call(function: Callable[..., Any], args: tuple) -> TaskOutcome:
    try:
        return TaskOutcome(result=function(*args))
    except Exception as exc:  # a failed task is reported with the others' results, in one line
        return TaskOutcome(error=one_line(exc))


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``: how a failed task is reported."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else repr(exc)}"


def _run_on_ray(function, arguments, workers: int, address: str | None, finished) -> None:
    import ray  # noqa: PLC0415 (only parallel runs need Ray)

    with _ray_session(ray, workers, address):
        remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        pending = {remote.remote(function, args): index for index, args in enumerate(arguments)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                finished(index, ray.get(done[0]))
            except ray.exceptions.RayError as exc:  # the worker died (killed, out of memory)
                finished(index, TaskOutcome(error=one_line(exc)))


@contextlib.contextmanager
def _ray_session(ray, workers: int, address: str | None) -> Iterator[None]:
    """Ray started (or joined) for the tasks, and shut down however the driver ends.

    A local Ray uses Ray's token authentication (its default for a new cluster) unless
    ``RAY_AUTH_MODE`` says otherwise; the mode is set for the start and put back after,
    and Ray's per-process cache of it is refreshed on both sides, so a mode pinned by
    someone else (a test, an earlier cluster) neither breaks the start nor outlives it,
    and Ray has no default to warn about. A SIGTERM to the driver shuts Ray down like
    Ctrl-C; a reaper process (:mod:`fusion_psro.experiments.reaper`) stops what Ray leaves
    behind if the driver is killed outright.
    """
    saved_mode = os.environ.get(_AUTH_MODE)
    if address is None and saved_mode is None:
        os.environ[_AUTH_MODE] = "token"
    _refresh_ray_auth()
    reaper = _start_reaper() if address is None else None
    previous_handler = None
    try:
        if address is not None:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            context = ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                               logging_level=logging.WARNING)
            _tell(reaper, Path(context.address_info["session_dir"]).name)
        previous_handler = _terminate_like_interrupt()  # after ray.init, which installs a handler of its own
        yield
    finally:
        try:
            ray.shutdown()
        finally:
            _tell(reaper, "done", close=True)
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)
            if address is None:
                _restore(_AUTH_MODE, saved_mode)
                _refresh_ray_auth()


_AUTH_MODE = "RAY_AUTH_MODE"


def _refresh_ray_auth() -> None:
    """Make Ray read ``RAY_AUTH_MODE`` again (it caches the mode and the token per process)."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config  # noqa: PLC0415
    except ImportError:  # a Ray without token authentication
        return
    Config.initialize("")  # the mode first, then the token cache (Ray's own order)
    AuthenticationTokenLoader.instance().reset_cache()


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _start_reaper() -> subprocess.Popen | None:
    if not Path("/proc").is_dir():
        return None
    script = Path(__file__).with_name("reaper.py")
    return subprocess.Popen([sys.executable, "-I", str(script)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _tell(reaper: subprocess.Popen | None, line: str, *, close: bool = False) -> None:
    if reaper is None:
        return
    try:
        reaper.stdin.write(line.encode() + b"\n")
        reaper.stdin.flush()
        if close:
            reaper.stdin.close()
            reaper.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        pass


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that Ray is shut down on the way out."""


def _terminate_like_interrupt():
    """Handle SIGTERM by raising :class:`_Terminated`; returns the previous handler (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise _Terminated(f"terminated by signal {signum}")

    return signal.signal(signal.SIGTERM, handler)


__all__ = ["TaskOutcome", "check_ray_address", "run_tasks"]
