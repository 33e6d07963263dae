"""Where independent work of a PSRO run is computed: in this process, or as Ray tasks.

Three kinds of work are independent of each other and go through a run's executor:

* the best responses a variant plans for one round (:meth:`fusion_psro.psro.variants.Variant.plan`
  returns them as a list: PSRO's two players, PSRO-rN's learners; P-PSRO plans one
  learner a round, because each trains against the learners before it);
* the entries of a new meta-game row or column in sampled play
  (:meth:`fusion_psro.psro.sampled_space.SampledSpace.sample_pairs`);
* the best responses of the approximate exploitability (:mod:`fusion_psro.psro.approximate_exploitability`).

:class:`SerialExecutor` (the default) computes them one after the other in this process.
:class:`RayExecutor` runs them as Ray tasks, on a local Ray with ``workers`` CPUs or on the
cluster at ``address`` (checked within seconds, as ``fusion-psro sweep --address`` is). Every
piece of work is a function of its inputs (its seed included), so the results are the same
whichever executor computes them. A task whose worker dies (killed, out of memory) is run
again (``max_retries``); a task that still fails raises :class:`ExecutorError`, and the
iteration stops before anything is recorded, so its checkpointed predecessor is intact.

A best response runs in a worker on an oracle that the worker builds from the run's
settings (``PSROConfig`` record and the plug-ins that define its components) once, and
keeps for the run's later tasks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fusion_psro import options
from fusion_psro.errors import FusionPSROError
from fusion_psro.ray_session import check_ray_address, ray_session

log = logging.getLogger(__name__)

#: Times a task is run again after its worker died.
TASK_RETRIES = 3


class ExecutorError(FusionPSROError, RuntimeError):
    """Work that failed on a worker (after its retries), or a Ray that cannot be started or reached."""


class SerialExecutor:
    """Everything in this process, in order (the default)."""

    workers = 1

    def map(self, function: Callable[..., Any], arguments: Sequence[tuple],
            on_done: Callable[[], None] | None = None) -> list[Any]:
        """``[function(*args) for args in arguments]``; ``on_done()`` is called (here) as each call ends."""
        results = []
        for args in arguments:
            results.append(function(*args))
            if on_done is not None:
                on_done()
        return results

    def respond(self, run, plans: list) -> list:
        """The responses to ``plans`` (:meth:`fusion_psro.psro.loop.PSRO.respond`), in order."""
        return [run.respond(plan) for plan in plans]

    def close(self) -> None:
        """Nothing to release."""


class RayExecutor(SerialExecutor):
    """Ray tasks: a local Ray with ``workers`` CPUs, or the cluster at ``address``; see the module docstring.

    Ray starts on first use; :meth:`close` shuts it down. With ``plugins``, each worker
    loads those modules first (:func:`fusion_psro.registry.load_plugin`).
    """

    def __init__(self, workers: int = 2, address: str | None = None, plugins: Sequence[str] = ()) -> None:
        options.positive_int(workers, "workers", error=ExecutorError)
        if address is not None:
            check_ray_address(address)
        self.workers, self.address, self.plugins = workers, address, tuple(plugins)
        self._ray = None
        self._session = contextlib.ExitStack()

    def _start(self):
        if self._ray is not None:
            return self._ray
        import ray  # noqa: PLC0415 (only parallel runs need Ray)

        if not ray.is_initialized():  # a Ray someone else started is theirs to stop
            self._session.enter_context(ray_session(ray, self.workers, self.address))
        self._ray = ray
        return ray

    def map(self, function: Callable[..., Any], arguments: Sequence[tuple],
            on_done: Callable[[], None] | None = None) -> list[Any]:
        if len(arguments) < 2:
            return super().map(function, arguments, on_done)
        ray = self._start()
        remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_call_with_plugins)
        futures = [remote.remote(self.plugins, function, args) for args in arguments]
        try:
            pending = list(futures)
            while on_done is not None and pending:
                _, pending = ray.wait(pending, num_returns=1)
                on_done()
            return ray.get(futures)
        except ray.exceptions.RayError as exc:
            cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExecutorError(f"a Ray task failed after {TASK_RETRIES} retries: {type(exc).__name__}: {cause}") from None

    def respond(self, run, plans: list) -> list:
        if len(plans) < 2:
            return super().respond(run, plans)
        prepared = [run.prepare(plan) for plan in plans]
        spec = json.loads(json.dumps(run.config.to_json()))
        # A progress callback lives in this process (the run's progress bar); workers report none.
        requests = [dataclasses.replace(p.request, on_progress=None) for p in prepared]
        results = self.map(remote_best_response, [(spec, request) for request in requests])
        for result in results:  # arrays out of Ray's object store are read-only views
            result.policy = np.array(result.policy)
        return [run.accept(p, result) for p, result in zip(prepared, results)]

    def close(self) -> None:
        if self._ray is not None:
            self._ray = None
            self._session.close()


def _call_with_plugins(plugins: Sequence[str], function: Callable[..., Any], args: tuple) -> Any:
    from fusion_psro.registry import load_plugin  # noqa: PLC0415

    for plugin in plugins:
        load_plugin(plugin)
    return function(*args)


#: Oracles a worker built, by the settings they were built from.
_WORKER_ORACLES: dict[str, Any] = {}


def remote_best_response(config_record: dict[str, Any], request) -> Any:
    """A best response computed by the oracle of the run whose settings are ``config_record``."""
    key = json.dumps(config_record, sort_keys=True)
    oracle = _WORKER_ORACLES.get(key)
    if oracle is None:
        from fusion_psro.psro.config import PSROConfig  # noqa: PLC0415
        from fusion_psro.psro.oracle_factory import make_oracle  # noqa: PLC0415
        from fusion_psro.psro.spaces import make_space  # noqa: PLC0415

        config = PSROConfig.from_record(config_record).resolved()
        oracle = _WORKER_ORACLES[key] = make_oracle(config, make_space(config))
    return oracle.best_response(request)


def make_executor(workers: int = 1, address: str | None = None, plugins: Sequence[str] = ()) -> SerialExecutor:
    """A :class:`RayExecutor` for ``workers > 1`` or an ``address``, else a :class:`SerialExecutor`."""
    if address is None and workers == 1:
        return SerialExecutor()
    return RayExecutor(workers, address, plugins)


__all__ = ["ExecutorError", "RayExecutor", "SerialExecutor", "TASK_RETRIES", "make_executor", "remote_best_response"]
