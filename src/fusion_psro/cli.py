"""The ``fusion-psro`` command line."""

from __future__ import annotations

import sys

try:  # Ctrl-C while the command line loads is answered like Ctrl-C later: one line, status 130
    import argparse
    import dataclasses
    import errno
    import json
    import logging
    import time
    import typing
    from pathlib import Path

    from fusion_psro.errors import FusionPSROError
except KeyboardInterrupt:  # pragma: no cover - a race with the user's finger
    sys.stderr.write("fusion-psro: stopped by Ctrl-C before the command started; nothing was written\n")
    raise SystemExit(130) from None

log = logging.getLogger("fusion_psro")


def _claiming_kind(game: str):
    """The registered game kind that claims ``game`` by its name (not the fallback kind), or None."""
    from fusion_psro.registry import GAME_KINDS

    return next((kind for _, kind in GAME_KINDS.items() if not kind.fallback and kind.claims(game)), None)


def _cmd_compile(args: argparse.Namespace) -> int:
    from fusion_psro.games import cache_path, compile_game

    for game in args.games:
        kind = _claiming_kind(game)
        note = kind.compile_note(game) if kind is not None else None
        if note is not None:
            print(f"{game}: {note}")
            continue
        started = time.perf_counter()
        compiled = compile_game(game, max_histories=args.max_histories, cache=not args.no_cache)
        elapsed = time.perf_counter() - started
        print(compiled.describe())
        where = "not cached" if args.no_cache else str(cache_path(compiled.game_string))
        print(f"  compiled in {elapsed:.2f} s; cache: {where}")
    return 0


def _number(value: float) -> str:
    """``value`` with six decimals, a negative zero (-0.0000001) shown as 0.000000."""
    text = f"{value:.6f}"
    return text[1:] if text == "-0.000000" else text


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from fusion_psro.evaluation import evaluate_mixture, payoff_matrix
    from fusion_psro.games import compile_game
    from fusion_psro.policies import random_policy, uniform_policy

    kind = _claiming_kind(args.game)
    demo = kind.evaluation_demo(args.game, args.population_size, args.seed) if kind is not None else None
    if demo is not None:
        print(demo)
        return 0

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

    print(f"uniform policy: exploitability {_number(uniform_eval.exploitability)} "
          f"(NashConv {_number(uniform_eval.nash_conv)}), value to player 0 {uniform_eval.values[0]:+.6f}  [{uniform_s * 1e3:.1f} ms]")
    print(f"payoff matrix of two populations of {args.population_size} random policies: "
          f"{matrix.shape[0]}x{matrix.shape[1]}, entries in [{matrix.min():+.3f}, {matrix.max():+.3f}]  [{matrix_s * 1e3:.1f} ms]")
    print(f"random meta-strategy mixture of those populations: exploitability {_number(mixture_eval.exploitability)} "
          f"(NashConv {_number(mixture_eval.nash_conv)})  [{mixture_s * 1e3:.1f} ms]")
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


def _given_settings(args: argparse.Namespace) -> set[str]:
    """The :class:`~fusion_psro.psro.PSROConfig` settings given on the command line."""
    from fusion_psro.psro import PSROConfig

    given = {f.name for f in dataclasses.fields(PSROConfig) if getattr(args, f.name, None) not in (None, [])}
    if args.steps is not None:
        given.add("oracle_options")
    return given


def _config_from_args(args: argparse.Namespace):
    """The :class:`~fusion_psro.psro.PSROConfig` of the options given (the others keep their defaults).

    A ``*_options`` setting (a dict) is given as repeated ``--*-option KEY=VALUE``.
    """
    from fusion_psro.psro import PSROConfig

    given = {}
    for field in dataclasses.fields(PSROConfig):
        value = getattr(args, field.name, None)
        if field.name.endswith("_options"):
            given[field.name] = dict(value or [])
        elif value is not None:
            given[field.name] = value
    if args.steps is not None:
        given["oracle_options"]["steps"] = args.steps
    return PSROConfig(**given)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-").replace("oracle-options", "oracle-option")


