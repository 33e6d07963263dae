"""Approximate exploitability: best responses trained against the meta-strategy mixtures, scored by sampled games.

Where exploitability cannot be computed (a game too large to compile), it can be bounded
from below. For each player ``p``:

1. **Train.** ``br_seeds`` DQN best responses to the opponent's meta-strategy mixture
   (a member drawn per episode from its meta-strategy, as PSRO's own best responses face
   it), each one training run measured at every budget of the ladder ``br_episodes``
   (snapshots of the same run at those episode counts).
2. **Select.** Each snapshot is scored by ``eval_games`` sampled games against the mixture;
   per budget, the seed with the highest score is selected.
3. **Score afresh.** Taking the best of several noisy scores biases the selected score
   upwards (the maximum of estimates overestimates the maximum of their means). So the
   selected response is scored again on ``eval_games`` *fresh* games (another seed): that
   estimate of its value ``v_p`` is unbiased, and its standard error ``s_p`` is the sample
   standard deviation of the games' returns over ``sqrt(eval_games)``.

Then, per budget, ``approximate exploitability = (v_0 + v_1 - utility_sum) / 2`` (OpenSpiel's
exploitability, NashConv / 2, with the trained responses in place of best responses). Its
standard error is ``sqrt(s_0^2 + s_1^2) / 2`` (the two players' fresh games are
independent), and its 95% interval is the estimate +- 1.96 standard errors (normal
approximation of a mean of bounded i.i.d. returns). A trained response is at most a best
response, so the expected estimate is a **lower bound** of the exploitability: the
interval covers the trained responses' value, not the true exploitability, which lies
above it by the responses' shortfall (what the calibration against exact exploitability
on compiled games measures). The selection scores (biased upwards) are reported beside it.

Where the game compiles, the exact exploitability of the same mixtures and the exact value
of every selected response are reported too (``exact``).

Every draw is seeded from ``seed``, the player, the training seed and the budget, so the
same inputs give the same estimate on any executor (:mod:`fusion_psro.psro.executors`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from fusion_psro.errors import ConfigError
from fusion_psro.psro.sampled_space import Z95, standard_error

#: What the estimate is, for tables and files.
LABEL = ("approximate exploitability: trained best responses (DQN) against the meta-strategy mixtures, "
         "scored on fresh sampled games; a lower bound of exploitability = NashConv / 2")


@dataclasses.dataclass(frozen=True)
class ApproxSettings:
    """Budgets and sample sizes of an approximate exploitability; see the module docstring."""

    game: str
    br_episodes: tuple[int, ...]
    br_seeds: int = 2
    eval_games: int = 10_000
    seed: int = 0
    #: DQN settings of the best responses (the run's oracle options; ``episodes`` is the largest budget).
    oracle_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        budgets = tuple(sorted({int(b) for b in self.br_episodes}))
        if not budgets or budgets[0] < 1:
            raise ConfigError(f"br_episodes must be positive episode counts, got {self.br_episodes!r}")
        object.__setattr__(self, "br_episodes", budgets)
        if isinstance(self.br_seeds, bool) or not isinstance(self.br_seeds, int) or self.br_seeds < 1:
            raise ConfigError(f"br_seeds must be an integer >= 1, got {self.br_seeds!r}")
        if isinstance(self.eval_games, bool) or not isinstance(self.eval_games, int) or self.eval_games < 2:
            raise ConfigError(f"eval_games must be an integer >= 2, got {self.eval_games!r}")


def _seed(settings: ApproxSettings, *path: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(settings.seed), 4242, *path])


def _mixture_seat(game, vectors, weights):
    from fusion_psro.games.sampled import tensor_size  # noqa: PLC0415
    from fusion_psro.oracles.network_policy import NetworkSeat  # noqa: PLC0415

    return NetworkSeat(vectors, weights, tensor_size(game), game.num_distinct_actions())


def score(settings: ApproxSettings, player: int, vector: np.ndarray, opponents, weights, seed) -> tuple[float, float, int]:
    """``(mean, standard error, games)`` of ``player``'s return, network ``vector`` against the mixture."""
    from fusion_psro.games.sampled import load_sampled_game, play_games  # noqa: PLC0415

    game = load_sampled_game(settings.game)
    own, mixture = _mixture_seat(game, [vector], np.ones(1)), _mixture_seat(game, opponents, weights)
    seats = (own, mixture) if player == 0 else (mixture, own)
    returns = play_games(game, seats, settings.eval_games, seed=seed)
    if player == 1:
        returns = _utility_sum(game) - returns
    return float(returns.mean()), standard_error(float(returns.sum()), float((returns ** 2).sum()), returns.size), \
        int(returns.size)


