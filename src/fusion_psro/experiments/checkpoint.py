"""Checkpoints after every iteration, and resuming a run from the last good one.

Layout inside a run directory::

    checkpoints/
      members/p{p}-m{k:04d}-i{iteration:05d}.safetensors   one file per member version
      iteration-{n:05d}.npz                                  the loop's state after iteration n

A member file holds the member's tabular policy and, for learned oracles, its network
parameters (a member without parameters is written and read without PyTorch); it is written once, when the member is created (P-PSRO's active learners get
a new file each iteration they train). A checkpoint file holds the meta-game matrix, the
meta-strategies and a JSON record of everything else: counters, which member file is each
population slot, P-PSRO's active learners, the last best responses. Every file is written
to a temporary name and renamed, so a crash mid-write leaves the previous checkpoint
usable; the two most recent checkpoints are kept (pruned only after the run's manifest,
:mod:`fusion_psro.experiments.manifest`, stops listing them), every file is read through
the manifest, and resuming falls back to the older checkpoint if the newer differs from
what the manifest vouches for or cannot be read.

The loop draws every random number from seeds derived from (run seed, iteration, player,
slot), so restoring this state is enough to continue exactly as an uninterrupted run. The
variant's own state (P-PSRO's active learners, say) is what its ``state_dict`` returns,
saved and handed back to its ``load_state_dict`` without this module knowing its fields.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import zipfile
from pathlib import Path

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from fusion_psro.experiments.manifest import ListedFileMissingError, RunFiles, RunIntegrityError, sha256_bytes
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


def _write_bytes(path: Path, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; returns its sha256. A full disk is a :class:`RunDirectoryError`."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise RunDirectoryError(f"cannot write {path}: {exc.strerror or exc}; what was recorded before is kept "
                                f"(free space, then `fusion-psro run --resume {path.parent.parent}`)") from None
    return sha256_bytes(data)


def _serialized(save, what: Path) -> bytes:
    """``save()``'s bytes; a serializer's own error (safetensors wraps I/O errors) is a :class:`RunDirectoryError`."""
    try:
        return save()
    except (OSError, SafetensorError) as exc:
        raise RunDirectoryError(f"cannot write {what}: {exc}; what was recorded before is kept") from None


class Checkpointer:
    """Writes a checkpoint of a :class:`PSRO` run after each iteration, and knows the files each one uses.

    :meth:`save` writes the iteration's files; once the manifest vouches for them
    (:meth:`vouched`), :meth:`prune` removes the checkpoints before the last
    :data:`KEEP_CHECKPOINTS` and the member files no kept checkpoint uses.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.directory = self.run_dir / CHECKPOINT_DIR
        self.members = self.directory / MEMBERS_DIR
        self.members.mkdir(parents=True, exist_ok=True)
        # Member objects already on disk, by identity -> file name.
        self._written: dict[int, tuple[Member, str]] = {}
        #: sha256 of each file written (or adopted), by path relative to the run directory.
        self.hashes: dict[str, str] = {}
        #: The member files each checkpoint uses, by checkpoint file name, oldest first.
        self.references: dict[str, list[str]] = {}

    def adopt(self, files: RunFiles, restored: Restored) -> None:
        """Continue after ``restored`` (a resume): its files are known, its members not written again."""
        self.references[restored.name] = restored.member_files
        for relative in [f"{CHECKPOINT_DIR}/{restored.name}"] + [_member_path(n) for n in restored.member_files]:
            self.hashes[relative] = files.manifest.files[relative]
        for member, name in restored.members:
            self._written[id(member)] = (member, name)

    def _member_file(self, player: int, index: int, member: Member, iteration: int) -> str:
        known = self._written.get(id(member))
        if known is not None and known[0] is member:
            return known[1]
        name = f"p{player}-m{index:04d}-i{iteration:05d}.safetensors"
        data = _serialized(lambda: _member_bytes(member), self.members / name)
        self.hashes[_member_path(name)] = _write_bytes(self.members / name, data)
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
        extra = state.meta_game.checkpoint_arrays()

        def serialize() -> bytes:
            buffer = io.BytesIO()
            np.savez(buffer, record=np.asarray(json.dumps(record)), matrix=state.meta_game.matrix,
                     sigma0=state.meta_strategies[0], sigma1=state.meta_strategies[1],
                     **{_META_PREFIX + name: value for name, value in extra.items()})
            return buffer.getvalue()

        self.hashes[f"{CHECKPOINT_DIR}/{path.name}"] = _write_bytes(path, _serialized(serialize, path))
        self.references.pop(path.name, None)
        self.references[path.name] = [name for pop in files for name in pop]
        return path

    def vouched(self) -> dict[str, str]:
        """The files of the last :data:`KEEP_CHECKPOINTS` checkpoints, with their sha256: what the manifest lists."""
        kept = sorted(self.references)[-KEEP_CHECKPOINTS:]
        names = {f"{CHECKPOINT_DIR}/{name}" for name in kept}
        names.update(_member_path(m) for name in kept for m in self.references[name])
        return {name: self.hashes[name] for name in names}

    def prune(self) -> None:
        """Remove the checkpoints and member files the manifest no longer lists (call after writing it)."""
        kept = sorted(self.references)[-KEEP_CHECKPOINTS:]
        for _, old in _checkpoints(self.directory):
            if old.name not in kept:
                old.unlink(missing_ok=True)
        referenced = {m for name in kept for m in self.references[name]}
        for member_file in self.members.glob("*.safetensors"):
            if member_file.name not in referenced:
                member_file.unlink(missing_ok=True)
        self.references = {name: self.references[name] for name in kept}
        self._written = {k: v for k, v in self._written.items() if v[1] in referenced}
        self.hashes = {k: v for k, v in self.hashes.items()
                       if not k.startswith(f"{CHECKPOINT_DIR}/{MEMBERS_DIR}/") or k.rsplit("/", 1)[1] in referenced}


