"""Calibrate the approximate exploitability against the exact one, on games that compile.

For each game: a PSRO run in sampled play (DQN, its meta-game estimated from sampled
games), then the approximate exploitability of its final mixtures on a budget ladder
(several training seeds, the selected response scored on fresh games), beside the exact
exploitability of the same mixtures and the exact exploitability of the selected
responses (``fusion-psro approx-exploitability`` does the same for any run)::

    python scripts/calibrate_approx.py --out runs/calibration --game leduc_poker --game liars_dice

Writes ``OUT/<game>/`` (the run, its ``approx-exploitability-iteration-K.json``) and
prints one Markdown table per game.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from fusion_psro.experiments.approximate import approx_for_run, format_record
from fusion_psro.experiments.runner import run_psro
from fusion_psro.psro import PSROConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--game", action="append", required=True)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--ladder", default="1000,4000,16000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-games", type=int, default=10_000)
    parser.add_argument("--hidden", default="128,128")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    for game in args.game:
        out = Path(args.out) / re.sub(r"[^A-Za-z0-9]+", "_", game).strip("_")
        config = PSROConfig(game=game, oracle="dqn", evaluation="sampled", iterations=args.iterations,
                            episodes=args.episodes, seed=args.seed, sims_per_entry=1000,
                            oracle_options={"hidden_sizes": hidden})
        started = time.perf_counter()
        run_psro(config, out, progress=False)
        run_s = time.perf_counter() - started
        record, path = approx_for_run(out, br_episodes=[int(b) for b in args.ladder.split(",")],
                                      br_seeds=args.seeds, eval_games=args.eval_games)
        print(f"## {game}\n\nPSRO run: {run_s:.0f} s; approximate exploitability: {record['wall_s']:.0f} s ({path})\n")
        print(format_record(record), flush=True)


if __name__ == "__main__":
    main()
