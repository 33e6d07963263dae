"""Benchmark the fusion-psro exact engine against the OpenSpiel reference implementations.

Both sides run in ONE process, on the SAME inputs (the same ``pyspiel.Game`` objects,
the same ``TabularPolicy`` objects, the same meta-strategy weights), and every number
is checked for agreement. Results go to stdout as Markdown (paste into the README);
progress goes to stderr.

    .venv/bin/python benchmarks/bench_engine.py                 # full run (several minutes)
    .venv/bin/python benchmarks/bench_engine.py --quick         # smoke run (~1 minute)
    .venv/bin/python benchmarks/bench_engine.py --json out.json

Timing protocol
---------------
* Ours: the engine is called once untimed (warm-up: compiles the game, or loads it from
  the cache, and builds per-policy row maps), then timed ``--repeats`` times. One-time
  compilation is reported separately (case 5).
* References (OpenSpiel Python / C++): not warmed up (they keep no state between calls);
  timed ``--repeats`` times, except the slowest ones, whose repeat counts are reduced and
  shown in the table.
* Every figure is the median of its repeats (``time.perf_counter``).

Exit status is 1 if any of our numbers differs from the reference by more than 1e-9.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib import metadata

import numpy as np
import pyspiel
from open_spiel.python import policy as openspiel_policy
from open_spiel.python.algorithms import exploitability as openspiel_exploitability
from open_spiel.python.algorithms import expected_game_score, policy_aggregator

import fusion_psro
from fusion_psro.evaluation import payoff_matrix
from fusion_psro.games import compiled as compiled_module

TOLERANCE = 1e-9
GOOFSPIEL = "goofspiel(num_cards=5,imp_info=True,points_order=descending)"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(fn, repeats: int, *, warmup: bool):
    """Run ``fn`` (once untimed if ``warmup``) then ``repeats`` timed times.

    Returns (times in seconds, result of the last call).
    """
    if warmup:
        fn()
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def random_tabular(game: pyspiel.Game, rng: np.random.Generator) -> openspiel_policy.TabularPolicy:
    """A TabularPolicy whose every row is Dirichlet(1) over the legal actions."""
    policy = openspiel_policy.TabularPolicy(game)
    mask = policy.legal_actions_mask.astype(np.float64)
    weights = rng.exponential(size=mask.shape) * mask
    policy.action_probability_array = weights / weights.sum(axis=1, keepdims=True)
    return policy


def fresh_copy(game: pyspiel.Game, policy: openspiel_policy.TabularPolicy) -> openspiel_policy.TabularPolicy:
    """A new TabularPolicy object (own lookup table) holding the same probabilities."""
    copy = openspiel_policy.TabularPolicy(game)
    copy.action_probability_array = policy.action_probability_array.copy()
    return copy


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


class Results:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.compile_rows: list[dict] = []

    def add(self, case, game, reference, ref_times, ours, ours_times, diff, target=None, note=""):
        ref_median = statistics.median(ref_times)
        ours_median = statistics.median(ours_times)
        ratio = ref_median / ours_median
        row = {
            "case": case,
            "game": game,
            "reference": reference,
            "ours": ours,
            "reference_repeats": len(ref_times),
            "ours_repeats": len(ours_times),
            "reference_median_s": ref_median,
            "ours_median_s": ours_median,
            "reference_times_s": ref_times,
            "ours_times_s": ours_times,
            "speedup": ratio,
            "target": target,
            "target_met": None if target is None else bool(ratio >= target),
            "max_abs_diff": float(diff),
            "agrees": bool(diff <= TOLERANCE),
            "note": note,
        }
        self.rows.append(row)
        log(f"  {case} {game} | {reference}: {fmt_time(ref_median)} vs ours {fmt_time(ours_median)} "
            f"-> {fmt_ratio(ratio)} (|diff| {diff:.1e})")

    def add_compile(self, game, description, cold_times, cached_times, diff):
        row = {
            "game": game,
            "size": description,
            "cold_repeats": len(cold_times),
            "cached_repeats": len(cached_times),
            "cold_median_s": statistics.median(cold_times),
            "cached_median_s": statistics.median(cached_times),
            "cold_times_s": cold_times,
            "cached_times_s": cached_times,
            "max_abs_diff": float(diff),
            "agrees": bool(diff <= TOLERANCE),
        }
        self.compile_rows.append(row)
        log(f"  compile {game}: cold {fmt_time(row['cold_median_s'])}, disk {fmt_time(row['cached_median_s'])}")


# ---------------------------------------------------------------------------------------
# Cases


def case_mixture(results: Results, rng, repeats: int, population_size: int) -> None:
    """1. Leduc: exploitability of meta-strategy mixtures of two populations."""
    log(f"case 1: Leduc mixture of {population_size} policies per player")
    game = pyspiel.load_game("leduc_poker")
    populations = [[random_tabular(game, rng) for _ in range(population_size)] for _ in range(2)]
    weights = [rng.dirichlet(np.ones(population_size)).tolist() for _ in range(2)]
    label = f"leduc_poker, {population_size}+{population_size} policies"

    aggregate_times, exploit_times, reference_value = [], [], None
    for _ in range(repeats):
        start = time.perf_counter()
        aggregated = policy_aggregator.PolicyAggregator(game).aggregate([0, 1], populations, weights)
        middle = time.perf_counter()
        reference_value = openspiel_exploitability.exploitability(game, aggregated)
        end = time.perf_counter()
        aggregate_times.append(middle - start)
        exploit_times.append(end - middle)
    total_times = [a + e for a, e in zip(aggregate_times, exploit_times)]

    ours_times, ours_value = timed(
        lambda: fusion_psro.mixture_exploitability(game, populations, weights), repeats, warmup=True
    )
    diff = abs(ours_value - reference_value)
    ours_name = "`mixture_exploitability`"
    results.add("1", label, "Python `PolicyAggregator.aggregate` + `exploitability`", total_times,
                ours_name, ours_times, diff, target=50)
    results.add("1", label, "Python `exploitability` of the aggregate only (aggregation excluded)", exploit_times,
                ours_name, ours_times, diff)

    # Our warm timing reuses the row map remembered per TabularPolicy object. A PSRO loop
    # meets new policy objects every iteration, so also time first sight of each object.
    fresh_times, fresh_diff = [], 0.0
    for _ in range(repeats):
        fresh = [[fresh_copy(game, member) for member in populations[p]] for p in range(2)]
        start = time.perf_counter()
        value = fusion_psro.mixture_exploitability(game, fresh, weights)
        fresh_times.append(time.perf_counter() - start)
        fresh_diff = max(fresh_diff, abs(value - reference_value))
    results.add("1", label, "Python `PolicyAggregator.aggregate` + `exploitability`", total_times,
                "`mixture_exploitability`, new policy objects each repeat", fresh_times, fresh_diff,
                note="no per-object row-map cache")


def case_single(results: Results, rng, repeats: int, case: str, game_string: str, *,
                python_repeats: int | None, target: float | None, turn_based: bool = False) -> None:
    """Exploitability of one random TabularPolicy: Python and C++ references vs ours."""
    game = pyspiel.load_game_as_turn_based(game_string) if turn_based else pyspiel.load_game(game_string)
    label = game_string
    tabular = random_tabular(game, rng)
    log(f"case {case}: {label}, one policy")

    ours_times, ours_value = timed(lambda: fusion_psro.exploitability(game, tabular), repeats, warmup=True)
    ours_name = "`exploitability`"

    if python_repeats:
        python_times, python_value = timed(
            lambda: openspiel_exploitability.exploitability(game, tabular), python_repeats, warmup=False
        )
        results.add(case, label, "Python `exploitability.exploitability`", python_times, ours_name, ours_times,
                    abs(ours_value - python_value), target=target,
                    note="" if python_repeats == repeats else f"reference repeats reduced to {python_repeats}")

    conversion_times, cpp_times, cpp_value = [], [], None
    for _ in range(repeats):
        start = time.perf_counter()
        cpp_policy = openspiel_policy.python_policy_to_pyspiel_policy(tabular)
        middle = time.perf_counter()
        cpp_value = pyspiel.exploitability(game, cpp_policy)
        end = time.perf_counter()
        conversion_times.append(middle - start)
        cpp_times.append(end - middle)
    diff = abs(ours_value - cpp_value)
    results.add(case, label, "C++ `pyspiel.exploitability` (call only)", cpp_times, ours_name, ours_times, diff,
                note="fairest reference")
    results.add(case, label, "C++ incl. `python_policy_to_pyspiel_policy` conversion",
                [c + e for c, e in zip(conversion_times, cpp_times)], ours_name, ours_times, diff,
                note=f"conversion alone: {fmt_time(statistics.median(conversion_times))}")


def case_payoff_matrix(results: Results, rng, repeats: int, reference_repeats: int, size: int) -> None:
    """4. Leduc payoff matrix of two populations of random tabular policies."""
    log(f"case 4: Leduc {size}x{size} payoff matrix")
    game = pyspiel.load_game("leduc_poker")
    compiled = fusion_psro.compile_game(game)
    populations = [[random_tabular(game, rng) for _ in range(size)] for _ in range(2)]
    label = f"leduc_poker, {size}x{size}"

    def reference():
        matrix = np.empty((size, size))
        for i, policy0 in enumerate(populations[0]):
            for j, policy1 in enumerate(populations[1]):
                matrix[i, j] = expected_game_score.policy_value(game.new_initial_state(), [policy0, policy1])[0]
        return matrix

    def convert():
        return [np.stack([fusion_psro.from_openspiel_policy(game, member, players=(p,))[0]
                          for member in populations[p]]) for p in range(2)]

    reference_times, reference_matrix = timed(reference, reference_repeats, warmup=False)
    arrays = convert()
    ours_times, ours_matrix = timed(lambda: payoff_matrix(compiled, arrays[0], arrays[1]), repeats, warmup=True)
    with_conversion_times, matrix2 = timed(
        lambda: payoff_matrix(compiled, *convert()), repeats, warmup=True
    )
    note = "" if reference_repeats == repeats else f"reference repeats reduced to {reference_repeats}"
    reference_name = f"Python `expected_game_score.policy_value` x {size * size}"
    results.add("4", label, reference_name, reference_times, "`evaluation.payoff_matrix` (arrays)",
                ours_times, np.max(np.abs(ours_matrix - reference_matrix)), note=note)
    results.add("4", label, reference_name, reference_times,
                f"`from_openspiel_policy` x {2 * size} + `payoff_matrix`",
                with_conversion_times, np.max(np.abs(matrix2 - reference_matrix)), note=note)


def _max_array_diff(a, b) -> float:
    """0 if two compiled games hold identical arrays, else the largest difference (inf if shapes differ)."""
    worst = 0.0
    fields = list(compiled_module._HISTORY_FIELDS)
    pairs = [(getattr(a, f), getattr(b, f)) for f in fields]
    for pa, pb in zip(a.players, b.players):
        pairs += [(getattr(pa, f), getattr(pb, f)) for f in compiled_module._PLAYER_FIELDS]
    for x, y in pairs:
        if x is None or y is None:
            if (x is None) != (y is None):
                return float("inf")
            continue
        if x.shape != y.shape:
            return float("inf")
        if x.dtype.kind in "fc":
            worst = max(worst, float(np.max(np.abs(x - y))) if x.size else 0.0)
        elif not np.array_equal(x, y):
            return float("inf")
    return worst


def case_compile(results: Results, repeats: int, games: list[tuple[str, bool]], cache_dir: str) -> None:
    """5. Cold enumeration and disk-cache load, for each game."""
    memory = compiled_module._MEMORY_CACHE
    for game_string, turn_based in games:
        game = pyspiel.load_game_as_turn_based(game_string) if turn_based else pyspiel.load_game(game_string)
        log(f"case 5: compile {game_string}")
        cold_times, cold = [], None
        for _ in range(repeats):
            memory.clear()  # compile_game(..., cache=False) still returns an in-memory entry
            start = time.perf_counter()
            cold = fusion_psro.compile_game(game, cache=False)
            cold_times.append(time.perf_counter() - start)
        memory.clear()
        fusion_psro.compile_game(game, cache_dir=cache_dir)  # writes the disk cache
        cached_times, cached = [], None
        for _ in range(repeats):
            memory.clear()
            start = time.perf_counter()
            cached = fusion_psro.compile_game(game, cache_dir=cache_dir)
            cached_times.append(time.perf_counter() - start)
        results.add_compile(game_string, cold.describe().split(": ", 1)[1], cold_times, cached_times,
                            _max_array_diff(cold, cached))
    # Leave every game in the in-memory cache (loaded from the temporary cache dir), so the
    # engine never writes to the user's default cache during the benchmark.


# ---------------------------------------------------------------------------------------
# Report


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict:
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "cpu": cpu_model,
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "open_spiel": metadata.version("open_spiel"),
        "fusion_psro": fusion_psro.__version__,
        "load_average_at_start": _load_average(),
    }


def render(results: Results, info: dict, args, repeats: int, total_s: float) -> str:
    lines = ["# fusion-psro engine vs OpenSpiel reference", ""]
    lines.append(
        f"Machine: {info['cpu']}, {info['cpu_count']} CPUs ({info['usable_cpus']} usable); "
        f"{info['platform']}; Python {info['python']}, numpy {info['numpy']}, "
        f"open_spiel {info['open_spiel']}, fusion_psro {info['fusion_psro']}."
    )
    lines.append("")
    lines.append(
        f"Mode: {'quick' if args.quick else 'full'}, {repeats} repeats, seed {args.seed}. Both sides run in one "
        "process on the same game and policy objects. Times are medians over repeats. **Our timings exclude "
        "one-time compilation**: each of our calls is made once untimed (warm-up), then timed; compilation is "
        "timed separately below. References are not warmed up (they keep no state between calls). "
        "Speed-up = reference median / our median. Max abs diff = largest absolute difference between our number "
        f"and the reference's (must be <= {TOLERANCE:g})."
    )
    lines.append("")
    lines.append("| # | Game | Reference | Ref. median | Ours | Our median | Speed-up | Target | Max abs diff | Repeats (ref/ours) | Note |")
    lines.append("|---|---|---|---:|---|---:|---:|---|---:|---|---|")
    for row in results.rows:
        if row["target"] is None:
            target = "—"
        else:
            target = f">= {row['target']:g}x: {'met' if row['target_met'] else '**NOT met**'}"
        lines.append(
            f"| {row['case']} | {row['game']} | {row['reference']} | {fmt_time(row['reference_median_s'])} | "
            f"{row['ours']} | {fmt_time(row['ours_median_s'])} | {fmt_ratio(row['speedup'])} | {target} | "
            f"{row['max_abs_diff']:.1e}{'' if row['agrees'] else ' **FAIL**'} | "
            f"{row['reference_repeats']}/{row['ours_repeats']} | {row['note']} |"
        )
    lines.append("")
    lines.append("Compilation (case 5): cold = `compile_game(g, cache=False)` with the in-memory cache cleared "
                 "(full tree enumeration); disk = `compile_game(g, cache_dir=tmp)` with the in-memory cache "
                 "cleared and the `.npz` already on disk. Max abs diff compares the loaded arrays with the enumerated ones.")
    lines.append("")
    lines.append("| Game | Size | Cold compile | Load from disk cache | Max abs diff | Repeats |")
    lines.append("|---|---|---:|---:|---:|---|")
    for row in results.compile_rows:
        lines.append(
            f"| {row['game']} | {row['size']} | {fmt_time(row['cold_median_s'])} | "
            f"{fmt_time(row['cached_median_s'])} | {row['max_abs_diff']:.1e}{'' if row['agrees'] else ' **FAIL**'} | "
            f"{row['cold_repeats']} |"
        )
    lines.append("")
    skipped = getattr(args, "_skipped", [])
    for item in skipped:
        lines.append(f"- Skipped: {item}")
    disagreements = [r for r in results.rows + results.compile_rows if not r["agrees"]]
    missed = [r for r in results.rows if r["target_met"] is False]
    lines.append(f"- Agreement: {'OK, every difference <= %g' % TOLERANCE if not disagreements else '**FAILED** in %d row(s)' % len(disagreements)}.")
    lines.append(f"- Targets: {'all met' if not missed else '**%d not met**' % len(missed)}.")
    lines.append(f"- Total benchmark run time: {total_s:.0f} s.")
    start_load, end_load = info.get("load_average_at_start"), info.get("load_average_at_end")
    if start_load and end_load:
        lines.append(
            f"- Load average (1/5/15 min) at start {start_load}, at end {end_load} on {info['usable_cpus']} usable "
            "CPUs; other processes competing for the CPUs inflate both sides' wall-clock times."
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: at most 2 repeats, smaller populations, no Python Liar's Dice reference")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--seed", type=int, default=0, help="random seed for policies and meta-strategies")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    started = time.perf_counter()
    repeats = min(args.repeats, 2) if args.quick else args.repeats
    # The slowest references (about 18 s per Liar's Dice call, about 80 s per 20x20 matrix)
    # get fewer repeats.
    slow_repeats = min(repeats, 2)
    population_size = 10 if args.quick else 50
    matrix_size = 5 if args.quick else 20
    args._skipped = []

    rng = np.random.default_rng(args.seed)
    results = Results()
    info = machine_info()
    log(f"machine: {info}")

    games = [("kuhn_poker", False), ("leduc_poker", False), (GOOFSPIEL, True), ("liars_dice", False)]
    with tempfile.TemporaryDirectory(prefix="fusion_psro_bench_") as cache_dir:
        # Case 5 runs first: it also leaves every game compiled in memory for the other cases.
        case_compile(results, repeats, games, cache_dir)
        case_mixture(results, rng, repeats, population_size)
        if args.quick:
            args._skipped.append("Python Liar's Dice reference (--quick)")
        case_single(results, rng, repeats, "2", "liars_dice", python_repeats=None if args.quick else slow_repeats,
                    target=10)
        case_single(results, rng, repeats, "3", "leduc_poker", python_repeats=repeats, target=None)
        case_single(results, rng, repeats, "3", "kuhn_poker", python_repeats=repeats, target=None)
        case_single(results, rng, repeats, "3", GOOFSPIEL, python_repeats=repeats, target=None, turn_based=True)
        case_payoff_matrix(results, rng, repeats, slow_repeats, matrix_size)

    # Keep the table in case order (case 5 ran first but is a separate table).
    results.rows.sort(key=lambda row: row["case"])
    total_s = time.perf_counter() - started
    info["load_average_at_end"] = _load_average()
    print(render(results, info, args, repeats, total_s))

    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": info, "mode": "quick" if args.quick else "full", "repeats": repeats,
                       "seed": args.seed, "tolerance": TOLERANCE, "total_s": total_s,
                       "rows": results.rows, "compile": results.compile_rows,
                       "skipped": args._skipped}, handle, indent=2)
        log(f"wrote {args.json}")

    failed = [r for r in results.rows + results.compile_rows if not r["agrees"]]
    if failed:
        log(f"DISAGREEMENT above {TOLERANCE:g} in {len(failed)} row(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
