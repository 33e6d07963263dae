"""Pick the PSRO-level comparison's init by the rule stated before the study ran.

The rule: of the inits added to keep a warm start's head start (shrink-perturb,
fusion-reset-output, nash-distill), the one with the lowest mean gap at the study's largest
budget (20,000 episodes) over all Leduc units. Prints the name and writes the sweep config
that compares it with fusion, inherit and normal.
"""

import sys
from pathlib import Path

import numpy as np

from fusion_psro.experiments.init_study import load_study
from fusion_psro.experiments.init_study_report import measurement_rows

CANDIDATES = ("shrink-perturb", "fusion-reset-output", "nash-distill")
study, config = Path(sys.argv[1]), Path(sys.argv[2])
rows = measurement_rows(load_study(study))
budget = max(row["budget"] for row in rows)
gaps = {init: float(np.mean([r["gap"] for r in rows if r["init"] == init and r["budget"] == budget]))
        for init in CANDIDATES}
best = min(gaps, key=gaps.get)
for init, gap in sorted(gaps.items(), key=lambda item: item[1]):
    print(f"{init}: mean gap {gap:.4f} at budget {budget}", file=sys.stderr)
config.write_text(f"""# PSRO-level comparison on Leduc (DQN oracle, 5 seeds): the new init with the lowest mean gap
# at budget {budget} in results/init-study-leduc ({best}, chosen by choose_init.py) against
# fusion, inherit and normal. 16 iterations x 4,000 episodes per best response (about 40 minutes
# of 2 cores for the 20 runs; results/leduc-new-init ran them as 8 iterations, then extended
# each with `fusion-psro run --resume DIR --iterations 16`, which gives the same metrics).
[sweep]
out = "runs/leduc-new-init"
workers = 2

[grid]
init = ["normal", "inherit", "fusion", "{best}"]
seed = [0, 1, 2, 3, 4]

[settings]
game = "leduc_poker"
oracle = "dqn"
iterations = 16
episodes = 4000

[quick]
seed = [0]
iterations = 2
episodes = 500
""")
print(best)
