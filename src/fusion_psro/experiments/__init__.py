"""Experiments: run directories, metrics, saved populations, and running PSRO into them.

Names are imported on first use, so reading runs (reports, plots) loads no training code.
"""

import importlib

_EXPORTS = {
    "CheckpointError": "fusion_psro.experiments.checkpoint",
    "RunDirectoryError": "fusion_psro.experiments.rundir",
    "load_population_policies": "fusion_psro.experiments.rundir",
    "prepare_run_directory": "fusion_psro.experiments.rundir",
    "read_metrics": "fusion_psro.experiments.rundir",
    "save_population": "fusion_psro.experiments.rundir",
    "resume_psro": "fusion_psro.experiments.runner",
    "run_psro": "fusion_psro.experiments.runner",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