def _utility_sum(game) -> float:
    import pyspiel  # noqa: PLC0415

    constant = game.get_type().utility == pyspiel.GameType.Utility.CONSTANT_SUM
    return float(game.utility_sum()) if constant else 0.0


def train_ladder(settings: ApproxSettings, player: int, training_seed: int, opponents, weights) -> list[dict]:
    """One training run of a best response of ``player``, measured at every budget (one task).

    Returns, per budget: the snapshot's policy vector, its selection score and training time.
    """
    from fusion_psro.games.sampled import load_sampled_game  # noqa: PLC0415
    from fusion_psro.oracles.base import BestResponseRequest  # noqa: PLC0415
    from fusion_psro.oracles.dqn import DQNConfig, DQNOracle  # noqa: PLC0415

    game = load_sampled_game(settings.game)
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.oracle_options.items()}
    config = DQNConfig(**{**options, "episodes": settings.br_episodes[-1]})
    oracle = DQNOracle(game, config)
    snapshots: dict[int, Any] = {}
    started = time.perf_counter()
    seed = int(_seed(settings, player, training_seed, 1).generate_state(1)[0])
    request = BestResponseRequest(
        player=player, opponent_population=np.stack(opponents), opponent_meta_strategy=np.asarray(weights),
        seed=seed, checkpoints=settings.br_episodes[:-1], on_checkpoint=lambda budget, snap: snapshots.update({budget: snap}),
    )
    snapshots[settings.br_episodes[-1]] = oracle.best_response(request)
    train_s = time.perf_counter() - started
    ladder = []
    for budget in settings.br_episodes:
        vector = snapshots[budget].policy
        mean, error, games = score(settings, player, vector, opponents, weights,
                                   _seed(settings, player, training_seed, 2, budget))
        ladder.append({"budget": budget, "vector": vector, "selection_mean": mean, "selection_se": error,
                       "games": games, "episodes": snapshots[budget].episodes, "train_s": train_s})
    return ladder


def fresh_score(settings: ApproxSettings, player: int, budget: int, vector, opponents, weights) -> tuple[float, float, int]:
    """The selected response's value on fresh games (a seed no selection score used)."""
    return score(settings, player, vector, opponents, weights, _seed(settings, player, 10**6, 3, budget))


def approximate_exploitability(settings: ApproxSettings, populations, meta_strategies, *, executor=None,
                               reference=None) -> dict[str, Any]:
    """The approximate exploitability of the mixtures ``meta_strategies`` over ``populations`` (policy vectors).

    ``executor`` runs the training runs and fresh scores (default: in this process);
    ``reference`` is the compiled game where there is one (exact numbers beside the estimate).
    Returns a JSON-ready record; see the module docstring.
    """
    from fusion_psro.psro.executors import SerialExecutor  # noqa: PLC0415

    executor = executor or SerialExecutor()
    started = time.perf_counter()
    kept = [_support(populations[p], meta_strategies[p]) for p in range(2)]
    tasks = [(settings, p, s, *kept[1 - p]) for p in range(2) for s in range(settings.br_seeds)]
    ladders = executor.map(train_ladder, tasks)
    selected = {}
    for (_, p, s, *_), ladder in zip(tasks, ladders):
        for rung in ladder:
            best = selected.get((p, rung["budget"]))
            if best is None or rung["selection_mean"] > best[1]["selection_mean"]:
                selected[(p, rung["budget"])] = (s, rung)
    keys = sorted(selected)
    fresh = executor.map(fresh_score, [(settings, p, b, selected[(p, b)][1]["vector"], *kept[1 - p]) for p, b in keys])
    utility_sum = _utility_sum(_load(settings.game))
    budgets = []
    for budget in settings.br_episodes:
        players = [_player_entry(selected[(p, budget)], fresh[keys.index((p, budget))], ladders, tasks, p, budget)
                   for p in range(2)]
        budgets.append(_budget_entry(budget, players, utility_sum))
    record = {"label": LABEL, "game": settings.game, "br_episodes": list(settings.br_episodes),
              "br_seeds": settings.br_seeds, "eval_games": settings.eval_games, "seed": settings.seed,
              "budgets": budgets, "approx_exploitability": budgets[-1]["estimate"], "ci95": budgets[-1]["ci95"]}
    if reference is not None:
        record["exact"] = _exact(reference, populations, meta_strategies, budgets, selected)
    record["wall_s"] = time.perf_counter() - started
    return record


