"""Independent tasks (sweep cells, study cells) run in parallel on Ray, local or a cluster.

:func:`run_tasks` starts a fresh local Ray with ``workers`` CPUs (``ray.init(address=
"local")``, so a ``RAY_ADDRESS`` in the environment never redirects a local run) or joins
the cluster at ``address`` after checking, within seconds, that something answers there.
Each task takes one CPU; a task that fails is reported with its error and the others go on.
With one local worker the tasks run in this process, one after the other, without Ray.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
from collections.abc import Callable, Sequence
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
    except Exception as exc:  # a failed task is reported with the others' results
        return TaskOutcome(error=f"{type(exc).__name__}: {exc}")


def _run_on_ray(function, arguments, workers: int, address: str | None, finished) -> None:
    import ray  # noqa: PLC0415 (only parallel runs need Ray)

    if address is not None:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        pending = {remote.remote(function, args): index for index, args in enumerate(arguments)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                finished(index, ray.get(done[0]))
            except ray.exceptions.RayError as exc:  # the worker died (killed, out of memory)
                finished(index, TaskOutcome(error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
    finally:
        ray.shutdown()


__all__ = ["TaskOutcome", "check_ray_address", "run_tasks"]