def _member_path(name: str) -> str:
    return f"{CHECKPOINT_DIR}/{MEMBERS_DIR}/{name}"


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return found


def _listed_checkpoints(files: RunFiles, at_most: int | None) -> list[tuple[int, str]]:
    """The checkpoints the manifest lists (iteration, file name), newest first, up to ``at_most``."""
    found = []
    for relative in files.listed(f"{CHECKPOINT_DIR}/"):
        match = _CHECKPOINT_NAME.match(relative[len(CHECKPOINT_DIR) + 1:])
        if match and (at_most is None or int(match.group(1)) <= at_most):
            found.append((int(match.group(1)), match.group(0)))
    return sorted(found, reverse=True)


def _safetensors_metadata(data: bytes) -> dict:
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    return header.get("__metadata__") or {}


def save_safetensors(tensors: dict, metadata: dict | None = None) -> bytes:
    """The safetensors bytes of ``tensors``: NumPy arrays, or PyTorch tensors (only those load PyTorch)."""
    if all(isinstance(value, np.ndarray) for value in tensors.values()):
        return safetensors.numpy.save(tensors, metadata=metadata)
    from safetensors.torch import save  # noqa: PLC0415

    return save(tensors, metadata=metadata)


def _member_bytes(member: Member) -> bytes:
    """A member file: the policy and, for a member with parameters, its tensors (only those need PyTorch)."""
    policy, metadata = np.ascontiguousarray(member.policy), {"origin": member.origin}
    if member.parameters is None:
        return save_safetensors({_POLICY_KEY: policy}, metadata=metadata)
    import torch  # noqa: PLC0415 (a member with parameters comes from PyTorch)

    tensors = {_POLICY_KEY: torch.from_numpy(policy)}
    tensors.update({k: v.detach().cpu().contiguous() for k, v in member.parameters.items()})
    return save_safetensors(tensors, metadata=metadata)


def _load_member(data: bytes, has_parameters: bool) -> Member:
    metadata = _safetensors_metadata(data)
    if not has_parameters:
        policy = safetensors.numpy.load(data)[_POLICY_KEY].astype(np.float64)
        return Member(policy=policy, parameters=None, origin=metadata.get("origin", ""))
    from safetensors.torch import load  # noqa: PLC0415 (only members with parameters need PyTorch)

    tensors = load(data)
    policy = tensors.pop(_POLICY_KEY).numpy().astype(np.float64)
    return Member(policy=policy, parameters=tensors, origin=metadata.get("origin", ""))


@dataclasses.dataclass
class Restored:
    """A checkpoint read back: its contents, and which member file each member came from."""

    name: str
    record: dict
    matrix: np.ndarray
    sigma: tuple[np.ndarray, np.ndarray]
    populations: list[list[Member]]
    extra: dict
    members: list[tuple[Member, str]]

    @property
    def member_files(self) -> list[str]:
        return [name for _, name in self.members]


