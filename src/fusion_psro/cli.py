"""The ``fusion-psro`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

from fusion_psro.errors import FusionPSROError

log = logging.getLogger("fusion_psro")


def _cmd_compile(args: argparse.Namespace) -> int:
    from fusion_psro.games import cache_path, compile_game

    for game in args.games:
        started = time.perf_counter()
        compiled = compile_game(game, max_histories=args.max_histories, cache=not args.no_cache)
        elapsed = time.perf_counter() - started
        print(compiled.describe())
        where = "not cached" if args.no_cache else str(cache_path(compiled.game_string))
        print(f"  compiled in {elapsed:.2f} s; cache: {where}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from fusion_psro.evaluation import evaluate_mixture, payoff_matrix
    from fusion_psro.games import compile_game
    from fusion_psro.policies import random_policy, uniform_policy

    started = time.perf_counter()
    compiled = compile_game(args.game, max_histories=args.max_histories)
    compile_s = time.perf_counter() - started
    print(compiled.describe())
    print(f"compiled (or loaded from cache) in {compile_s:.2f} s")

    rng = np.random.default_rng(args.seed)
    populations = [
        np.stack([uniform_policy(compiled, p)] + [random_policy(compiled, p, rng) for _ in range(args.population - 1)])
        for p in range(2)
    ]
    meta = [rng.dirichlet(np.ones(args.population)) for _ in range(2)]

    started = time.perf_counter()
    uniform_eval = evaluate_mixture(compiled, [populations[0][:1], populations[1][:1]], [[1.0], [1.0]])
    uniform_s = time.perf_counter() - started
    started = time.perf_counter()
    matrix = payoff_matrix(compiled, populations[0], populations[1])
    matrix_s = time.perf_counter() - started
    started = time.perf_counter()
    mixture_eval = evaluate_mixture(compiled, populations, meta)
    mixture_s = time.perf_counter() - started

    print(f"uniform policy: exploitability {uniform_eval.exploitability:.6f} "
          f"(NashConv {uniform_eval.nash_conv:.6f}), value to player 0 {uniform_eval.values[0]:+.6f}  [{uniform_s * 1e3:.1f} ms]")
    print(f"payoff matrix of two populations of {args.population} random policies: "
          f"{matrix.shape[0]}x{matrix.shape[1]}, entries in [{matrix.min():+.3f}, {matrix.max():+.3f}]  [{matrix_s * 1e3:.1f} ms]")
    print(f"random meta-strategy mixture of those populations: exploitability {mixture_eval.exploitability:.6f} "
          f"(NashConv {mixture_eval.nash_conv:.6f})  [{mixture_s * 1e3:.1f} ms]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from fusion_psro.games import DEFAULT_MAX_HISTORIES

    parser = argparse.ArgumentParser(
        prog="fusion-psro",
        description="Exact, vectorized PSRO and Nash Policy Fusion for two-player zero-sum games.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("compile", help="enumerate games into arrays and cache them on disk")
    p.add_argument("games", nargs="+", metavar="GAME", help="OpenSpiel game strings, e.g. leduc_poker")
    p.add_argument("--max-histories", type=int, default=DEFAULT_MAX_HISTORIES, help="enumeration limit (default: %(default)s)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk cache")
    p.set_defaults(handler=_cmd_compile)

    p = sub.add_parser("evaluate", help="exact evaluation demo: exploitability, payoff matrix, mixture")
    p.add_argument("--game", default="leduc_poker", help="OpenSpiel game string (default: %(default)s)")
    p.add_argument("--population", type=int, default=50, help="policies per player in the demo populations (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--max-histories", type=int, default=DEFAULT_MAX_HISTORIES, help="enumeration limit (default: %(default)s)")
    p.set_defaults(handler=_cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    if getattr(args, "population", 1) < 1:
        parser.error("--population must be at least 1")
    try:
        return args.handler(args)
    except FusionPSROError as exc:
        print(f"fusion-psro: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