def _cmd_run(args: argparse.Namespace) -> int:
    from fusion_psro.experiments import resume_psro, run_psro
    from fusion_psro.experiments.runner import unused_settings

    parallel = {"workers": args.workers, "address": args.address}
    given = _given_settings(args)
    if args.resume:
        extra = sorted(given - {"iterations"}) + [name for name in ("out", "overwrite") if getattr(args, name)]
        if extra:
            raise FusionPSROError(
                f"--resume continues {args.resume} with the settings in its config.json; "
                f"{', '.join(map(_option, extra))} cannot be given with it (only --iterations, to change the "
                "number of iterations: more extends a finished run)"
            )
        rows = resume_psro(args.resume, iterations=args.iterations, progress=not args.quiet,
                           tensorboard=args.tensorboard, **parallel)
        _print_run_summary(args.resume, rows[-1])
        return 0
    if not args.out:
        raise FusionPSROError("run needs --out DIR (a new run) or --resume DIR (continue one)")
    config = _config_from_args(args).resolved()
    unused = unused_settings(config, given)
    if unused:
        name, why = next(iter(unused.items()))
        raise FusionPSROError(f"{_option(name)} does not apply to this run: {why}. Leave it out")
    rows = run_psro(config, args.out, overwrite=args.overwrite, progress=not args.quiet, tensorboard=args.tensorboard,
                    **parallel)
    _print_run_summary(args.out, rows[-1])
    return 0


def _print_run_summary(out: str, last) -> None:
    reached = " (target exploitability reached)" if last.extra.get("target_reached") else ""
    print(
        f"{out}: {last.iteration} iterations{reached}, exploitability {_number(last.exploitability)} "
        f"(NashConv {_number(last.nash_conv)}), {last.episodes:,} episodes, {last.wall_s:.1f} s"
    )
    if "approx_exploitability" in last.extra:
        low, high = last.extra["approx_ci95"]
        print(f"approximate exploitability (a lower bound of NashConv / 2): {last.extra['approx_exploitability']:.4f}, "
              f"95% interval [{low:.4f}, {high:.4f}]")


def _cmd_approx_exploitability(args: argparse.Namespace) -> int:
    from fusion_psro.experiments.approximate import approx_for_run, format_record

    record, path = approx_for_run(
        args.run_dir, iteration=args.iteration, br_episodes=args.br_episodes, br_seeds=args.br_seeds,
        eval_games=args.eval_games, seed=args.seed, workers=args.workers, address=args.address,
        exact=not args.no_exact, progress=not args.quiet,
    )
    print(format_record(record), end="")
    print(f"wrote {path} ({record['wall_s']:.1f} s)", file=sys.stderr)
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


#: The largest demo population of ``evaluate`` (its payoff matrix is this size squared).
MAX_DEMO_POPULATION = 2000


def _demo_population(text: str) -> int:
    value = _positive(text)
    if value > MAX_DEMO_POPULATION:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_DEMO_POPULATION} policies per player (the demo "
                                         f"evaluates a {MAX_DEMO_POPULATION} x {MAX_DEMO_POPULATION} payoff matrix), "
                                         f"got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _add_parallel_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_positive, default=1, metavar="N",
                   help="local Ray workers for independent best responses and sampled games (default: 1, no Ray)")
    p.add_argument("--address", help="join this Ray cluster (HOST:PORT) instead of starting a local Ray")


