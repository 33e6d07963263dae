"""Approximate exploitability of recorded runs (``fusion-psro approx-exploitability``) and during runs (``--eval approx``).

The estimate itself is :func:`fusion_psro.psro.approximate_exploitability.approximate_exploitability`
(trained best responses against each player's meta-strategy mixture, a budget ladder,
several seeds, the selected response scored on fresh games: a lower bound of NashConv / 2
with its 95% interval). This module gets the mixtures from a run directory or a running
:class:`~fusion_psro.psro.PSRO`, writes the record next to the run and formats it.

A run's members must be networks that play sampled games: a run in sampled play (their
policies are their networks), or a run of an oracle that also serves sampled play (the
DQN: its members' greedy Q-networks, rebuilt from their saved parameters; the uniform
policy that starts each population stays the uniform policy).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fusion_psro.errors import ConfigError
from fusion_psro.files import write_json_atomic
from fusion_psro.psro.config import DEFAULT_EVAL_BR_SEEDS, DEFAULT_EVAL_GAMES, PSROConfig

#: File (in the run directory) of the estimate after iteration K.
FILE_PATTERN = "approx-exploitability-iteration-{iteration:04d}.json"


def member_vectors(config: PSROConfig, populations) -> list[list[np.ndarray]]:
    """Each player's members as network policy vectors (:mod:`fusion_psro.oracles.network_policy`),
    written by the run's oracle (:meth:`~fusion_psro.oracles.base.Oracle.member_vector`)."""
    from fusion_psro.games.sampled import load_sampled_game, tensor_size  # noqa: PLC0415
    from fusion_psro.oracles.network_policy import uniform_vector  # noqa: PLC0415
    from fusion_psro.psro.spaces import game_kind  # noqa: PLC0415
    from fusion_psro.registry import ORACLES  # noqa: PLC0415

    config = config.resolved()
    if game_kind(config.game, config.evaluation).estimates_payoffs:
        return [[np.asarray(m.policy, dtype=np.float64) for m in pop] for pop in populations]
    oracle = ORACLES.get(config.oracle)
    settings = oracle.settings(config.oracle_options)
    hidden = oracle.member_hidden_sizes(settings)
    if hidden is None:
        raise ConfigError(
            f"the members of {_article(config.oracle)} {config.oracle}-oracle run are not networks that play "
            f"sampled games, so no best response can be trained against them by sampling; accepted: runs of "
            f"{ORACLES.accepted(lambda o: o.member_hidden_sizes(None) is not None)} (the exploitability of this run "
            "is exact: see its metrics.jsonl)"
        )
    game = load_sampled_game(config.game)
    uniform = uniform_vector(tensor_size(game), hidden, game.num_distinct_actions())
    return [[uniform if m.parameters is None else oracle.member_vector(settings, m.parameters) for m in pop]
            for pop in populations]


def settings_for(config: PSROConfig, *, br_episodes=None, br_seeds=None, eval_games=None, seed: int | None = None):
    """The :class:`~fusion_psro.psro.approximate_exploitability.ApproxSettings` of a run: its oracle and settings, and the budgets given
    (defaults: the run's ``eval_*`` settings, else ``--episodes``, 2 seeds, 10,000 games)."""
    from fusion_psro.psro.approximate_exploitability import ApproxSettings, trains_on_samples  # noqa: PLC0415
    from fusion_psro.registry import ORACLES  # noqa: PLC0415

    # The run's oracle trains the best responses if it can, else the DQN (with the settings it shares).
    oracle = config.oracle if config.oracle and trains_on_samples(ORACLES.get(config.oracle)) else "dqn"
    accepted = set(ORACLES.get(oracle).option_names()) - {ORACLES.get(oracle).budget_setting}
    options = {k: v for k, v in config.oracle_options.items() if k in accepted}
    return ApproxSettings(
        game=config.game,
        br_episodes=tuple(br_episodes or config.eval_br_episodes or (config.episodes,)),
        br_seeds=br_seeds or config.eval_br_seeds or DEFAULT_EVAL_BR_SEEDS,
        eval_games=eval_games or config.eval_games or DEFAULT_EVAL_GAMES,
        seed=config.seed if seed is None else seed, oracle_options=options, oracle=oracle,
    )


def _reference(config: PSROConfig):
    """The compiled game where the game compiles (exact numbers beside the estimate), else None."""
    from fusion_psro.games.compiled import compile_game  # noqa: PLC0415
    from fusion_psro.games.sampled import too_large_to_compile  # noqa: PLC0415

    return None if too_large_to_compile(config.game) else compile_game(config.game)


def approx_for_run(run_dir: Path | str, *, iteration: int | None = None, br_episodes=None, br_seeds=None,
                   eval_games=None, seed: int | None = None, workers: int = 1, address: str | None = None,
                   exact: bool = True, progress: bool = False) -> tuple[dict[str, Any], Path]:
    """The approximate exploitability of a finished run after ``iteration`` (default: the last);
    written to ``RUN_DIR/approx-exploitability-iteration-K.json``. Returns the record and the file.

    With ``progress``, a bar counts the training runs and scores as they end, with an ETA."""
    from tqdm.auto import tqdm  # noqa: PLC0415

    from fusion_psro.experiments.results import load_run  # noqa: PLC0415
    from fusion_psro.psro.approximate_exploitability import (  # noqa: PLC0415
        approximate_exploitability,
        strip_vectors,
        task_count,
    )
    from fusion_psro.psro.executors import make_executor  # noqa: PLC0415

    run = load_run(run_dir)
    iteration = iteration or run.iterations
    populations = run.population_at(iteration) if iteration != run.iterations else run.populations
    settings = settings_for(run.config, br_episodes=br_episodes, br_seeds=br_seeds, eval_games=eval_games, seed=seed)
    vectors = member_vectors(run.config, populations)
    executor = make_executor(workers, address)
    bar = tqdm(total=task_count(settings), desc="approx-exploitability (training runs, then scores)", unit="task",
               disable=not progress, dynamic_ncols=True)
    try:
        record = approximate_exploitability(settings, vectors, run.meta_strategies(iteration), executor=executor,
                                            reference=_reference(run.config) if exact else None,
                                            on_task_done=lambda: bar.update(1))
    finally:
        bar.close()
        executor.close()
    record = {"run": str(run.path), "iteration": iteration, **strip_vectors(record)}
    path = Path(run_dir) / FILE_PATTERN.format(iteration=iteration)
    write_json_atomic(path, _finite(record))
    return record, path


