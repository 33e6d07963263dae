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
import threading
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


class LockstepExecutor:
    """Runs of this process advanced in lockstep, their best responses computed together.

    Each run is an ordinary run (:class:`~fusion_psro.psro.loop.PSRO`, its run directory,
    checkpoints and evaluation its own) that runs in a thread of its own with its own
    executor, a :class:`LockstepRun` of this one. :meth:`run_all` starts the runs' threads
    and coordinates them from the calling thread:

    * the runs take turns (one lock): one run's own work (meta-game, meta-solver, init,
      evaluation, files) runs at a time, as it would alone, so nothing of a run changes
      with the others (not even PyTorch's thread setting, which oracles set and restore);
    * a run's :meth:`LockstepRun.respond` prepares its requests (its init chooses the
      starts), hands them in and waits, giving up its turn;
    * once every run that has not ended waits there, the calling thread computes all the
      requests handed in with one call of the oracle's
      :meth:`~fusion_psro.oracles.base.Oracle.best_responses` (the pg and DQN oracles train them
      through one batched tensor program), and each run takes its own results.

    Threads, not a rewritten loop: every run keeps the loop's code path, so a run's
    directory is exactly a single run's (it resumes alone), and any variant works, however
    many rounds of best responses an iteration has. Requests are batched with those of
    runs that share the oracle and its settings (:func:`oracle_key`); the runs may differ
    in seed, init, variant and meta-solver. A run that fails ends alone (its error is its
    outcome); if a batched call fails, each run computes its own requests again alone,
    so the failure stays with the run whose request caused it. An interrupt (Ctrl-C) in
    the calling thread stops every run at its next hand-in, after which :meth:`run_all`
    raises it. ``device`` replaces the oracle's device setting for the batched calls.
    """

    #: Seconds between looks at an interrupt while the calling thread waits.
    POLL_S = 0.2

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._cv = threading.Condition()
        self._turn = threading.Lock()
        self._live: set[int] = set()
        self._waiting: dict[int, tuple[Any, list]] = {}
        self._results: dict[int, Any] = {}
        self._stopped: BaseException | None = None
        #: Per run (its index in :meth:`run_all`), the first failure of a batched call it was part of.
        self.fallbacks: dict[int, str] = {}

    def run_all(self, functions: Sequence[Callable[[LockstepRun], Any]]) -> list[tuple[Any, BaseException | None]]:
        """``function(executor)`` for every function, each in a thread with its own :class:`LockstepRun`;
        ``(result, None)`` or ``(None, error)`` per function, in order."""
        members = [LockstepRun(self, k) for k in range(len(functions))]
        self._live = {member.index for member in members}
        outcomes: list[tuple[Any, BaseException | None]] = [(None, None)] * len(functions)

        def body(k: int) -> None:
            self._turn.acquire()
            try:
                outcomes[k] = (functions[k](members[k]), None)
            except BaseException as exc:  # noqa: BLE001 (a run's failure is its outcome; the others go on)
                outcomes[k] = (None, exc)
            finally:
                members[k].close()
                self._turn.release()

        threads = [threading.Thread(target=body, args=(k,), name=f"lockstep-run-{k}", daemon=True)
                   for k in range(len(functions))]
        for thread in threads:
            thread.start()
        try:
            self._coordinate()
        except BaseException as exc:
            self._stop(exc)
            for thread in threads:
                while thread.is_alive():
                    thread.join(self.POLL_S)
            raise
        for thread in threads:
            thread.join()
        return outcomes

    def _coordinate(self) -> None:
        while True:
            with self._cv:
                while not self._live or len(self._waiting) < len(self._live):
                    if not self._live:
                        return
                    self._cv.wait(self.POLL_S)
                batch, self._waiting = self._waiting, {}
            while not self._turn.acquire(timeout=self.POLL_S):
                pass  # a run that ended still writes its files
            try:
                results = self._compute(batch)
            finally:
                self._turn.release()
            with self._cv:
                self._results.update(results)
                self._cv.notify_all()

    def _compute(self, batch: dict[int, tuple[Any, list]]) -> dict[int, Any]:
        """Each waiting run's results: one oracle call per group of runs that share an oracle."""
        groups: dict[str, list[int]] = {}
        for index in sorted(batch):  # the runs' order in the batch, not the order their threads handed in
            groups.setdefault(oracle_key(batch[index][0].config), []).append(index)
        results: dict[int, Any] = {}
        for indices in groups.values():
            requests = [p.request for index in indices for p in batch[index][1]]
            oracle = batch[indices[0]][0].oracle
            try:
                answers = oracle.best_responses(requests, device=self.device)
            except Exception as exc:  # noqa: BLE001 (each run computes its own again: the failure stays with its run)
                self._fell_back(indices, exc)
                results.update({index: None for index in indices})
                continue
            check_answers(batch[indices[0]][0], requests, answers)
            for index in indices:
                count = len(batch[index][1])
                results[index], answers = answers[:count], answers[count:]
        return results

    def _fell_back(self, indices: list[int], exc: Exception) -> None:
        """Warn once per run that its batched call failed (with the exception's first line)."""
        cause = (str(exc).splitlines() or [""])[0]
        for index in indices:
            if index not in self.fallbacks:
                log.warning("run %d: a batched oracle call failed (%s: %s); it computes its requests alone",
                            index, type(exc).__name__, cause)
            self.fallbacks.setdefault(index, f"{type(exc).__name__}: {cause}")

    def _hand_in(self, index: int, run, prepared: list) -> list | None:
        """Wait, without the turn, for the results of ``prepared`` (None: compute them alone)."""
        with self._cv:
            if self._stopped is not None:
                raise KeyboardInterrupt("the lockstep runs were stopped") from self._stopped
            self._waiting[index] = (run, prepared)
            self._cv.notify_all()
        self._turn.release()
        try:
            with self._cv:
                while index not in self._results and self._stopped is None:
                    self._cv.wait()
                results = self._results.pop(index, None)
                stopped = self._stopped
        finally:
            self._turn.acquire()
        if stopped is not None:
            raise KeyboardInterrupt("the lockstep runs were stopped") from stopped
        return results

    def _leave(self, index: int) -> None:
        with self._cv:
            self._live.discard(index)
            self._cv.notify_all()

    def _stop(self, reason: BaseException) -> None:
        with self._cv:
            self._stopped = reason
            self._cv.notify_all()


