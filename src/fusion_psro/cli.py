"""The ``fusion-psro`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from fusion_psro.errors import FusionPSROError
from fusion_psro.psro.loop import ConfigError

log = logging.getLogger("fusion_psro")


def _cmd_compile(args: argparse.Namespace) -> int:
    from fusion_psro.games import cache_path, compile_game

    from fusion_psro.psro.spaces import MIXTURE_GAMES

    for game in args.games:
        if game in MIXTURE_GAMES:
            print(f"{game}: nothing to compile (payoffs and best responses are closed-form)")
            continue
        started = time.perf_counter()
        compiled = compile_game(game, max_histories=args.max_histories, cache=not args.no_cache)
        elapsed = time.perf_counter() - started
        print(compiled.describe())
        where = "not cached" if args.no_cache else str(cache_path(compiled.game_string))
        print(f"  compiled in {elapsed:.2f} s; cache: {where}")
    return 0


def _evaluate_mixture_game(args: argparse.Namespace) -> int:
    from fusion_psro.psro.spaces import MIXTURE_GAMES

    game = MIXTURE_GAMES[args.game]()
    print(f"{args.game}: {game.num_humps} humps, policies are points in the plane")
    rng = np.random.default_rng(args.seed)
    populations = [2.0 * rng.standard_normal((args.population_size, 2)) for _ in range(2)]
    meta = [rng.dirichlet(np.ones(args.population_size)) for _ in range(2)]
    started = time.perf_counter()
    matrix = game.payoff_matrix(populations[0], populations[1])
    matrix_s = time.perf_counter() - started
    started = time.perf_counter()
    nash_conv = game.nash_conv(populations[0], meta[0], populations[1], meta[1])
    mixture_s = time.perf_counter() - started
    print(f"payoff matrix of two populations of {args.population_size} random points: "
          f"{matrix.shape[0]}x{matrix.shape[1]}, entries in [{matrix.min():+.3f}, {matrix.max():+.3f}]  [{matrix_s * 1e3:.1f} ms]")
    print(f"random meta-strategy mixture of those populations: exploitability {nash_conv / 2:.6f} "
          f"(NashConv {nash_conv:.6f}), global best responses  [{mixture_s * 1e3:.1f} ms]")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from fusion_psro.evaluation import evaluate_mixture, payoff_matrix
    from fusion_psro.games import compile_game
    from fusion_psro.policies import random_policy, uniform_policy
    from fusion_psro.psro.spaces import MIXTURE_GAMES

    if args.game in MIXTURE_GAMES:
        return _evaluate_mixture_game(args)

    started = time.perf_counter()
    compiled = compile_game(args.game, max_histories=args.max_histories)
    compile_s = time.perf_counter() - started
    print(compiled.describe())
    print(f"compiled (or loaded from cache) in {compile_s:.2f} s")

    rng = np.random.default_rng(args.seed)
    populations = [
        np.stack([uniform_policy(compiled, p)] + [random_policy(compiled, p, rng) for _ in range(args.population_size - 1)])
        for p in range(2)
    ]
    meta = [rng.dirichlet(np.ones(args.population_size)) for _ in range(2)]

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
    print(f"payoff matrix of two populations of {args.population_size} random policies: "
          f"{matrix.shape[0]}x{matrix.shape[1]}, entries in [{matrix.min():+.3f}, {matrix.max():+.3f}]  [{matrix_s * 1e3:.1f} ms]")
    print(f"random meta-strategy mixture of those populations: exploitability {mixture_eval.exploitability:.6f} "
          f"(NashConv {mixture_eval.nash_conv:.6f})  [{mixture_s * 1e3:.1f} ms]")
    return 0


def _parse_option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if isinstance(parsed, list):
        parsed = tuple(parsed)
    return key.strip().replace("-", "_"), parsed


def _cmd_run(args: argparse.Namespace) -> int:
    from fusion_psro.experiments import resume_psro, run_psro
    from fusion_psro.psro import PSROConfig

    if args.resume:
        rows = resume_psro(args.resume, progress=not args.quiet, tensorboard=args.tensorboard)
        _print_run_summary(args.resume, rows[-1])
        return 0
    if not args.out:
        print("fusion-psro: error: run needs --out DIR (a new run) or --resume DIR (continue one)", file=sys.stderr)
        return 2
    config = PSROConfig(
        game=args.game, oracle=args.oracle, init=args.init, variant=args.variant,
        meta_solver=args.meta_solver, iterations=args.iterations, seed=args.seed,
        fusion_start=args.fusion_start, fusion_fallback=args.fusion_fallback, episodes=args.episodes,
        rn_learners=args.rn_learners, pipeline_learners=args.pipeline_learners,
        pipeline_max_iterations=args.pipeline_max_iterations, pipeline_plateau=args.pipeline_plateau,
        oracle_options=dict(args.oracle_option), population=args.population,
        diversity_weight=args.diversity_weight,
    )
    if args.gradient_steps is not None:
        config.oracle_options["steps"] = args.gradient_steps
    rows = run_psro(config, args.out, overwrite=args.overwrite, progress=not args.quiet, tensorboard=args.tensorboard)
    _print_run_summary(args.out, rows[-1])
    return 0


def _print_run_summary(out: str, last: dict) -> None:
    print(
        f"{out}: {last['iteration']} iterations, exploitability {last['exploitability']:.6f} "
        f"(NashConv {last['nash_conv']:.6f}), {last['episodes']:,} episodes, {last['wall_s']:.1f} s"
    )


def _cmd_sweep(args: argparse.Namespace) -> int:
    from fusion_psro.experiments.report import write_report
    from fusion_psro.experiments.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.config, quick=args.quick)
    print(f"sweep {args.config}: {len(sweep.cells)} runs into {sweep.out}", file=sys.stderr)
    results = run_sweep(sweep, address=args.address, progress=not args.quiet)
    failed = [r for r in results if r["action"] == "failed"]
    for result in failed:
        print(f"fusion-psro: run {result['cell']} failed: {result['error']}", file=sys.stderr)
    finished = [r["out"] for r in results if r["action"] != "failed"]
    if finished:
        # The report and figures are derived from the runs, so they are rewritten each time.
        report, figures = write_report(finished, sweep.out / "report.md", overwrite=True,
                                       title=f"sweep {Path(args.config).stem}" + (" (quick)" if args.quick else ""))
        print(report.read_text(), end="")
        print(f"report: {report}\nplot: {next(f for f in figures if f.suffix == '.png')}")
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from fusion_psro.experiments.report import summary_table, write_report
    from fusion_psro.experiments.runs import load_runs

    if args.out:
        report, figures = write_report(args.run_dirs, args.out, overwrite=args.overwrite)
        print(report.read_text(), end="")
        print(f"wrote {report} and {', '.join(str(f) for f in figures)}", file=sys.stderr)
        return 0
    runs = load_runs(args.run_dirs)
    print(f"Final exploitability (NashConv / 2) over {len(runs)} runs; mean ± standard error over seeds.\n")
    print(summary_table(runs))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from fusion_psro.experiments.plots import plot_runs

    if args.trajectories:
        from fusion_psro.experiments.trajectories import plot_mixture_trajectories

        for path in plot_mixture_trajectories(args.run_dirs, args.out, overwrite=args.overwrite, title=args.title):
            print(path)
        return 0
    paths = plot_runs(args.run_dirs, args.out, x=args.x, title=args.title, log_y=args.log_y, overwrite=args.overwrite)
    for path in paths:
        print(path)
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

    from fusion_psro.meta import META_SOLVERS
    from fusion_psro.psro import INIT_STRATEGIES, ORACLES, POPULATION_MODES, VARIANTS, PSROConfig

    defaults = PSROConfig()
    p = sub.add_parser("run", help="run PSRO / Fusion-PSRO into an output directory")
    p.add_argument("--game", default=defaults.game,
                   help="OpenSpiel game string, or 'mixture' (the non-transitive mixture game) (default: %(default)s)")
    p.add_argument("--oracle", default=None, choices=ORACLES,
                   help="best-response oracle (default: exact; gradient for the mixture game)")
    p.add_argument("--init", default=None, choices=INIT_STRATEGIES,
                   help="initialization of each new best-response network (learned oracles; default normal)")
    p.add_argument("--variant", default=defaults.variant, choices=VARIANTS, help="PSRO variant (default: %(default)s)")
    p.add_argument("--meta-solver", default=defaults.meta_solver, choices=sorted(META_SOLVERS), help="(default: %(default)s)")
    p.add_argument("--iterations", type=int, default=defaults.iterations, help="PSRO iterations (default: %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="(default: %(default)s)")
    p.add_argument("--out", help="run directory (must be new or empty, unless --overwrite)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR from its last checkpoint "
                   "(its config.json gives every setting; other options are ignored)")
    p.add_argument("--overwrite", action="store_true", help="replace the run files already in --out")
    p.add_argument("--fusion-start", type=int, default=defaults.fusion_start,
                   help="first iteration that fuses, with --init fusion (default: %(default)s)")
    p.add_argument("--fusion-fallback", default=defaults.fusion_fallback, choices=("normal", "orthogonal", "kaiming", "inherit"),
                   help="init before --fusion-start (default: %(default)s)")
    p.add_argument("--episodes", type=int, default=defaults.episodes, help="training episodes per best response (default: %(default)s)")
    p.add_argument("--population", default=defaults.population, choices=POPULATION_MODES,
                   help="one population per player, or one shared population of two-seat agents (default: %(default)s)")
    p.add_argument("--rn-learners", type=int, default=defaults.rn_learners, help="psro-rn: learners per player per iteration (default: %(default)s)")
    p.add_argument("--pipeline-learners", type=int, default=defaults.pipeline_learners, help="p-psro: active learners per player (default: %(default)s)")
    p.add_argument("--pipeline-max-iterations", type=int, default=defaults.pipeline_max_iterations,
                   help="p-psro: iterations before the lowest learner is frozen (default: %(default)s)")
    p.add_argument("--pipeline-plateau", type=float, default=defaults.pipeline_plateau,
                   help="p-psro: freeze the lowest learner when its value improves by less (default: %(default)s)")
    p.add_argument("--diversity-weight", type=float, default=None,
                   help="dpp, bdrd, psd: weight of the diversity term in each best response's objective (default: 0.1)")
    p.add_argument("--gradient-steps", type=int, default=None,
                   help="gradient oracle (mixture game): Adam steps per best response (default: 50)")
    p.add_argument("--oracle-option", action="append", default=[], type=_parse_option, metavar="KEY=VALUE",
                   help="learned-oracle setting, e.g. learning_rate=0.001 or hidden_sizes=[64,64]; repeatable")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard scalars to DIR/tensorboard")
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("sweep", help="run a grid of PSRO runs (TOML config) as Ray tasks")
    p.add_argument("config", help="sweep config (TOML): [sweep] out/workers, [grid] lists, [settings] fixed values")
    p.add_argument("--address", help="join this Ray cluster (HOST:PORT) instead of starting a local Ray")
    p.add_argument("--quick", action="store_true", help="use the config's [quick] scale (minutes), into <out>-quick")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_sweep)

    p = sub.add_parser("report", help="table of final exploitability per method over run directories")
    p.add_argument("run_dirs", nargs="+", metavar="DIR", help="run directories written by fusion-psro run")
    p.add_argument("--out", help="write the Markdown report to this file, with its figures beside it")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("plot", help="exploitability curves (mean ± s.e. over seeds) of run directories, as PNG and SVG")
    p.add_argument("run_dirs", nargs="+", metavar="DIR", help="run directories written by fusion-psro run")
    p.add_argument("--out", required=True, metavar="PREFIX", help="write PREFIX.png and PREFIX.svg")
    p.add_argument("--x", default="both", choices=("iterations", "episodes", "both"),
                   help="x axis: PSRO iterations, cumulative training episodes, or both side by side (default: %(default)s)")
    p.add_argument("--title", help="figure title (default: the game, when all runs share one)")
    p.add_argument("--log-y", action="store_true", help="logarithmic exploitability axis")
    p.add_argument("--trajectories", action="store_true",
                   help="mixture game: draw the humps with every best response and its starting point, "
                        "one panel per run (e.g. PSRO beside Fusion-PSRO) instead of learning curves")
    p.add_argument("--overwrite", action="store_true", help="replace PREFIX.png / PREFIX.svg if they exist")
    p.set_defaults(handler=_cmd_plot)

    p = sub.add_parser("evaluate", help="exact evaluation demo: exploitability, payoff matrix, mixture")
    p.add_argument("--game", default="leduc_poker", help="OpenSpiel game string, or mixture (default: %(default)s)")
    p.add_argument("--population", type=int, default=50, dest="population_size",
                   help="policies per player in the demo populations (default: %(default)s)")
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
    if getattr(args, "population_size", 1) < 1:
        parser.error("--population must be at least 1")
    try:
        return args.handler(args)
    except (FusionPSROError, ConfigError) as exc:
        print(f"fusion-psro: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