def _add_approx_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run whose members are networks (e.g. --oracle dqn)")
    p.add_argument("--iteration", type=_positive, metavar="K", help="the mixtures after iteration K (default: the last)")
    p.add_argument("--br-episodes", type=_int_list, metavar="N,M", help="budget ladder of each best-response "
                   "training run, e.g. 20000,100000 (default: the run's --eval-br-episodes, else its --episodes)")
    p.add_argument("--br-seeds", type=_positive, metavar="S", help="training seeds per player (default 2)")
    p.add_argument("--eval-games", type=_positive, metavar="G", help="sampled games per score (default 10000)")
    p.add_argument("--seed", type=_non_negative, help="seed of every draw (default: the run's seed)")
    p.add_argument("--no-exact", action="store_true", help="skip the exact numbers even where the game compiles")
    _add_parallel_arguments(p)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from fusion_psro.experiments.report import write_report
    from fusion_psro.experiments.sweep import load_sweep, parse_seeds, run_sweep, select_seeds

    sweep = load_sweep(args.config, quick=args.quick, batched=args.batched)
    if args.seeds is not None:
        sweep = select_seeds(sweep, parse_seeds(args.seeds))
    print(f"sweep {args.config}: {len(sweep.cells)} runs into {sweep.out}", file=sys.stderr)
    results = run_sweep(sweep, address=args.address, progress=not args.quiet)
    if all(r["action"] == "skipped (finished)" for r in results):
        print(f"nothing to run: {len(results)} cells finished", file=sys.stderr)
    failed = [r for r in results if r["action"] == "failed"]
    for result in failed:
        print(f"fusion-psro: run {result['cell']} failed: {result['error']}", file=sys.stderr)
    # In path order, as `fusion-psro report OUT/*` lists them, so both order the methods alike.
    finished = sorted(r["out"] for r in results if r["action"] != "failed")
    if finished:
        # The report and figures are derived from the runs, so they are rewritten each time.
        report, figures = write_report(finished, sweep.out / "report.md", overwrite=True, sweeps=[sweep.out],
                                       title=f"sweep {Path(args.config).stem}" + (" (quick)" if args.quick else ""))
        print(report.read_text(), end="")
        print(f"report: {report}\nplot: {next(f for f in figures if f.suffix == '.png')}")
    return 1 if failed else 0


def _split(text: str, name: str, kind=str) -> list:
    try:
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise FusionPSROError(f"{name} takes a comma-separated list, e.g. {name} 500,2000; got {text!r}") from None
    if not values:
        raise FusionPSROError(f"{name} needs at least one value")
    return values