def check_answers(run, requests: list, answers: list) -> None:
    """Refuse an oracle's answer whose length is not that of its requests (zip would drop responses)."""
    if len(answers) != len(requests):
        raise FusionPSROError(f"oracle {run.config.oracle!r} returned {len(answers)} best responses "
                              f"for {len(requests)} requests")


class LockstepRun(SerialExecutor):
    """The executor of one run of a :class:`LockstepExecutor`: best responses go to the batch; other
    independent work (sampled meta-game entries, approximate exploitability) runs here, in order."""

    def __init__(self, owner: LockstepExecutor, index: int) -> None:
        self.owner, self.index = owner, index
        self._closed = False

    def respond(self, run, plans: list) -> list:
        prepared = [run.prepare(plan) for plan in plans]
        results = self.owner._hand_in(self.index, run, prepared)
        if results is None:
            results = [run.oracle.best_response(p.request) for p in prepared]
        check_answers(run, prepared, results)
        return [run.accept(p, result) for p, result in zip(prepared, results)]

    def close(self) -> None:
        """The run asks for no more best responses: the others no longer wait for it."""
        if not self._closed:
            self._closed = True
            self.owner._leave(self.index)


def oracle_key(config) -> str:
    """What runs must share for their best responses to go through one oracle call: the game, how it
    is played (``evaluation``) and the oracle with its settings (``episodes`` feeds a budget)."""
    return json.dumps([config.game, config.evaluation, config.oracle, config.episodes, config.oracle_options],
                      sort_keys=True, default=str)


def make_executor(workers: int = 1, address: str | None = None, plugins: Sequence[str] = ()) -> SerialExecutor:
    """A :class:`RayExecutor` for ``workers > 1`` or an ``address``, else a :class:`SerialExecutor`."""
    if address is None and workers == 1:
        return SerialExecutor()
    return RayExecutor(workers, address, plugins)


__all__ = ["ExecutorError", "LockstepExecutor", "LockstepRun", "RayExecutor", "SerialExecutor", "TASK_RETRIES",
           "make_executor", "oracle_key", "remote_best_response"]
