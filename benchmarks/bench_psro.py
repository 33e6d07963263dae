"""PSRO on Leduc poker: fusion_psro's exact-oracle PSRO vs OpenSpiel's ``psro_v2``.

Both run in ONE process, for the same number of iterations, and the exploitability of
each one's meta-Nash mixture is reported after every iteration, with wall times.

    .venv/bin/python benchmarks/bench_psro.py                      # 40 iterations, 3 reference seeds
    .venv/bin/python benchmarks/bench_psro.py --iterations 5 --seeds 1 --no-exact-metagame   # smoke

Markdown goes to stdout, progress to stderr; ``--json FILE`` also writes every number.

Extra packages (benchmark only, NOT project dependencies) -- ``psro_v2`` imports them:

* ``cvxpy`` -- ``open_spiel.python.algorithms.lp_solver`` (the "nash" meta-solver) is
  written on cvxpy;
* ``ecos`` -- lp_solver's default solver is ECOS, which cvxpy >= 1.6 no longer bundles
  (``cvxopt`` is NOT needed: lp_solver only mentions it in comments);
* ``matplotlib`` -- ``psro_v2.utils`` imports ``open_spiel.python.egt.alpharank``, which
  imports matplotlib at module level.

    .venv/bin/pip install cvxpy ecos matplotlib

The script exits with status 2 and says so if any of them is missing.

What is compared
----------------
* **Ours**: ``PSRO(PSROConfig(game="leduc_poker", iterations=N)).run()`` -- exact
  best-response oracle, exact meta-game (payoffs computed exactly, not sampled), Nash
  meta-solver by LP, uniform initial policy for both players, one best response per
  player per iteration. Deterministic, so one run. Its evaluation (exact exploitability
  of the meta-Nash mixture) runs inside each iteration; it is timed separately by
  wrapping the policy space's ``evaluate`` so PSRO time with and without evaluation can be reported.
* **Reference**: OpenSpiel ``psro_v2.PSROSolver`` configured as in
  ``open_spiel/python/examples/psro_v2_example.py`` with ``oracle_type=BR``:
  ``BestResponseOracle`` (exact best response, ``--backend``, default ``cpp``), 2
  players, ``meta_strategy_method="nash"``, ``sims_per_entry=1000`` (sampled meta-game),
  ``training_strategy_selector="probabilistic"``, ``number_policies_selected=1``,
  ``rectifier=""``, ``symmetric_game=False``, ``sample_from_marginals=True`` (as the
  example), initial policy ``TabularPolicy(game)`` (uniform). The game is loaded as the
  example does (``load_game_as_turn_based("leduc_poker", {"players": 2})``). Its meta-game
  is sampled, so it runs for ``--seeds`` seeds (``np.random`` and ``random`` are both
  seeded: psro_v2 samples with both).
* **Reference, exact meta-game** (unless ``--no-exact-metagame``): psro_v2 has no option
  for an exact meta-game, so this variant subclasses ``PSROSolver`` and overrides its one
  sampling hook, ``sample_episodes``, to return exact expected returns
  (``pyspiel.expected_returns`` on ``pyspiel.TabularPolicy`` copies of the policies,
  converted once per policy). Everything else is unchanged. With an exact meta-game the
  only remaining randomness (the "probabilistic" training-strategy selector) does not
  affect an exact best response, so one run (seed 0) is made.

Exploitability = NashConv / 2 throughout. For the reference it is computed as the example
does: ``PolicyAggregator(game).aggregate(range(2), policies, meta_strategies)`` then
``exploitability.nash_conv``, divided by 2; this evaluation is timed separately from the
PSRO iteration. Ours comes from fusion_psro's exact evaluator (same definition); at the
final iteration both sides are cross-checked with the other side's evaluator.

The reference iteration is run as its three phases (``update_agents``,
``update_empirical_gamestate``, ``update_meta_strategies``: exactly what
``PSROSolver.iteration()`` does) so the oracle, meta-game and meta-solver times can be
reported separately. Exit status 1 if a cross-check disagrees by more than 1e-6.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import random
import shlex
import statistics
import sys
import time
from importlib import metadata

import numpy as np

EXTRA_PACKAGES = ("cvxpy", "ecos", "matplotlib")
CROSS_CHECK_TOLERANCE = 1e-6


def check_extra_packages() -> None:
    missing = []
    for name in EXTRA_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if not missing:
        import cvxpy

        if "ECOS" not in cvxpy.installed_solvers():
            missing.append("ecos (cvxpy does not see the ECOS solver)")
    if missing:
        print(
            "bench_psro.py needs benchmark-only packages that OpenSpiel's psro_v2 imports: "
            f"missing {', '.join(missing)}.\nInstall them with:\n"
            "    .venv/bin/pip install cvxpy ecos matplotlib",
            file=sys.stderr,
        )
        sys.exit(2)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------- ours
def run_ours(iterations: int) -> dict:
    from fusion_psro.psro import PSRO, PSROConfig

    started = time.perf_counter()
    psro = PSRO(PSROConfig(game="leduc_poker", iterations=iterations))
    setup_s = time.perf_counter() - started

    eval_times: list[float] = []
    evaluate = psro.space.evaluate

    def timed_evaluate(meta_game, meta_strategies):
        t0 = time.perf_counter()
        result = evaluate(meta_game, meta_strategies)
        eval_times.append(time.perf_counter() - t0)
        return result

    psro.space.evaluate = timed_evaluate  # instance attribute: wraps, does not change, the method

    def progress(row):
        log(f"ours   it {row.iteration:3d}  expl {row.exploitability:.4f}  cum {row.wall_s:.2f}s")

    rows = [row.to_json() for row in psro.run(callback=progress)]
    per_iteration = []
    cumulative_eval = 0.0
    for row, eval_s in zip(rows, eval_times, strict=True):
        cumulative_eval += eval_s
        per_iteration.append({
            "iteration": row["iteration"],
            "exploitability": row["exploitability"],
            "nash_conv": row["nash_conv"],
            "psro_s": row["iteration_s"] - eval_s,
            "eval_s": eval_s,
            "cum_with_eval_s": row["wall_s"],
            "cum_psro_s": row["wall_s"] - cumulative_eval,
        })
    return {"setup_s": setup_s, "rows": per_iteration, "psro": psro}


def cross_check_ours(ours: dict) -> dict:
    """Exploitability of our final mixture by OpenSpiel's evaluator (PolicyAggregator + nash_conv)."""
    import fusion_psro
    from open_spiel.python.algorithms import exploitability, policy_aggregator

    psro = ours["psro"]
    compiled = psro.compiled
    game = compiled.openspiel_game
    uniform = [m.policy for m in (psro.state.populations[0][0], psro.state.populations[1][0])]
    populations = []
    for player in range(2):
        policies = []
        for member in psro.state.populations[player]:
            profile = list(uniform)
            profile[player] = member.policy
            policies.append(fusion_psro.to_openspiel_policy(compiled, profile))
        populations.append(policies)
    weights = [np.asarray(w, dtype=float) for w in psro.state.meta_strategies]
    aggregated = policy_aggregator.PolicyAggregator(game).aggregate(range(2), populations, weights)
    openspiel_value = exploitability.nash_conv(game, aggregated) / 2
    return {"ours": ours["rows"][-1]["exploitability"], "openspiel_evaluator": openspiel_value}