def _load(game: str):
    from fusion_psro.games.sampled import load_sampled_game  # noqa: PLC0415

    return load_sampled_game(game)


def _support(vectors, weights) -> tuple[list[np.ndarray], np.ndarray]:
    """The members with positive weight and their renormalized weights."""
    weights = np.asarray(weights, dtype=np.float64)
    keep = np.flatnonzero(weights > 0)
    return [np.asarray(vectors[k]) for k in keep], weights[keep] / weights[keep].sum()


def _player_entry(chosen, fresh, ladders, tasks, player: int, budget: int) -> dict[str, Any]:
    seed, rung = chosen
    scores = [next(r["selection_mean"] for r in ladder if r["budget"] == budget)
              for (_, p, *_), ladder in zip(tasks, ladders) if p == player]
    return {"selected_seed": seed, "selection_scores": scores, "value": fresh[0], "se": fresh[1],
            "games": fresh[2], "train_s": rung["train_s"], "vector": rung["vector"]}


def _budget_entry(budget: int, players: list[dict], utility_sum: float) -> dict[str, Any]:
    estimate = (players[0]["value"] + players[1]["value"] - utility_sum) / 2
    error = math.sqrt(players[0]["se"] ** 2 + players[1]["se"] ** 2) / 2
    biased = (max(players[0]["selection_scores"]) + max(players[1]["selection_scores"]) - utility_sum) / 2
    return {
        "br_episodes": budget, "estimate": estimate, "se": error,
        "ci95": [estimate - Z95 * error, estimate + Z95 * error],
        "selection_estimate": biased,
        "players": [{k: v for k, v in entry.items() if k != "vector"} for entry in players],
        "_vectors": [entry["vector"] for entry in players],
    }


def _exact(reference, populations, meta_strategies, budgets, selected) -> dict[str, Any]:
    """Exact exploitability of the mixtures and exact values of the selected responses (compiled games)."""
    from fusion_psro.evaluation import evaluate_mixture, mixture_plan, realization_plans  # noqa: PLC0415
    from fusion_psro.evaluation.sequence_form import expected_values  # noqa: PLC0415
    from fusion_psro.oracles.episode_sources import tabulate_member  # noqa: PLC0415

    tables = [np.stack([tabulate_member(v, reference, p) for v in populations[p]]) for p in range(2)]
    sigma = [np.asarray(s, dtype=np.float64) for s in meta_strategies]
    evaluation = evaluate_mixture(reference, tables, sigma)
    mixed = [mixture_plan(reference, p, tables[p], sigma[p]) for p in range(2)]
    values = []
    for entry in budgets:
        row = []
        for p in range(2):
            own = realization_plans(reference, p, tabulate_member(entry["_vectors"][p], reference, p))
            plans = (own, mixed[1]) if p == 0 else (mixed[0], own)
            row.append(float(expected_values(reference, *plans)[p]))
        values.append({"br_episodes": entry["br_episodes"], "response_values": row,
                       "exploitability_of_responses": (row[0] + row[1] - reference.utility_sum) / 2})
    return {"exploitability": float(evaluation.exploitability), "nash_conv": float(evaluation.nash_conv),
            "best_response_values": [float(v) for v in evaluation.best_response_values], "budgets": values}


def strip_vectors(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without the responses' policy vectors (what files and metrics rows keep)."""
    return {**record, "budgets": [{k: v for k, v in b.items() if k != "_vectors"} for b in record["budgets"]]}


__all__ = ["ApproxSettings", "LABEL", "approximate_exploitability", "fresh_score", "score", "strip_vectors",
           "train_ladder"]