def _article(word: str) -> str:
    """``an`` before a vowel sound (``an exact-oracle run``), else ``a``."""
    return "an" if word[:1].lower() in "aeio" else "a"


def evaluate_during_run(psro, row) -> None:
    """``--eval approx``: add the approximate exploitability to the metrics ``row`` when it is due.

    Due every ``eval_every`` iterations and at the last (the one that reached ``--target-exploitability`` too). Adds ``approx_exploitability``
    (largest budget's estimate), ``approx_ci95``, ``approx`` (the whole record, without the
    responses' networks) and ``approx_s``.
    """
    from fusion_psro.psro.approximate_exploitability import approximate_exploitability, strip_vectors  # noqa: PLC0415

    config = psro.config
    if config.eval != "approx":
        return
    every = config.eval_every or config.iterations
    if row.iteration % every and row.iteration != config.iterations and not row.extra.get("target_reached"):
        return
    settings = settings_for(config, seed=int(psro.seed(row.iteration, 777)))
    vectors = member_vectors(config, psro.state.populations)
    reference = getattr(psro.space, "reference", None) or getattr(psro.space, "compiled", None)
    record = strip_vectors(approximate_exploitability(settings, vectors, psro.state.meta_strategies,
                                                      executor=psro.executor, reference=reference))
    row.extra.update(approx_exploitability=record["approx_exploitability"], approx_ci95=record["ci95"],
                     approx=_finite(record), approx_s=record["wall_s"])


def _finite(value: Any) -> Any:
    """JSON-safe: infinities and NaN as None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_record(record: dict[str, Any]) -> str:
    """A Markdown table of one estimate: per budget, the estimate, its interval, and the exact numbers where known."""
    exact = record.get("exact")
    lines = [f"{record['label']}.", "",
             f"{record['game']}, iteration {record.get('iteration', '?')}: {record['br_seeds']} training seeds per "
             f"player and budget, {record['eval_games']:,} games per score; 95% interval = estimate +- 1.96 s.e. "
             "of the fresh games.", ""]
    header = "| best-response episodes | approx. exploitability | 95% interval | selection score (biased) |"
    rule = "|---:|---:|---|---:|"
    if exact:
        header += " exact exploitability of the responses | exact exploitability |"
        rule += "---:|---:|"
    lines += [header, rule]
    for k, budget in enumerate(record["budgets"]):
        low, high = budget["ci95"]
        line = (f"| {budget['br_episodes']:,} | {budget['estimate']:.4f} | [{low:.4f}, {high:.4f}] | "
                f"{budget['selection_estimate']:.4f} |")
        if exact:
            line += f" {exact['budgets'][k]['exploitability_of_responses']:.4f} | {exact['exploitability']:.4f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def approx_section(runs) -> list[str]:
    """Report lines on the approximate exploitability of runs that measured it (``--eval approx``), else none.

    Per method: the final estimate (largest budget) as mean +- standard error over seeds,
    and each seed's estimate with its own 95% interval.
    """
    from fusion_psro.experiments.runs import group_by_method, mean_and_standard_error, method_label, varying_settings

    measured = [r for r in runs if r.final.get("approx_exploitability") is not None]
    if not measured:
        return []
    varying = varying_settings(runs)
    budgets = sorted({b["br_episodes"] for r in measured for b in r.final["approx"]["budgets"]})
    lines = ["Approximate exploitability after the last iteration (a lower bound of NashConv / 2: DQN best responses "
             f"trained for {', '.join(f'{b:,}' for b in budgets)} episodes against each player's mixture, the best of "
             "the training seeds scored on fresh sampled games; per seed, the estimate at the largest budget and its "
             "95% interval):", "",
             "| method | seeds | approx. exploitability (mean ± s.e. over seeds) | per seed: estimate [95% interval] |",
             "|---|---|---|---|"]
    for members in group_by_method(measured).values():
        values = [r.final["approx_exploitability"] for r in members]
        mean, error = mean_and_standard_error(values)
        per_seed = "; ".join(f"{r.final['approx_exploitability']:.3f} [{r.final['approx_ci95'][0]:.3f}, "
                             f"{r.final['approx_ci95'][1]:.3f}]" for r in members)
        error_text = "n/a" if math.isnan(error) else f"{error:.4f}"
        lines.append(f"| {method_label(members[0].settings, varying)} | {len(members)} | {mean:.4f} ± {error_text} | "
                     f"{per_seed} |")
    return lines + [""]


__all__ = ["FILE_PATTERN", "approx_for_run", "approx_section", "evaluate_during_run", "format_record", "member_vectors",
           "settings_for"]