# ------------------------------------------------------------------------ reference
def load_reference_game():
    import pyspiel

    return pyspiel.load_game_as_turn_based("leduc_poker", {"players": 2})


def make_exact_solver_class():
    import pyspiel
    from open_spiel.python.algorithms.psro_v2 import psro_v2

    class ExactMetaGamePSROSolver(psro_v2.PSROSolver):
        """psro_v2 with exact meta-game payoffs: only ``sample_episodes`` is overridden."""

        def __init__(self, game, oracle, *args, all_states, state_to_information_state, **kwargs):
            self._all_states = all_states
            self._state_to_information_state = state_to_information_state
            self._converted: dict[int, tuple[object, object]] = {}
            super().__init__(game, oracle, *args, **kwargs)

        def _cpp_policy(self, policy, player):
            key = id(policy)
            if key not in self._converted:
                table = {}
                for state in self._all_states.values():
                    if state.is_terminal() or state.is_chance_node() or state.current_player() != player:
                        continue
                    info = self._state_to_information_state[state.history_str()]
                    if info not in table:
                        table[info] = list(policy.action_probabilities(state).items())
                # keep the policy alive so its id cannot be reused while cached
                self._converted[key] = (policy, pyspiel.TabularPolicy(table))
            return self._converted[key][1]

        def sample_episodes(self, policies, num_episodes):
            del num_episodes
            cpp_policies = [self._cpp_policy(p, k) for k, p in enumerate(policies)]
            returns = pyspiel.expected_returns(self._game.new_initial_state(), cpp_policies, -1, True)
            return np.asarray(returns, dtype=float)

    return ExactMetaGamePSROSolver


