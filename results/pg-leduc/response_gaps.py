"""Gap of each best response to the exact best response against the same mixture, per init.

Every metrics row of a pg run records, for each new best response, ``gap``: the exact
best-response value against the opponent's meta-strategy mixture minus the exact value of
the policy that joined the population. This script averages it per run over iteration
windows and prints mean ± s.e. over seeds per run group (Markdown).

    python results/pg-leduc/response_gaps.py results/pg-leduc/runs/init results/pg-leduc/runs/meta-solver

The runs of different inits follow different PSRO trajectories, so their mixtures differ:
this compares the responses each method produced in its own run, not paired responses
(the initialization study pairs them).
"""

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

WINDOWS = ((2, 10), (11, 50), (51, 150), (2, 150))


def run_gaps(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [float(np.mean([o["gap"] for r in rows if lo <= r["iteration"] <= hi for o in r["oracle"] if "gap" in o]
                          or [np.nan]))
            for lo, hi in WINDOWS]


groups: dict[str, list[list[float]]] = defaultdict(list)
for directory in map(Path, sys.argv[1:]):
    for run in sorted(p for p in directory.iterdir() if (p / "metrics.jsonl").is_file()):
        groups[f"{directory.name}/{re.sub(r'-seed[0-9]+$', '', run.name)}"].append(run_gaps(run))
print("| runs | seeds | " + " | ".join(f"iterations {lo}-{hi}" for lo, hi in WINDOWS) + " |")
print("|---|---|" + "---|" * len(WINDOWS))
for name, values in groups.items():
    array = np.array(values)
    cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(array.mean(0), array.std(0, ddof=1) / np.sqrt(len(array)))]
    print(f"| {name} | {len(array)} | " + " | ".join(cells) + " |")
