"""Mixture-game runs per method: both exploitability measures, where the learners started,
and how often the points that joined the population repeat earlier ones.

    python scripts/mixture_starts.py results/mixture-prior-code/runs/*

prints a Markdown table, one row per method (runs that differ only in their seed), each
number a mean over seeds (± standard error for the exploitabilities):

* exploitability: the exact one (NashConv / 2, certified global best response);
* prior-code estimate: ``exploitability_prior_code`` where the runs recorded it;
* start to centre: median distance of a learner's starting point (the fused point for
  Fusion-X, a draw near the origin for scratch) to the nearest hump centre, and the share
  of starts within 0.5 of one;
* end to centre: median distance of where the learners ended;
* repeated: of the points that joined the population after the first, how many lie within
  1e-6 ("identical") and within 0.01 ("near") of a point that joined before.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from fusion_psro.experiments.runs import group_by_method, load_runs, mean_and_standard_error, method_label
from fusion_psro.experiments.trajectories import learner_paths, start_statistics
from fusion_psro.psro.spaces import MIXTURE_GAMES


def _mean_se(values: list[float]) -> str:
    mean, se = mean_and_standard_error(values)
    return f"{mean:.4f} ± {'n/a' if math.isnan(se) else f'{se:.4f}'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+")
    args = parser.parse_args()
    runs = load_runs(args.run_dirs)
    print("| method | seeds | exploitability (exact) | prior-code estimate | start to centre (median) | "
          "starts within 0.5 | end to centre (median) | repeated identical / near (of joined - 1) |")
    print("|---|---|---|---|---|---|---|---|")
    for members in group_by_method(runs).values():
        settings = members[0].settings
        centres = MIXTURE_GAMES[settings["game"]]().centres
        stats = [start_statistics(learner_paths(run.rows, settings["init"]), centres) for run in members]
        prior = [run.final["exploitability_prior_code"] for run in members if "exploitability_prior_code" in run.final]
        mean = lambda key: float(np.mean([s[key] for s in stats]))  # noqa: E731
        print(f"| {method_label(settings, [])} | {len(members)} | {_mean_se([r.final['exploitability'] for r in members])} | "
              f"{_mean_se(prior) if prior else 'n/a'} | {mean('start_distance_median'):.3f} | "
              f"{100 * mean('starts_within_0.5'):.0f}% | {mean('point_distance_median'):.3f} | "
              f"{mean('repeated_identical'):.1f} / {mean('repeated_near'):.1f} (of {mean('joined') - 1:.0f}) |")


if __name__ == "__main__":
    main()