def run_reference(iterations: int, seed: int, *, backend: str, sims_per_entry: int, exact_metagame: bool) -> dict:
    from open_spiel.python import policy
    from open_spiel.python.algorithms import exploitability, policy_aggregator
    from open_spiel.python.algorithms.psro_v2 import best_response_oracle, psro_v2
    from open_spiel.python.algorithms.psro_v2 import utils as psro_utils

    label = f"ref{'-exact' if exact_metagame else ''} s{seed}"
    np.random.seed(seed)
    random.seed(seed)
    started = time.perf_counter()
    game = load_reference_game()
    random_policy = policy.TabularPolicy(game)
    oracle = best_response_oracle.BestResponseOracle(
        game=game, policy=random_policy, best_response_backend=backend)
    agents = [random_policy.__copy__() for _ in range(2)]
    kwargs = dict(
        initial_policies=agents,
        training_strategy_selector="probabilistic",
        rectifier="",
        sims_per_entry=sims_per_entry,
        number_policies_selected=1,
        meta_strategy_method="nash",
        prd_iterations=50000,  # passed by the example; unused by "nash"
        prd_gamma=1e-10,
        sample_from_marginals=True,
        symmetric_game=False,
    )
    stdout = sys.stdout
    sys.stdout = sys.stderr  # psro_v2 prints its settings; keep stdout for the Markdown
    try:
        if exact_metagame:
            if backend == "cpp":
                all_states, state_to_info = oracle.all_states, oracle.state_to_information_state
            else:
                all_states, state_to_info = psro_utils.compute_states_and_info_states_if_none(game)
            solver_class = make_exact_solver_class()
            solver = solver_class(game, oracle, all_states=all_states,
                                  state_to_information_state=state_to_info, **kwargs)
        else:
            solver = psro_v2.PSROSolver(game, oracle, **kwargs)
    finally:
        sys.stdout = stdout
    setup_s = time.perf_counter() - started

    rows = []
    cum_psro = cum_eval = 0.0
    for iteration in range(1, iterations + 1):
        t0 = time.perf_counter()
        solver._iterations += 1  # what PSROSolver.iteration() does, phase by phase
        solver.update_agents()
        t1 = time.perf_counter()
        solver.update_empirical_gamestate(seed=None)
        t2 = time.perf_counter()
        solver.update_meta_strategies()
        t3 = time.perf_counter()
        aggregated = policy_aggregator.PolicyAggregator(game).aggregate(
            range(2), solver.get_policies(), solver.get_meta_strategies())
        nash_conv = exploitability.nash_conv(game, aggregated)
        t4 = time.perf_counter()
        cum_psro += t3 - t0
        cum_eval += t4 - t3
        rows.append({
            "iteration": iteration,
            "exploitability": nash_conv / 2,
            "nash_conv": nash_conv,
            "oracle_s": t1 - t0,
            "metagame_s": t2 - t1,
            "metasolve_s": t3 - t2,
            "psro_s": t3 - t0,
            "eval_s": t4 - t3,
            "cum_psro_s": cum_psro,
            "cum_with_eval_s": cum_psro + cum_eval,
        })
        log(f"{label:14s} it {iteration:3d}  expl {nash_conv / 2:.4f}  psro {t3 - t0:6.2f}s "
            f"(oracle {t1 - t0:.2f} meta-game {t2 - t1:.2f} solve {t3 - t2:.2f})  eval {t4 - t3:.2f}s  "
            f"cum {cum_psro + cum_eval:.1f}s  load {loadavg()}")
    return {"seed": seed, "setup_s": setup_s, "rows": rows, "solver": solver, "game": game}


