"""Batched runs: several PSRO runs advanced in lockstep in one process, their best responses
trained together.

A batch is a list of runs that share what one oracle call needs (:data:`SHARED`: the game,
how it is played, the oracle and its settings) and the iteration count (so that they keep
each other company to the end). They may differ in everything else: seed, init (weighting
included), variant, meta-solver. Each run is an ordinary run into its own directory
(:func:`~fusion_psro.experiments.runner.run_psro`), so a batched run's directory is exactly
a single run's: it resumes alone, and ``report``, ``plot`` and ``init-study`` read it
unchanged. Only where its best responses are computed differs
(:class:`~fusion_psro.psro.executors.LockstepExecutor`): an oracle with
:attr:`~fusion_psro.oracles.base.Oracle.batches_responses` trains every run's responses
of an iteration through one tensor program: the pg oracle with the single runs' results
(bit for bit on the CPU where the per-run products go through BLAS; else up to float32
rounding: :meth:`~fusion_psro.oracles.pg.PolicyGradientOracle.best_responses`), the DQN
oracle by the same rule with other samples (:meth:`~fusion_psro.oracles.dqn.DQNOracle.best_responses`:
not the single runs' numbers); other oracles compute them one after the other, as single
runs would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fusion_psro.errors import FusionPSROError
from fusion_psro.experiments.parallel import TaskOutcome, one_line
from fusion_psro.psro.config import PSROConfig

#: Settings every run of a batch shares.
SHARED = ("game", "evaluation", "oracle", "oracle_options", "episodes", "iterations")
#: Values of ``[sweep] device`` (and :func:`run_batch`'s ``device``).
DEVICES = ("auto", "cpu", "cuda")


class BatchError(FusionPSROError, ValueError):
    """Runs that cannot go in one batch, or a device that is not there."""


def batch_key(config: PSROConfig) -> tuple:
    """The values of :data:`SHARED` of ``config``: runs with equal keys can go in one batch."""
    return tuple(repr(getattr(config, name)) for name in SHARED)


def check_batch(configs: Sequence[PSROConfig]) -> None:
    """:class:`BatchError` naming the first setting of :data:`SHARED` on which a run differs from the first."""
    if not configs:
        raise BatchError("a batch needs at least one run")
    first = configs[0]
    for k, config in enumerate(configs[1:], start=1):
        for name in SHARED:
            if getattr(config, name) != getattr(first, name):
                raise BatchError(f"runs of a batch must share {', '.join(SHARED)}; run {k} has {name} "
                                 f"{getattr(config, name)!r}, run 0 has {getattr(first, name)!r}")


def check_device(device: str | None, oracle: str | None = None) -> None:
    """:class:`BatchError` unless ``device`` is None or one of :data:`DEVICES` this machine has, and
    ``oracle`` (a registered name, if given) trains responses batched."""
    if device is None:
        return
    if device not in DEVICES:
        raise BatchError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if oracle is not None:
        from fusion_psro.registry import ORACLES  # noqa: PLC0415

        if not ORACLES.get(oracle).batches_responses:
            raise BatchError(f"device {device!r} applies to oracles that train responses batched; the {oracle} "
                             "oracle computes each run's responses on its own device setting. Leave device out")
    if device == "cuda":
        import torch  # noqa: PLC0415 (a batch trains anyway)

        if not torch.cuda.is_available():
            raise BatchError("device 'cuda' needs CUDA, which this machine (or this PyTorch build) does not have; "
                             "use device = \"cpu\" or \"auto\"")


def run_batch(configs: Sequence[PSROConfig], outs: Sequence[Path | str], *, device: str | None = None,
              cell: Callable[..., Any] | None = None, arguments: Sequence[tuple] | None = None) -> list[TaskOutcome]:
    """Run ``configs`` into ``outs`` as one batch; one outcome per run, in order (a failed run's outcome
    holds its one-line error; the others go on).

    Each run is ``cell(*arguments[k], executor=...)``, by default ``run_psro(config, out,
    progress=False, executor=...)`` (its metrics rows). ``device`` replaces the oracle's
    device setting for the batched training (``"auto"``, ``"cpu"``, ``"cuda"``). Runs
    that do not share :data:`SHARED` are refused (:class:`BatchError`) before anything runs.
    """
    from fusion_psro.psro.executors import LockstepExecutor  # noqa: PLC0415

    configs = [config.resolved() for config in configs]
    if len(outs) != len(configs):
        raise BatchError(f"a batch of {len(configs)} runs needs as many run directories, got {len(outs)}")
    check_batch(configs)
    check_device(device, configs[0].oracle)
    if cell is None:
        cell, arguments = _run, [(config, out) for config, out in zip(configs, outs)]
    executor = LockstepExecutor(device=device)
    functions = [lambda member, args=args: cell(*args, executor=member) for args in arguments]
    outcomes = [TaskOutcome(result=result) if error is None else TaskOutcome(error=one_line(error))
                for result, error in executor.run_all(functions)]
    for index, failure in executor.fallbacks.items():
        outcomes[index].warning = f"a batched oracle call failed ({failure}); the run computed its responses alone"
    return outcomes


def _run(config: PSROConfig, out: Path | str, *, executor) -> list:
    from fusion_psro.experiments.runner import run_psro  # noqa: PLC0415

    return run_psro(config, out, progress=False, executor=executor)


def plan_batches(configs: Sequence[PSROConfig], order: Sequence[int], workers: int) -> list[list[int]]:
    """The runs ``order`` (indices into ``configs``) grouped into batches: runs that share
    :data:`SHARED` go together, in ``order``; a group is split into at most ``workers``
    batches of near-equal size, so that ``workers`` processes share the work."""
    groups: dict[tuple, list[int]] = {}
    for index in order:
        groups.setdefault(batch_key(configs[index]), []).append(index)
    batches = []
    for group in groups.values():
        parts = min(workers, len(group))
        size, extra = divmod(len(group), parts)
        start = 0
        for part in range(parts):
            end = start + size + (part < extra)
            batches.append(group[start:end])
            start = end
    return batches


__all__ = ["BatchError", "DEVICES", "SHARED", "batch_key", "check_batch", "check_device",
           "plan_batches", "run_batch"]
