"""Checkpoints after every iteration, and resuming a run from the last good one.

Layout inside a run directory::

    checkpoints/
      members/p{p}-m{k:04d}-i{iteration:05d}.safetensors   one file per member version
      iteration-{n:05d}.npz                                  the loop's state after iteration n

A member file holds the member's tabular policy and, for learned oracles, its network
parameters; it is written once, when the member is created (P-PSRO's active learners get
a new file each iteration they train). A checkpoint file holds the meta-game matrix, the
meta-strategies and a JSON record of everything else: counters, which member file is each
population slot, P-PSRO's active learners, the last best responses. Every file is written
to a temporary name and renamed, so a crash mid-write leaves the previous checkpoint
usable; the two most recent checkpoints are kept, and resuming falls back to the older one
if the newer cannot be read.

The loop draws every random number from seeds derived from (run seed, iteration, player,
slot), so restoring this state is enough to continue exactly as an uninterrupted run. The
variant's own state (P-PSRO's active learners, say) is what its ``state_dict`` returns,
saved and handed back to its ``load_state_dict`` without this module knowing its fields.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from fusion_psro.experiments.rundir import RunDirectoryError
from fusion_psro.files import atomic_path
from fusion_psro.psro.loop import PSRO, PSROState
from fusion_psro.psro.population import Member

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
MEMBERS_DIR = "members"
CHECKPOINT_FORMAT = 2
_POLICY_KEY = "__policy__"
_CHECKPOINT_NAME = re.compile(r"^iteration-(\d{5,})\.npz$")
KEEP_CHECKPOINTS = 2
#: Prefix of the meta-game's own arrays in a checkpoint file (``checkpoint_arrays()``).
_META_PREFIX = "meta_"


class CheckpointError(RunDirectoryError):
    """No usable checkpoint, or one from an incompatible version."""


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path) as tmp:
        write(str(tmp))


class Checkpointer:
    """Writes a checkpoint of a :class:`PSRO` run after each iteration."""

    def __init__(self, run_dir: Path):
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        self.members = self.directory / MEMBERS_DIR
        self.members.mkdir(parents=True, exist_ok=True)
        # Member objects already on disk, by identity -> file name.
        self._written: dict[int, tuple[Member, str]] = {}

    def _member_file(self, player: int, index: int, member: Member, iteration: int) -> str:
        known = self._written.get(id(member))
        if known is not None and known[0] is member:
            return known[1]
        name = f"p{player}-m{index:04d}-i{iteration:05d}.safetensors"
        tensors = {_POLICY_KEY: torch.from_numpy(np.ascontiguousarray(member.policy))}
        if member.parameters is not None:
            tensors.update({k: v.detach().cpu().contiguous() for k, v in member.parameters.items()})
        _atomic_write(self.members / name, lambda tmp: save_file(tensors, tmp, metadata={"origin": member.origin}))
        self._written[id(member)] = (member, name)
        return name

    def save(self, psro: PSRO) -> Path:
        state = psro.state
        files = [
            [self._member_file(p, k, m, state.iteration) for k, m in enumerate(state.populations[p])] for p in range(2)
        ]

        def index_of(player: int, member: Member | None) -> int | None:
            if member is None:
                return None
            return next(k for k, m in enumerate(state.populations[player]) if m is member)

        record = {
            "format": CHECKPOINT_FORMAT,
            "iteration": state.iteration,
            "episodes": state.episodes,
            "wall_s": state.wall_s,
            "members": files,
            "has_parameters": [[m.parameters is not None for m in pop] for pop in state.populations],
            "last_best_response": [index_of(p, state.last_best_response[p]) for p in range(2)],
            "variant": psro.variant.state_dict(psro),
        }
        path = self.directory / f"iteration-{state.iteration:05d}.npz"
        # A meta-game may keep more than its matrix (a sampled one: standard errors, games).
        extra = getattr(state.meta_game, "checkpoint_arrays", dict)()

        def write(tmp: str) -> None:
            with open(tmp, "wb") as handle:
                np.savez(
                    handle,
                    record=np.asarray(json.dumps(record)),
                    matrix=state.meta_game.matrix,
                    sigma0=state.meta_strategies[0],
                    sigma1=state.meta_strategies[1],
                    **{_META_PREFIX + name: value for name, value in extra.items()},
                )

        _atomic_write(path, write)
        self._prune()
        return path

    def _prune(self) -> None:
        checkpoints = sorted(_checkpoints(self.directory))
        for _, old in checkpoints[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
        referenced: set[str] = set()
        for _, path in checkpoints[-KEEP_CHECKPOINTS:]:
            try:
                with np.load(path) as data:
                    record = json.loads(str(data["record"]))
                referenced.update(name for pop in record["members"] for name in pop)
            except _UNREADABLE:
                return  # never delete member files while a kept checkpoint is unreadable
        for member_file in self.members.glob("*.safetensors"):
            if member_file.name not in referenced:
                member_file.unlink(missing_ok=True)
        self._written = {k: v for k, v in self._written.items() if v[1] in referenced}


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return found


def _load_member(path: Path, has_parameters: bool) -> Member:
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    policy = tensors.pop(_POLICY_KEY).numpy().astype(np.float64)
    return Member(policy=policy, parameters=tensors if has_parameters else None, origin=metadata.get("origin", ""))


def _read(path: Path) -> tuple[dict, np.ndarray, tuple[np.ndarray, np.ndarray], list[list[Member]], dict]:
    """A checkpoint file's record, meta-game matrix, meta-strategies, populations and the space's extra arrays."""
    with np.load(path, allow_pickle=False) as data:
        record = json.loads(str(data["record"]))
        matrix, sigma = data["matrix"], (data["sigma0"], data["sigma1"])
        extra = {name[len(_META_PREFIX):]: data[name] for name in data.files if name.startswith(_META_PREFIX)}
    if record.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} was written by checkpoint format {record.get('format')}; this version of fusion-psro "
            f"reads format {CHECKPOINT_FORMAT}. Rerun with the version that wrote it, or start a new run"
        )
    members_dir = path.parent / MEMBERS_DIR
    populations = [
        [_load_member(members_dir / name, has) for name, has in zip(record["members"][p], record["has_parameters"][p])]
        for p in range(2)
    ]
    return record, matrix, sigma, populations, extra


def _restore_from(psro: PSRO, path: Path) -> tuple[PSROState, dict]:
    record, matrix, sigma, populations, extra = _read(path)
    meta_game = psro.space.restore_meta_game([[m.policy for m in pop] for pop in populations], matrix, **extra)
    state = PSROState(
        populations=populations,
        meta_game=meta_game,
        meta_strategies=(np.array(sigma[0]), np.array(sigma[1])),
        iteration=record["iteration"],
        episodes=record["episodes"],
        wall_s=record["wall_s"],
    )
    state.last_best_response = [
        None if index is None else populations[p][index] for p, index in enumerate(record["last_best_response"])
    ]
    return state, record["variant"]


def read_checkpoint(run_dir: Path | str, *, at_most: int | None = None) -> tuple[int, list[list[Member]]]:
    """The iteration and populations of the newest readable checkpoint of ``run_dir``
    (of an iteration up to ``at_most``), without restoring a run; :class:`CheckpointError` if none."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    problems = []
    for iteration, path in sorted(_checkpoints(directory), reverse=True):
        if at_most is not None and iteration > at_most:
            continue
        try:
            return iteration, _read(path)[3]
        except CheckpointError:
            raise
        except _UNREADABLE as exc:
            problems.append(f"{path.name} ({type(exc).__name__}: {exc})")
    raise CheckpointError(f"{run_dir} has no readable checkpoint{': ' + '; '.join(problems) if problems else ''}")