def _read(files: RunFiles, name: str) -> Restored:
    """A checkpoint file's record, meta-game matrix, meta-strategies, populations and the space's extra arrays,
    each file checked against the manifest."""
    with np.load(io.BytesIO(files.read(f"{CHECKPOINT_DIR}/{name}")), allow_pickle=False) as data:
        record = json.loads(str(data["record"]))
        matrix, sigma = data["matrix"], (data["sigma0"], data["sigma1"])
        extra = {key[len(_META_PREFIX):]: data[key] for key in data.files if key.startswith(_META_PREFIX)}
    if record.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{files.path / CHECKPOINT_DIR / name} was written by checkpoint format {record.get('format')}; this "
            f"version of fusion-psro reads format {CHECKPOINT_FORMAT}. Rerun with the version that wrote it, or "
            "start a new run"
        )
    members = [[(_load_member(files.read(_member_path(n)), has), n)
                for n, has in zip(record["members"][p], record["has_parameters"][p], strict=True)] for p in range(2)]
    populations = [[m for m, _ in pop] for pop in members]
    if [len(pop) for pop in populations] != [len(s) for s in sigma] or matrix.shape != tuple(map(len, populations)):
        raise RunIntegrityError(f"{files.path / CHECKPOINT_DIR / name}: its meta-game, meta-strategies and "
                                "populations do not fit together; the file is damaged")
    return Restored(name, record, matrix, sigma, populations, extra, [m for pop in members for m in pop])


def _restore_from(psro: PSRO, restored: Restored) -> tuple[PSROState, dict]:
    record, populations = restored.record, restored.populations
    meta_game = psro.space.restore_meta_game([[m.policy for m in pop] for pop in populations], restored.matrix,
                                             **restored.extra)
    state = PSROState(
        populations=populations,
        meta_game=meta_game,
        meta_strategies=(np.array(restored.sigma[0]), np.array(restored.sigma[1])),
        iteration=record["iteration"],
        episodes=record["episodes"],
        wall_s=record["wall_s"],
    )
    state.last_best_response = [
        None if index is None else populations[p][index] for p, index in enumerate(record["last_best_response"])
    ]
    return state, record["variant"]


def read_checkpoint(files: RunFiles, *, at_most: int | None = None) -> tuple[int, list[list[Member]]]:
    """The iteration and populations of the newest good checkpoint of an opened run (:func:`open_run`)
    (of an iteration up to ``at_most``), without restoring a run; :class:`CheckpointError` if none.

    A checkpoint that differs from what the manifest vouches for, or cannot be read, is
    skipped with a warning; a file pruned away by a live run under the reader raises
    :class:`~fusion_psro.experiments.manifest.ListedFileMissingError` (to open the run again).
    """
    problems = []
    for iteration, name in _listed_checkpoints(files, at_most):
        try:
            restored = _read(files, name)
        except (CheckpointError, ListedFileMissingError):
            raise
        except (RunIntegrityError, *_UNREADABLE) as exc:
            problems.append(_problem(name, exc))
            continue
        if problems:
            log.warning("%s: read the checkpoint of iteration %d; skipped %s", files.path, iteration, "; ".join(problems))
        return iteration, restored.populations
    raise CheckpointError(f"{files.path} has no good checkpoint{': ' + '; '.join(problems) if problems else ''}")


def _problem(name: str, exc: BaseException) -> str:
    return f"{name} ({exc if isinstance(exc, RunIntegrityError) else f'{type(exc).__name__}: {exc}'})"


#: What reading a damaged checkpoint raises (truncated zip archives, cut-short arrays, bad JSON, ...).
_UNREADABLE = (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, zipfile.BadZipFile, SafetensorError,
               StopIteration)


def restore_latest(psro: PSRO, files: RunFiles, *, at_most: int | None = None) -> Restored | None:
    """Restore ``psro`` to the newest good checkpoint of an opened run (:func:`open_run`); returns it.

    Only checkpoints the manifest lists, of iterations up to ``at_most`` (the last
    iteration whose metrics row is vouched for), are considered; ``at_most=0`` leaves
    ``psro`` in its initial state and returns None. A newest checkpoint that differs from
    the manifest or cannot be read is skipped with a warning in favour of the previous one
    (the run then recomputes the iterations after it, to the same result). Raises
    :class:`CheckpointError` when none is usable.
    """
    if at_most == 0:
        return None
    candidates = _listed_checkpoints(files, at_most)
    if not candidates:
        raise CheckpointError(f"{files.path} has no checkpoints to resume from (looked in {files.path / CHECKPOINT_DIR})")
    problems = []
    for iteration, name in candidates:
        try:
            restored = _read(files, name)
            psro.state, variant_state = _restore_from(psro, restored)
            psro.variant.load_state_dict(psro, variant_state)
        except CheckpointError:
            raise
        except (RunIntegrityError, *_UNREADABLE) as exc:
            problems.append(_problem(name, exc))
            continue
        if problems:
            log.warning("resuming from %s; skipped unreadable %s", name, "; ".join(problems))
        return restored
    raise CheckpointError(
        f"no usable checkpoint in {files.path / CHECKPOINT_DIR}: {'; '.join(problems)}. The run's metrics.jsonl is "
        "intact; start a new run (or --overwrite this one) to recompute"
    )


__all__ = ["CHECKPOINT_DIR", "CheckpointError", "Checkpointer", "Restored", "read_checkpoint", "restore_latest"]
