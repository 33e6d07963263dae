"""Experiments: run directories, metrics, saved populations, running PSRO into them, and reading results back.

Names are imported on first use, so reading runs (reports, plots) loads no training code.
"""

from fusion_psro.lazy import lazy_getattr

_EXPORTS = {
    "CheckpointError": "fusion_psro.experiments.checkpoint",
    "SavedRun": "fusion_psro.experiments.results",
    "export_meta_game": "fusion_psro.experiments.results",
    "load_run": "fusion_psro.experiments.results",
    "match_runs": "fusion_psro.experiments.results",
    "trap_summary": "fusion_psro.experiments.results",
    "RunDirectoryBusyError": "fusion_psro.experiments.rundir",
    "RunDirectoryError": "fusion_psro.experiments.rundir",
    "RunLock": "fusion_psro.experiments.rundir",
    "RunIntegrityError": "fusion_psro.experiments.manifest",
    "open_run": "fusion_psro.experiments.manifest",
    "repair_run": "fusion_psro.experiments.repair",
    "load_population_policies": "fusion_psro.experiments.results",
    "prepare_run_directory": "fusion_psro.experiments.rundir",
    "read_metrics": "fusion_psro.experiments.rundir",
    "save_population": "fusion_psro.experiments.rundir",
    "resume_psro": "fusion_psro.experiments.runner",
    "run_psro": "fusion_psro.experiments.runner",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
