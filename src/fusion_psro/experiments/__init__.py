"""Experiments: run directories, metrics, saved populations, and running PSRO into them."""

from fusion_psro.experiments.rundir import (
    RunDirectoryError,
    load_population_policies,
    prepare_run_directory,
    read_metrics,
    save_population,
)
from fusion_psro.experiments.checkpoint import CheckpointError
from fusion_psro.experiments.runner import resume_psro, run_psro

__all__ = [
    "CheckpointError",
    "resume_psro",
    "RunDirectoryError",
    "load_population_policies",
    "prepare_run_directory",
    "read_metrics",
    "run_psro",
    "save_population",
]
