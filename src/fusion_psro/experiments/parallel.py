"""Independent tasks (sweep cells, study cells) run in parallel on Ray, local or a cluster.

:func:`run_tasks` starts a fresh local Ray with ``workers`` CPUs (``ray.init(address=
"local")``, so a ``RAY_ADDRESS`` in the environment never redirects a local run) or joins
the cluster at ``address`` after checking, within seconds, that something answers there.
Each task takes one CPU; a task that fails is reported with its error, in one line, and the
others go on. With one local worker the tasks run in this process, one after the other,
without Ray. A local Ray is shut down however the driver ends (see :func:`fusion_psro.ray_session.ray_session`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

from fusion_psro.ray_session import check_ray_address, ray_session

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TaskOutcome:
    """What one task returned, or the one-line error it failed with."""

    result: Any = None
    error: str | None = None
    #: A one-line note on how the task ran when it is not the usual way (a batched run whose batched
    #: oracle call failed, so it computed its responses alone), else None.
    warning: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def run_tasks(function: Callable[..., Any], arguments: Sequence[tuple], *, workers: int, address: str | None = None,
              progress: bool = True, desc: str = "tasks", describe: Callable[[Any], str] | None = None,
              on_finish: Callable[[int, TaskOutcome], None] | None = None) -> list[TaskOutcome]:
    """``function(*args)`` for every tuple of ``arguments``, in parallel; outcomes in argument order.

    ``describe(result)`` is shown beside the progress bar as each task finishes;
    ``on_finish(index, outcome)`` is called as each task ends (in this process).
    """
    if address is not None:
        check_ray_address(address)
    outcomes = [TaskOutcome() for _ in arguments]
    with tqdm(total=len(arguments), desc=desc, unit="task", disable=not progress, dynamic_ncols=True) as bar:
        def finished(index: int, outcome: TaskOutcome) -> None:
            outcomes[index] = outcome
            if on_finish is not None:
                on_finish(index, outcome)
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

    with ray_session(ray, workers, address):
        remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        pending = {remote.remote(function, args): index for index, args in enumerate(arguments)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                finished(index, ray.get(done[0]))
            except ray.exceptions.RayError as exc:  # the worker died (killed, out of memory)
                finished(index, TaskOutcome(error=one_line(exc)))


__all__ = ["TaskOutcome", "check_ray_address", "run_tasks"]