def _cmd_init_study(args: argparse.Namespace) -> int:
    import os

    from fusion_psro.experiments.init_study import (
        StudySettings,
        check_init_options,
        parse_iterations,
        plan_study,
        run_study,
    )
    from fusion_psro.experiments.init_study_report import write_study_report
    from fusion_psro.files import check_output_path

    check_output_path(args.out)

    settings = StudySettings(budgets=tuple(_split(args.budgets, "--budgets", int)), seed=args.seed,
                             init_options=dict(args.init_option))
    if not args.report_only:
        if not args.run_dirs:
            raise FusionPSROError("init-study needs at least one RUN_DIR (or --report-only to report finished cells)")
        inits = _split(args.inits, "--inits")
        check_init_options(inits, settings.init_options)
        cells = plan_study(args.run_dirs, inits, repeats=args.repeats,
                           at=None if args.at is None else parse_iterations(args.at))
        try:
            shard = tuple(int(x) for x in args.shard.split("/"))
        except ValueError:
            raise FusionPSROError(f"--shard is K/N (run every N-th cell from the K-th), got {args.shard!r}") from None
        summary = run_study(cells, settings, args.out, workers=args.workers or os.cpu_count() or 1,
                            address=args.address, progress=not args.quiet, shard=shard)
        print(f"{args.out}: {summary['cells']} cells, {summary['skipped']} already done, {summary['ran']} ran, "
              f"{len(summary['failed'])} failed", file=sys.stderr)
        for failure in summary["failed"]:
            print(f"fusion-psro: cell {failure}", file=sys.stderr)
        if summary["failed"]:
            return 1
    report, figures = write_study_report(args.out)
    print(f"report: {report}\nfigure: {figures[0]}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from fusion_psro.experiments.protocol_report import expand_sweeps, planned_pair_filter
    from fusion_psro.experiments.report import (
        analysis_sections,
        fusion_section,
        summary_table,
        unequal_length_notes,
        write_report,
    )
    from fusion_psro.experiments.runs import load_runs
    from fusion_psro.experiments.traps import trap_section

    if args.out:
        report, figures = write_report(args.run_dirs, args.out, overwrite=args.overwrite, protocol=args.protocol)
        print(report.read_text(), end="")
        print(f"wrote {report} and {', '.join(str(f) for f in figures)}", file=sys.stderr)
        return 0
    run_dirs, sweeps = expand_sweeps(args.run_dirs)
    runs = load_runs(run_dirs)
    print(f"Final exploitability (NashConv / 2) over {len(runs)} runs; mean ± standard error over seeds "
          "(n: the seeds column; descriptive, no test or correction).\n")
    print(summary_table(runs))
    for note in unequal_length_notes(runs):
        print(f"\nNote: {note}.")
    print("\n" + "\n".join(analysis_sections(runs, sweeps, apply=args.protocol)).rstrip())
    for section in (fusion_section(runs, planned_pair_filter(sweeps, args.protocol)), trap_section(runs)):
        if section:
            print("\n" + "\n".join(section).rstrip())
    return 0


def _cmd_match(args: argparse.Namespace) -> int:
    from fusion_psro.experiments.results import load_run, match_runs

    a, b = load_run(args.run_a), load_run(args.run_b)
    result = match_runs(a, b)
    if args.json:
        print(json.dumps({"a": str(a.path), "b": str(b.path), "game": a.game_string,
                          "a_as_player0": result.a_as_player0, "a_as_player1": result.a_as_player1,
                          "a_mean": result.a_mean, "b_mean": result.b_mean}, indent=2))
        return 0
    for name, run in (("A", a), ("B", b)):
        state = "" if run.finished else f", unfinished: its checkpoint of iteration {run.iterations}"
        print(f"{name}: {run.path} ({run.iterations} iterations{state})")
    print(f"exact values of the final meta-strategy mixtures on {a.game_string}, payoffs to A:")
    print(f"  A as player 0 against B as player 1: {result.a_as_player0:+.6f}")
    print(f"  A as player 1 against B as player 0: {result.a_as_player1:+.6f}")
    print(f"  seats drawn uniformly: A {result.a_mean:+.6f}, B {result.b_mean:+.6f}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from fusion_psro.experiments.results import export_meta_game

    from fusion_psro.files import check_output_path

    if not args.meta_game:
        raise FusionPSROError("say what to export: --meta-game (the meta-game payoff matrix and meta-strategies)")
    check_output_path(args.out)
    for path in export_meta_game(args.run_dir, args.out, overwrite=args.overwrite):
        print(path)
    return 0


def _cmd_repair(args: argparse.Namespace) -> int:
    from fusion_psro.experiments.repair import repair_run

    restored = repair_run(args.run_dir)
    for line in restored:
        print(f"{args.run_dir}: {line}")
    if not restored:
        print(f"{args.run_dir}: every population file is what manifest.json vouches for; nothing to repair")
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


def _option_type(field: dataclasses.Field, hints: dict) -> type:
    """``int``, ``float`` or ``str``: the setting's type without its ``None``."""
    hint = hints[field.name]
    candidates = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    return candidates[0]


def _int_list(text: str) -> tuple[int, ...]:
    from fusion_psro.psro.config import parse_int_list

    try:
        return parse_int_list(text)
    except FusionPSROError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: Parsers of settings whose values are not one int, float or string (``metadata["parse"]``).
_PARSERS = {"int_list": _int_list}


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per :class:`~fusion_psro.psro.PSROConfig` setting, choices from the registries,
    grouped by the settings' sections (:data:`~fusion_psro.psro.config.SECTIONS`)."""
    from fusion_psro import registry
    from fusion_psro.psro import PSROConfig
    from fusion_psro.psro.config import SECTIONS

    hints = typing.get_type_hints(PSROConfig)
    groups = {section: p.add_argument_group(f"{section} settings") for section in SECTIONS}
    section_of = {setting: groups[section] for section, settings in SECTIONS.items() for setting in settings}
    for field in dataclasses.fields(PSROConfig):
        meta, group = field.metadata, section_of[field.name]
        if field.name.endswith("_options"):
            group.add_argument("--" + field.name[: -len("_options")].replace("_", "-") + "-option", dest=field.name,
                               action="append", default=[], type=_parse_option, metavar="KEY=VALUE",
                               help=meta["help"] + "; repeatable")
            continue
        if field.type in (bool, "bool"):  # a flag: --name / --no-name
            group.add_argument("--" + field.name.replace("_", "-"), dest=field.name,
                               action=argparse.BooleanOptionalAction, default=None,
                               help=meta["help"] + f" (default: {'yes' if field.default else 'no'})")
            continue
        choices = meta.get("choices")
        if "registry" in meta:
            components = getattr(registry, meta["registry"])
            choices = components.names(lambda c: not c.builds_on_population) if meta.get("fallback_init") \
                else components.names()
        default = "" if field.default is None else f" (default: {field.default})"
        kind = _option_type(field, hints) if "parse" not in meta else _PARSERS[meta["parse"]]
        metavar = None if choices else {int: "N", float: "X"}.get(kind, field.name.upper())
        group.add_argument("--" + field.name.replace("_", "-"), type=kind, choices=choices, metavar=metavar,
                           default=None, help=meta["help"] + default)
    groups["loop"].add_argument("--steps", "--gradient-steps", type=int, default=None, dest="steps", metavar="N",
                                help="gradient steps per best response (the oracle option steps: pg, gradient)")


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    _add_config_options(p)
    p.add_argument("--out", help="run directory (must be new or empty, unless --overwrite)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR from its last checkpoint "
                   "(its config.json gives every setting; --iterations N extends a finished run to N)")
    p.add_argument("--overwrite", action="store_true", help="replace the run files already in --out")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard scalars to DIR/tensorboard")
    _add_parallel_arguments(p)


def _add_compile_arguments(p: argparse.ArgumentParser) -> None:
    from fusion_psro.games import DEFAULT_MAX_HISTORIES

    p.add_argument("games", nargs="+", metavar="GAME", help="OpenSpiel game strings, e.g. leduc_poker")
    p.add_argument("--max-histories", type=int, default=DEFAULT_MAX_HISTORIES, help="enumeration limit (default: %(default)s)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk cache")


def _add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="sweep config (TOML): [sweep] out/workers, [grid] lists, [settings] fixed values")
    p.add_argument("--address", help="join this Ray cluster (HOST:PORT) instead of starting a local Ray")
    p.add_argument("--quick", action="store_true", help="use the config's [quick] scale (minutes), into <out>-quick")
    p.add_argument("--seeds", metavar="SEEDS", help="run only the cells of these seeds (e.g. 15-29 or 0,3,5-7): a "
                   "study in parts; its [protocol] is still checked against the whole grid")
    p.add_argument("--batched", action="store_true", help="advance the cells that share game, oracle (with its "
                   "settings) and iterations in lockstep in one process, their best responses trained together "
                   "(as [sweep] executor = \"batched\")")


def _add_init_study_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                   help="finished runs of an oracle that trains parameters (none with --report-only)")
    p.add_argument("--out", required=True, help="study directory (created, or an unfinished study to continue)")
    p.add_argument("--at", help="iterations whose states are studied, e.g. 5,10,15 or 3-8 (default: every one from 3 on)")
    p.add_argument("--inits", default="normal,orthogonal,kaiming,inherit,fusion",
                   help="initializations to compare (default: %(default)s)")
    p.add_argument("--budgets", default="500,2000,6000,20000",
                   help="training budgets at which each response is measured, in the oracle's unit (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="training seeds per state, player and init (default: %(default)s)")
    p.add_argument("--init-option", action="append", default=[], type=_parse_option, metavar="KEY=VALUE",
                   help="setting of the inits that have it, e.g. shrink=0.5 (shrink-perturb); repeatable")
    p.add_argument("--seed", type=_non_negative, default=0,
                   help="seed of the study's training seeds (default: %(default)s)")
    p.add_argument("--workers", type=_positive, default=None,
                   help="local Ray workers (default: the CPU count; 1 runs in-process)")
    p.add_argument("--address", help="join this Ray cluster (HOST:PORT) instead of starting a local Ray")
    p.add_argument("--shard", default="0/1", metavar="K/N", help="run only every N-th cell from the K-th (default: all)")
    p.add_argument("--report-only", action="store_true", help="write the report of the finished cells, train nothing")


def _add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="DIR",
                   help="run directories written by fusion-psro run, or a sweep's directory (its runs, and the "
                        "analysis of its protocol)")
    p.add_argument("--out", help="write the Markdown report to this file, with its figures beside it")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--protocol", type=Path, metavar="CONFIG",
                   help="apply this sweep config's [protocol] to sweep directories that recorded none (exploratory)")


