"""``fusion-psro repair DIR``: restore a finished run's population files from its checkpoint.

A finished run keeps the checkpoint of its last iteration, which holds every member's
policy and parameters. Where a population file differs from what the run's manifest
vouches for (edited, damaged, deleted), the population is rebuilt from that checkpoint
(itself checked against the manifest) and each rebuilt file must have exactly the sha256
the manifest vouches for; only then are the bad files replaced. Anything else (a changed
config, edited metrics, a damaged checkpoint, a run written before population files were
reproducible) is refused with one line: there is no good copy to restore from.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fusion_psro.experiments.checkpoint import CHECKPOINT_DIR, read_checkpoint
from fusion_psro.experiments.manifest import (
    MANIFEST_FILE,
    POPULATION_PREFIX,
    RunFiles,
    RunIntegrityError,
    open_run,
    sha256_bytes,
)
from fusion_psro.experiments.rundir import RunDirectoryError, RunLock, population_files, remove_leftovers
from fusion_psro.files import atomic_path

log = logging.getLogger(__name__)


def repair_run(run_dir: Path | str) -> list[str]:
    """Restore the population files of ``run_dir`` that differ from its manifest; returns what was restored.

    An empty list: nothing differed. :class:`RunIntegrityError` when the run cannot be
    repaired (the message says why).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirectoryError(f"{path} is not a directory; repair takes the directory of a finished run")
    with RunLock(path):
        remove_leftovers(path)
        try:
            files = open_run(path)
        except RunIntegrityError as exc:
            raise RunIntegrityError(f"cannot repair {path}: {exc} (repair restores population files only)") from None
        if not files.manifest.finished:
            raise RunIntegrityError(f"cannot repair {path}: the run has not finished, so it has no population to "
                                    f"restore; `fusion-psro run --resume {path}` continues it")
        bad = _bad_population_files(files)
        if not bad:
            return []
        rebuilt, iteration = _rebuilt_population(files, bad)
        for relative in bad:
            with atomic_path(path / relative) as tmp:
                tmp.write_bytes(rebuilt[relative])
        return [f"restored {relative} from the checkpoint of iteration {iteration} ({why})"
                for relative, why in bad.items()]


def _bad_population_files(files: RunFiles) -> dict[str, str]:
    """The population files that differ from the manifest, each with a short reason."""
    bad = {}
    for relative in files.listed(POPULATION_PREFIX):
        try:
            files.read(relative)
        except RunIntegrityError as exc:
            bad[relative] = "it was missing" if not (files.path / relative).exists() else "it differed"
            log.info("%s", exc)
    return bad


def _rebuilt_population(files: RunFiles, bad: dict[str, str]) -> tuple[dict[str, bytes], int]:
    """The population files rebuilt from the checkpoint of the run's last iteration, checked byte for byte."""
    path = files.path
    last = files.rows[-1]["iteration"]
    first_bad = next(iter(bad))
    try:
        iteration, populations = read_checkpoint(files, at_most=last)
    except RunDirectoryError as exc:
        raise RunIntegrityError(f"cannot repair {path / first_bad}: no good checkpoint to restore it from ({exc})"
                                ) from None
    if iteration != last:
        raise RunIntegrityError(f"cannot repair {path / first_bad}: the checkpoint of the last iteration ({last}) "
                                f"in {path / CHECKPOINT_DIR} is damaged or gone")
    rebuilt = population_files(populations)
    listed = files.listed(POPULATION_PREFIX)
    differing = sorted(r for r in set(rebuilt) | set(listed) if sha256_bytes(rebuilt.get(r, b"")) != listed.get(r))
    if differing:
        raise RunIntegrityError(f"cannot repair {path / first_bad}: rebuilt from the checkpoint, {differing[0]} is not "
                                f"what {MANIFEST_FILE} vouches for (a run written before population files were "
                                "reproducible, or a checkpoint that does not match); rerun with --overwrite")
    return rebuilt, iteration


__all__ = ["repair_run"]