def cross_check_reference(reference: dict) -> dict:
    """Exploitability of the reference's final mixture by fusion_psro's evaluator."""
    import fusion_psro

    solver = reference["solver"]
    value = fusion_psro.mixture_exploitability(
        reference["game"], solver.get_policies(), [np.asarray(w, dtype=float) for w in solver.get_meta_strategies()])
    return {"openspiel_evaluator": reference["rows"][-1]["exploitability"], "fusion_psro_evaluator": value}


# -------------------------------------------------------------------------- report
def summarize(rows: list[dict], window: int) -> dict:
    values = [r["exploitability"] for r in rows]
    last = values[-window:]
    best = int(np.argmin(values))
    return {
        "final": values[-1],
        "mean_last": float(np.mean(last)),
        "min": values[best],
        "argmin": rows[best]["iteration"],
        "total_with_eval_s": rows[-1]["cum_with_eval_s"],
        "total_psro_s": rows[-1]["cum_psro_s"],
        "total_eval_s": rows[-1]["cum_with_eval_s"] - rows[-1]["cum_psro_s"],
    }


def fmt(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}"


def mean_std(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return fmt(values[0], digits)
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def render(args, command: str, ours: dict, refs: list[dict], exact: dict | None, checks: dict,
           env: dict) -> str:
    n = args.iterations
    window = min(10, n)
    lo = n - window + 1
    out = []
    out.append("# PSRO on Leduc poker: fusion_psro vs OpenSpiel psro_v2 (exact best-response oracles)\n")
    out.append(f"Command (from the repository root):\n\n```\n{command}\n```\n")
    out.append(
        f"Machine: {env['cpus']} CPUs ({env['cpu']}), Python {env['python']}, numpy {env['numpy']}, "
        f"open_spiel {env['open_spiel']}, cvxpy {env['cvxpy']}, ecos {env['ecos']}. "
        f"Load average (1/5/15 min) at start {env['load_start']}, at end {env['load_end']}; "
        f"started {env['started']}, total run {env['elapsed_s']:.0f} s.\n")
    out.append(
        "**Exploitability = NashConv / 2** (OpenSpiel's `exploitability.exploitability` for 2 players), "
        "of each side's meta-Nash mixture after the iteration. Reference: `PolicyAggregator` + "
        "`exploitability.nash_conv` (as `psro_v2_example.py`), divided by 2. Ours: fusion_psro's exact "
        "evaluator (same definition; cross-checked below).\n")
    out.append(
        "* **ours**: `PSRO(PSROConfig(game=\"leduc_poker\", iterations=N)).run()`: exact BR oracle, "
        "exact meta-game, LP Nash, uniform initial policies; deterministic, 1 run.\n"
        f"* **ref**: OpenSpiel {env['open_spiel']} `psro_v2.PSROSolver`, `BestResponseOracle("
        f"best_response_backend=\"{args.backend}\")`, meta-solver `nash` (cvxpy + ECOS LP), "
        f"`sims_per_entry={args.sims_per_entry}` (sampled meta-game), `training_strategy_selector="
        "\"probabilistic\"`, `number_policies_selected=1`, `rectifier=\"\"`, `symmetric_game=False`, "
        "`sample_from_marginals=True`, initial `TabularPolicy(game)` (uniform); "
        f"seeds {', '.join(str(r['seed']) for r in refs)}.\n"
        + ("* **ref-exact**: the same psro_v2 solver with its sampling hook `sample_episodes` overridden "
           "to return exact expected returns (`pyspiel.expected_returns`): psro_v2 has no exact meta-game "
           "option, this is a small subclass. Deterministic in effect (the \"probabilistic\" selector "
           "does not affect an exact BR), 1 run.\n" if exact else ""))

    ref_cols = [f"ref s{r['seed']}" for r in refs]
    header = ["iteration", "ours", "ref mean"] + ref_cols + (["ref-exact"] if exact else [])
    out.append(f"## Exploitability by iteration (every 5th and the last)\n")
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---:|" * len(header))
    shown = [i for i in range(1, n + 1) if i % 5 == 0 or i == n]

    def line(i):
        ref_values = [r["rows"][i - 1]["exploitability"] for r in refs]
        cells = [str(i), fmt(ours["rows"][i - 1]["exploitability"]), fmt(statistics.mean(ref_values))]
        cells += [fmt(v) for v in ref_values]
        if exact:
            cells.append(fmt(exact["rows"][i - 1]["exploitability"]))
        return "| " + " | ".join(cells) + " |"

    out.extend(line(i) for i in shown)
    out.append("")

    s_ours = summarize(ours["rows"], window)
    s_refs = [summarize(r["rows"], window) for r in refs]
    s_exact = summarize(exact["rows"], window) if exact else None
    out.append("## Summary\n")
    out.append(f"Mean over iterations {lo}-{n}; min over all {n} iterations (iteration reached); "
               f"ref column: mean ± sample std over {len(refs)} seed(s), per-seed values in brackets. "
               "Times in seconds, cumulative over the iterations; setup (building the solver/oracle, "
               "game compilation or loading) is listed separately and not included.\n")
    header = ["", "ours", "ref (sampled meta-game)"] + (["ref-exact"] if exact else [])
    out.append("| " + " | ".join(header) + " |")
    out.append("|---|" + "---:|" * (len(header) - 1))

    def row(name, key, digits=4):
        cells = [name, fmt(s_ours[key], digits)]
        per_seed = [s[key] for s in s_refs]
        text = mean_std(per_seed, digits)
        if len(per_seed) > 1:
            text += " [" + ", ".join(fmt(v, digits) for v in per_seed) + "]"
        cells.append(text)
        if exact:
            cells.append(fmt(s_exact[key], digits))
        out.append("| " + " | ".join(cells) + " |")

    row(f"exploitability, final (it {n})", "final")
    row(f"exploitability, mean it {lo}-{n}", "mean_last")
    row("exploitability, min over run", "min")
    cells = ["iteration of the min", str(s_ours["argmin"]),
             ", ".join(str(s["argmin"]) for s in s_refs)] + ([str(s_exact["argmin"])] if exact else [])
    out.append("| " + " | ".join(cells) + " |")
    row("wall time, PSRO + evaluation (s)", "total_with_eval_s", 2)
    row("wall time, PSRO only (s)", "total_psro_s", 2)
    row("wall time, evaluation only (s)", "total_eval_s", 2)
    cells = ["setup (s)", fmt(ours["setup_s"], 2), mean_std([r["setup_s"] for r in refs], 2)]
    if exact:
        cells.append(fmt(exact["setup_s"], 2))
    out.append("| " + " | ".join(cells) + " |")
    out.append("")

    ref_total = statistics.mean(s["total_with_eval_s"] for s in s_refs)
    ref_psro = statistics.mean(s["total_psro_s"] for s in s_refs)
    out.append(
        f"Wall-time ratio reference / ours (mean over seeds): PSRO + evaluation "
        f"**{ref_total / s_ours['total_with_eval_s']:.0f}x** ({ref_total:.1f} s vs "
        f"{s_ours['total_with_eval_s']:.2f} s); PSRO only **{ref_psro / s_ours['total_psro_s']:.0f}x** "
        f"({ref_psro:.1f} s vs {s_ours['total_psro_s']:.2f} s)."
        + (f" ref-exact / ours, PSRO + evaluation: {s_exact['total_with_eval_s'] / s_ours['total_with_eval_s']:.0f}x." if exact else "")
        + "\n")

    parts = []
    for r in refs + ([exact] if exact else []):
        name = "ref-exact" if r is exact else f"ref s{r['seed']}"
        sums = {p: sum(x[p] for x in r["rows"]) for p in ("oracle_s", "metagame_s", "metasolve_s", "eval_s")}
        parts.append(f"{name}: oracle {sums['oracle_s']:.1f}, meta-game {sums['metagame_s']:.1f}, "
                     f"meta-solve {sums['metasolve_s']:.1f}, evaluation {sums['eval_s']:.1f}")
    out.append("Reference time by phase, summed over the iterations (s): " + "; ".join(parts)
               + f". Ours: PSRO {s_ours['total_psro_s']:.2f}, evaluation {s_ours['total_eval_s']:.2f}.\n")

    out.append("## Cross-checks of the evaluators (final iteration)\n")
    for name, check in checks.items():
        a, b = list(check.items())
        out.append(f"* {name}: {a[0]} {a[1]:.10f}, {b[0]} {b[1]:.10f} (|diff| {abs(a[1] - b[1]):.1e})")
    out.append("")

    out.append("## Exploitability at every iteration\n")
    header = ["iteration", "ours", "ours cum s"] + ref_cols + ["ref s0 cum s" if refs else ""] + (["ref-exact", "ref-exact cum s"] if exact else [])
    header = [h for h in header if h]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---:|" * len(header))
    for i in range(1, n + 1):
        cells = [str(i), fmt(ours["rows"][i - 1]["exploitability"]), fmt(ours["rows"][i - 1]["cum_with_eval_s"], 2)]
        cells += [fmt(r["rows"][i - 1]["exploitability"]) for r in refs]
        if refs:
            cells.append(fmt(refs[0]["rows"][i - 1]["cum_with_eval_s"], 1))
        if exact:
            cells += [fmt(exact["rows"][i - 1]["exploitability"]), fmt(exact["rows"][i - 1]["cum_with_eval_s"], 1)]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("`cum s` = cumulative wall time including evaluation; the ref s0 column is the first seed.\n")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3, help="number of reference seeds (0, 1, ...)")
    parser.add_argument("--backend", choices=("cpp", "py"), default="cpp",
                        help="BestResponseOracle backend of the reference")
    parser.add_argument("--sims-per-entry", type=int, default=1000)
    parser.add_argument("--no-exact-metagame", action="store_true",
                        help="skip the reference variant with an exact meta-game")
    parser.add_argument("--json", help="also write every number to this file")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.seeds < 1:
        parser.error("--iterations and --seeds must be >= 1")

    check_extra_packages()
    command = " ".join([".venv/bin/python", "benchmarks/bench_psro.py"] + [shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])])
    env = {
        "cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(), "numpy": np.__version__,
        "open_spiel": metadata.version("open_spiel"), "cvxpy": metadata.version("cvxpy"),
        "ecos": metadata.version("ecos"), "load_start": loadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        with open("/proc/cpuinfo") as handle:
            names = [l.split(":", 1)[1].strip() for l in handle if l.startswith("model name")]
        if names:
            env["cpu"] = names[0]
    except OSError:
        pass
    t_start = time.perf_counter()

    # Import the reference stack up front, so import time is in nobody's numbers.
    from open_spiel.python.algorithms.psro_v2 import psro_v2  # noqa: F401

    log(f"ours: {args.iterations} iterations")
    ours = run_ours(args.iterations)
    refs = []
    for seed in range(args.seeds):
        log(f"reference seed {seed}: {args.iterations} iterations, backend {args.backend}")
        refs.append(run_reference(args.iterations, seed, backend=args.backend,
                                  sims_per_entry=args.sims_per_entry, exact_metagame=False))
    exact = None
    if not args.no_exact_metagame:
        log("reference with exact meta-game")
        exact = run_reference(args.iterations, 0, backend=args.backend,
                              sims_per_entry=args.sims_per_entry, exact_metagame=True)

    log("cross-checks")
    checks = {"ours, final mixture": cross_check_ours(ours)}
    for r in refs:
        checks[f"ref s{r['seed']}, final mixture"] = cross_check_reference(r)
    if exact:
        checks["ref-exact, final mixture"] = cross_check_reference(exact)
    env["load_end"] = loadavg()
    env["elapsed_s"] = time.perf_counter() - t_start

    print(render(args, command, ours, refs, exact, checks, env))
    if args.json:
        payload = {
            "args": vars(args), "env": env, "command": command,
            "ours": {"setup_s": ours["setup_s"], "rows": ours["rows"]},
            "reference": [{"seed": r["seed"], "setup_s": r["setup_s"], "rows": r["rows"]} for r in refs],
            "reference_exact": None if exact is None else {"setup_s": exact["setup_s"], "rows": exact["rows"]},
            "cross_checks": checks,
        }
        with open(args.json, "w") as handle:
            json.dump(payload, handle, indent=1)
    bad = [name for name, c in checks.items() if abs(np.subtract(*list(c.values()))) > CROSS_CHECK_TOLERANCE]
    if bad:
        log(f"cross-check disagreement: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
