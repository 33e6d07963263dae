"""Approximate exploitability of the uniform random policy (where every PSRO population starts).

The reference point of the large-game results: the same ladder, seeds and games as their
``--eval approx`` settings, against the mixture made of the uniform policy alone::

    python scripts/uniform_baseline.py 'liars_dice(numdice=2)' --br-episodes 2000,6000 --br-seeds 2 --eval-games 4000
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from fusion_psro.games.sampled import load_sampled_game, tensor_size
from fusion_psro.oracles.network_policy import uniform_vector
from fusion_psro.psro.approximate_exploitability import ApproxSettings, approximate_exploitability, strip_vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("game")
    parser.add_argument("--br-episodes", default="2000,6000")
    parser.add_argument("--br-seeds", type=int, default=2)
    parser.add_argument("--eval-games", type=int, default=4000)
    parser.add_argument("--hidden", default="128,128")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    game = load_sampled_game(args.game)
    uniform = uniform_vector(tensor_size(game), hidden, game.num_distinct_actions())
    settings = ApproxSettings(game=args.game, br_episodes=tuple(int(b) for b in args.br_episodes.split(",")),
                              br_seeds=args.br_seeds, eval_games=args.eval_games, seed=args.seed,
                              oracle_options={"hidden_sizes": hidden})
    record = strip_vectors(approximate_exploitability(settings, [[uniform], [uniform]], [np.ones(1), np.ones(1)]))
    for budget in record["budgets"]:
        print(f"{args.game}, uniform policy, {budget['br_episodes']:,} episodes: approximate exploitability "
              f"{budget['estimate']:.4f}, 95% interval [{budget['ci95'][0]:.4f}, {budget['ci95'][1]:.4f}]")
    print(json.dumps({"wall_s": record["wall_s"]}))


if __name__ == "__main__":
    main()