#: What reading a damaged checkpoint raises (truncated zip archives, cut-short arrays, bad JSON, ...).
_UNREADABLE = (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, zipfile.BadZipFile, SafetensorError,
               StopIteration)


def restore_latest(psro: PSRO, run_dir: Path, *, at_most: int | None = None) -> int:
    """Restore ``psro`` to the newest readable checkpoint of ``run_dir``; return its iteration.

    Only checkpoints of iterations up to ``at_most`` are considered (the last iteration
    whose metrics row was recorded); ``at_most=0`` leaves ``psro`` in its initial state and
    returns 0. A newest checkpoint that cannot be read (a crash while writing it, a
    damaged or truncated file) is skipped with a warning in favour of the previous one.
    Raises :class:`CheckpointError` when none is usable.
    """
    if at_most == 0:
        return 0
    directory = Path(run_dir) / CHECKPOINT_DIR
    candidates = sorted(((i, p) for i, p in _checkpoints(directory) if at_most is None or i <= at_most),
                        reverse=True)
    if not candidates:
        raise CheckpointError(f"{run_dir} has no checkpoints to resume from (looked in {directory})")
    problems = []
    for iteration, path in candidates:
        try:
            psro.state, variant_state = _restore_from(psro, path)
            psro.variant.load_state_dict(psro, variant_state)
            if problems:
                log.warning("resuming from %s; skipped unreadable %s", path.name, "; ".join(problems))
            return iteration
        except CheckpointError:
            raise
        except _UNREADABLE as exc:
            problems.append(f"{path.name} ({type(exc).__name__}: {exc})")
    raise CheckpointError(
        f"no usable checkpoint in {directory}: {'; '.join(problems)}. The run's metrics.jsonl is intact; "
        "start a new run (or --overwrite this one) to recompute"
    )


__all__ = ["CHECKPOINT_DIR", "CheckpointError", "Checkpointer", "read_checkpoint", "restore_latest"]
