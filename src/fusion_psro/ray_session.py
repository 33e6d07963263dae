"""Starting, joining and stopping Ray for this project's parallel work.

Both kinds of parallel work use it: sweeps and studies (:mod:`fusion_psro.experiments.parallel`)
and the tasks of one run (:mod:`fusion_psro.psro.executors`). :func:`check_ray_address`
fails fast on a cluster address that does not answer; :func:`ray_session` starts a local
Ray (or joins a cluster) and shuts it down however the driver ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from fusion_psro.errors import ConfigError


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


@contextlib.contextmanager
def ray_session(ray, workers: int, address: str | None) -> Iterator[None]:
    """Ray started (or joined) for the tasks, and shut down however the driver ends.

    A local Ray uses Ray's token authentication (its default for a new cluster) unless
    ``RAY_AUTH_MODE`` says otherwise; the mode is set for the start and put back after,
    and Ray's per-process cache of it is refreshed on both sides, so a mode pinned by
    someone else (a test, an earlier cluster) neither breaks the start nor outlives it,
    and Ray has no default to warn about. A SIGTERM to the driver shuts Ray down like
    Ctrl-C; a reaper process (:mod:`fusion_psro.ray_reaper`) stops what Ray leaves
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
    script = Path(__file__).with_name("ray_reaper.py")
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


__all__ = ["check_ray_address", "ray_session"]