def _add_plot_arguments(p: argparse.ArgumentParser) -> None:
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


def _add_match_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", help="run directory of one side")
    p.add_argument("run_b", metavar="RUN_B", help="run directory of the other side (the same game)")
    p.add_argument("--json", action="store_true", help="print the values as JSON")


def _add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run directory")
    p.add_argument("--meta-game", action="store_true",
                   help="the payoff matrix between the final populations and the meta-strategies of every "
                        "iteration: meta_game.csv, meta_strategies.csv and meta_game.json")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write the files to")
    p.add_argument("--overwrite", action="store_true", help="replace the files if they exist")


def _add_repair_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="a finished run directory")


def _add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    from fusion_psro.games import DEFAULT_MAX_HISTORIES

    p.add_argument("--game", default="leduc_poker", help="OpenSpiel game string, or mixture (default: %(default)s)")
    p.add_argument("--population", type=_demo_population, default=50, dest="population_size",
                   help="policies per player in the demo populations (default: %(default)s)")
    p.add_argument("--seed", type=_non_negative, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--max-histories", type=int, default=DEFAULT_MAX_HISTORIES, help="enumeration limit (default: %(default)s)")


#: name -> (help, arguments, handler). Arguments are added only to the command being run, so
#: commands that only read runs never import what training commands need (PyTorch).
COMMANDS = {
    "compile": ("enumerate games into arrays and cache them on disk", _add_compile_arguments, _cmd_compile),
    "run": ("run PSRO / Fusion-PSRO into an output directory", _add_run_arguments, _cmd_run),
    "sweep": ("run a grid of PSRO runs (TOML config) as Ray tasks", _add_sweep_arguments, _cmd_sweep),
    "init-study": ("train best responses from each initialization at recorded PSRO states, paired and exact",
                   _add_init_study_arguments, _cmd_init_study),
    "report": ("table of final exploitability per method over run directories", _add_report_arguments, _cmd_report),
    "plot": ("exploitability curves (mean ± s.e. over seeds) of run directories, as PNG and SVG",
             _add_plot_arguments, _cmd_plot),
    "match": ("exact head-to-head value of two runs' final meta-strategy mixtures, in both seats",
              _add_match_arguments, _cmd_match),
    "export": ("write a run's meta-game and meta-strategies as CSV and JSON", _add_export_arguments, _cmd_export),
    "repair": ("restore a finished run's population files that differ from its manifest, from its checkpoint",
               _add_repair_arguments, _cmd_repair),
    "evaluate": ("exact evaluation demo: exploitability, payoff matrix, mixture", _add_evaluate_arguments, _cmd_evaluate),
    "approx-exploitability": ("approximate exploitability of a run's mixtures: trained best responses scored by "
                              "sampled games (a lower bound of NashConv / 2 with its confidence interval)",
                              _add_approx_arguments, _cmd_approx_exploitability),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line with a pointer to the help, not a usage block."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"fusion-psro: error: {message}; see `{self.prog} --help`\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``fusion-psro`` parser; with ``command``, only that subcommand gets its arguments
    (``""``: none, enough for the top-level help)."""
    from fusion_psro import __version__

    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress at INFO level")
    common.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar")
    common.add_argument("--plugin", action="append", default=argparse.SUPPRESS, metavar="MODULE",
                        help="import this module or .py file first, so the components it registers can be "
                             "named (repeatable)")
    parser = _Parser(
        prog="fusion-psro", parents=[common],
        description="Exact, vectorized PSRO and Nash Policy Fusion for two-player zero-sum games.",
    )
    parser.add_argument("--version", action="version", version=f"fusion-psro {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, parents=[common], description=help_text[:1].upper() + help_text[1:] + ".")
        if command is None or command == name:
            add_arguments(p)
        p.set_defaults(handler=handler)
    return parser


def _plugins(argv: list[str]) -> list[str]:
    """The ``--plugin`` values of ``argv``: loaded before the parser, whose choices they extend."""
    found = []
    for index, arg in enumerate(argv):
        if arg == "--plugin" and index + 1 < len(argv):
            found.append(argv[index + 1])
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the command of ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Bad input is one line, ``fusion-psro: error: ...``, with status 2; Ctrl-C at any moment,
    imports included, is one line saying what was kept, with status 130.
    """
    from fusion_psro import interrupts

    argv = sys.argv[1:] if argv is None else list(argv)
    parsed: dict[str, argparse.Namespace] = {}
    previous = interrupts.install()
    try:
        return _main(argv, parsed)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM during a sweep
        print(f"fusion-psro: {_stopped(exc, parsed.get('args'))}", file=sys.stderr)
        return 130
    except ImportError as exc:
        # Ctrl-C while an extension module (pyspiel) initializes reaches us as its ImportError.
        if not isinstance(exc.__cause__, KeyboardInterrupt):
            raise
        print(f"fusion-psro: {_stopped(exc.__cause__, parsed.get('args'))}", file=sys.stderr)
        return 130
    finally:
        interrupts.restore(previous)


def _stopped(exc: KeyboardInterrupt, args: argparse.Namespace | None) -> str:
    """What a stopped command kept, and how to go on, in one true sentence."""
    how = f"stopped ({exc})" if str(exc) else "stopped by Ctrl-C"
    if args is None:
        return f"{how} before the command started; nothing was written"
    command = args.command
    if command == "run":
        path = args.resume or args.out
        if path and any((Path(path) / "checkpoints").glob("iteration-*.npz")):
            return (f"{how}; the run's checkpoints in {path} are kept: `fusion-psro run --resume {path}` "
                    "continues it")
        if path and not args.resume:
            return f"{how} before its first iteration was recorded; nothing of the run was kept in {path}"
        return f"{how}; nothing was recorded"
    if command == "sweep":
        return (f"{how}; finished cells are kept, and an unfinished one continues from its last checkpoint: run "
                f"`fusion-psro sweep {args.config}{' --quick' if args.quick else ''}"
                f"{f' --seeds {args.seeds}' if args.seeds else ''}` again")
    if command == "init-study":
        return f"{how}; finished cells are kept in {args.out}: the same command continues the study"
    return how


def _main(argv: list[str], parsed: dict[str, argparse.Namespace]) -> int:
    from fusion_psro.registry import load_plugin

    try:
        for plugin in _plugins(argv):
            load_plugin(plugin)
    except FusionPSROError as exc:
        print(f"fusion-psro: error: {exc}", file=sys.stderr)
        return 2
    values = {i + 1 for i, a in enumerate(argv) if a == "--plugin"}
    command = next((a for i, a in enumerate(argv) if not a.startswith("-") and i not in values), None)
    parser = build_parser(command if command in COMMANDS else "")
    args = parser.parse_args(argv)
    parsed["args"] = args
    args.verbose = getattr(args, "verbose", False)
    args.quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    try:
        return args.handler(args)
    except FusionPSROError as exc:
        print(f"fusion-psro: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `fusion-psro report DIR/* | head`: the reader has what it wanted
        import os  # noqa: PLC0415

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141  # what a shell reports for a writer ended by SIGPIPE
    except OSError as exc:  # the file system failed under a running command (disk full, ...)
        if exc.errno == errno.ENAMETOOLONG and exc.filename:  # a path given too long: bad input
            from fusion_psro.files import name_too_long  # noqa: PLC0415

            print(f"fusion-psro: error: {name_too_long(exc.filename) or exc.strerror}", file=sys.stderr)
            return 2
        if args.verbose:
            raise
        print(f"fusion-psro: error: {exc} (-v shows where)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
