"""Fusion's fixed point, read from a run's metrics: trapped responses and the iteration the run froze.

A best response is *trapped* when it enters the meta-Nash with weight 0 and is identical to
a response the player already added, or no better against the opponent mixture it trained
on than the player's population already was. With a deterministic oracle (pg) and a fused
start, a trapped response is the start of a fixed point: the population's meta-Nash does not
change, so the next fused start, and the next response, are the same again. The run is
*frozen from* iteration ``t`` when every row from ``t`` on repeats the row before it (the
exploitability, the meta-game value, the meta-strategies, the new members at weight 0, and
the oracle's values), to the last recorded iteration.

Everything is derived from the rows of ``metrics.jsonl`` as every run has written them (no
field was added for it), so committed runs are read as they are:

* the new members of player ``p`` are those by which its population grew, and the
  ``oracle`` entries of an iteration are its responses in order, player 0's first (the
  variants plan them that way); rows where the entries do not match the new members
  (P-PSRO's learners, a symmetric population) say nothing about the oracle's values;
* "identical" compares the oracle's ``value`` and ``initial_value`` (pg) or ``value``
  and ``start`` (gradient) to 12 significant digits with those of the player's earlier
  responses;
* "no better" compares the response's exact ``value`` against the mixture with the
  player's meta-game value of the iteration before (player 0's ``meta_game_value``, its
  negation for player 1 in these zero-sum games): the value of the best member of the
  population when the meta-solver is a Nash solver. It applies to variants whose responses
  train against the whole opponent meta-strategy (not PSRO-rN's rectified mixtures).

An oracle that reports no value (the DQN) leaves ``trapped`` undetermined (None) for a
response that entered with weight 0 and repeats nothing it can compare.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Weights and values closer than this are equal.
TOLERANCE = 1e-12


@dataclasses.dataclass(frozen=True)
class ResponseTrap:
    """One player's new response(s) of one iteration."""

    iteration: int
    player: int
    #: Meta-Nash weight of the new member(s) after the iteration.
    weight: float
    #: Exact value against the opponent mixture (None if the oracle does not report it).
    value: float | None
    #: The player's meta-game value it is compared with (None where it does not apply).
    threshold: float | None
    #: Whether its oracle values repeat one of the player's earlier responses (None: unknown).
    identical: bool | None
    #: Weight 0, and identical or no better (None: weight 0, but nothing to compare).
    trapped: bool | None


@dataclasses.dataclass(frozen=True)
class TrapSummary:
    """A run's trapped responses and the iteration from which it never changes again."""

    iterations: int
    responses: tuple[ResponseTrap, ...]
    #: Iterations in which at least one player's response was trapped.
    trapped_iterations: tuple[int, ...]
    #: First iteration from which every row repeats the one before, or None.
    frozen_from: int | None

    @property
    def frozen_iterations(self) -> int:
        """How many iterations, to the last, repeat the row before them."""
        return 0 if self.frozen_from is None else self.iterations - self.frozen_from + 1

    @property
    def undetermined(self) -> int:
        """Responses that entered with weight 0 but whose trap could not be decided."""
        return sum(r.trapped is None for r in self.responses)


def _key(entry: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The response's ``value`` with its ``initial_value`` (pg) or ``start`` (gradient), to 12 significant digits."""
    other = entry.get("initial_value", entry.get("start"))
    if "value" not in entry or other is None:
        return None
    return tuple(f"{float(x):.11e}" for x in np.ravel([entry["value"], *np.ravel(other)]))


def _new_members(previous: Sequence[int], sizes: Sequence[int]) -> list[range]:
    return [range(previous[p], sizes[p]) for p in range(2)]


def _entries_by_player(row: Mapping[str, Any], new: list[range]) -> list[list[Mapping[str, Any]]] | None:
    entries = list(row.get("oracle") or [])
    if len(entries) != len(new[0]) + len(new[1]):
        return None
    return [entries[: len(new[0])], entries[len(new[0]):]]


def _responses(rows: Sequence[Mapping[str, Any]], compares_values: bool) -> list[ResponseTrap]:
    responses, seen = [], ([], [])
    previous_sizes, previous_value = [1, 1], None
    for row in rows:
        new = _new_members(previous_sizes, row["population_sizes"])
        entries = _entries_by_player(row, new)
        for p in range(2):
            if not new[p]:
                continue
            weight = float(sum(row["meta_strategies"][p][k] for k in new[p]))
            own = entries[p] if entries is not None else []
            values = [e["value"] for e in own if "value" in e]
            value = max(values) if len(values) == len(own) and own else None
            keys = [_key(e) for e in own]
            identical = None if not own or None in keys else all(k in seen[p] for k in keys)
            seen[p].extend(k for k in keys if k is not None)
            threshold = None
            if compares_values and previous_value is not None:
                threshold = previous_value if p == 0 else -previous_value
            no_better = None if value is None or threshold is None else value <= threshold + TOLERANCE
            if weight > TOLERANCE:
                trapped = False
            elif identical or no_better:
                trapped = True
            else:
                trapped = None if identical is None and no_better is None else False
            responses.append(ResponseTrap(row["iteration"], p, weight, value, threshold, identical, trapped))
        previous_sizes, previous_value = row["population_sizes"], row["meta_game_value"]
    return responses


def _close(a: Any, b: Any) -> bool:
    return abs(float(a) - float(b)) <= TOLERANCE * max(1.0, abs(float(a)))


def _repeats(row: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    """Whether ``row`` changes nothing of ``before``: same numbers, new members at weight 0."""
    if not (_close(row["exploitability"], before["exploitability"])
            and _close(row["meta_game_value"], before["meta_game_value"])):
        return False
    for p in range(2):
        now, then = row["meta_strategies"][p], before["meta_strategies"][p]
        if len(now) < len(then) or any(not _close(a, b) for a, b in zip(now, then)) \
                or any(abs(x) > TOLERANCE for x in now[len(then):]):
            return False
    now, then = row.get("oracle") or [], before.get("oracle") or []
    if len(now) != len(then):
        return False
    return all(_close(a[name], b[name]) for a, b in zip(now, then)
               for name in ("value", "initial_value") if name in a and name in b)


def frozen_from(rows: Sequence[Mapping[str, Any]]) -> int | None:
    """First iteration from which every row repeats the row before it, to the last (None if the last changes)."""
    first = None
    for k in range(len(rows) - 1, 0, -1):
        if not _repeats(rows[k], rows[k - 1]):
            break
        first = rows[k]["iteration"]
    return first


def summarize_traps(rows: Sequence[Mapping[str, Any]], *, compares_values: bool = True) -> TrapSummary:
    """The :class:`TrapSummary` of metrics rows (dicts as in ``metrics.jsonl``).

    ``compares_values``: whether the responses trained against the opponent's whole
    meta-strategy, so that "no better" can be read from the meta-game value.
    """
    responses = _responses(rows, compares_values)
    trapped = sorted({r.iteration for r in responses if r.trapped})
    return TrapSummary(iterations=len(rows), responses=tuple(responses), trapped_iterations=tuple(trapped),
                       frozen_from=frozen_from(rows))


def compares_values(settings: Mapping[str, Any]) -> bool:
    """Whether the variant of a run's ``settings`` trains each response against the whole meta-strategy."""
    from fusion_psro.registry import VARIANTS  # noqa: PLC0415

    variant = settings.get("variant", "psro")
    return variant in VARIANTS and VARIANTS.get(variant).responds_to_meta_strategy


TRAP_HEADER = ["| {what} | runs | frozen runs (from iteration, per seed) | trapped responses per run (mean) | "
               "of them repeats (mean) | iterations with a trapped response (mean) | undetermined |",
               "|---|---|---|---|---|---|---|"]


def trap_row(label: str, members: Sequence[Any]) -> str:
    """One Markdown row of a trap table: the runs ``members`` (of one method or arm) under ``label``,
    their frozen runs in seed order (2 before 10, whatever order the run directories sort in)."""
    summaries = [(run.settings.get("seed"), summarize_traps(run.rows, compares_values=compares_values(run.settings)))
                 for run in members]
    summaries.sort(key=lambda pair: (not isinstance(pair[0], int), pair[0] if isinstance(pair[0], int) else 0))
    frozen = [f"{f.frozen_from} (seed {seed})" for seed, f in summaries if f.frozen_from is not None]
    trapped = np.mean([sum(bool(r.trapped) for r in s.responses) for _, s in summaries])
    repeats = np.mean([sum(bool(r.trapped and r.identical) for r in s.responses) for _, s in summaries])
    iterations = np.mean([len(s.trapped_iterations) for _, s in summaries])
    undetermined = sum(s.undetermined for _, s in summaries)
    return (f"| {label} | {len(members)} | {len(frozen)}{': ' + ', '.join(frozen) if frozen else ''} | "
            f"{trapped:.1f} | {repeats:.1f} | {iterations:.1f} | {undetermined} |")


def trap_table(runs: Sequence[Any]) -> str | None:
    """Markdown table, one row per method (runs that differ only in their seed): how many of its
    runs froze and from which iteration each did, and its trapped responses (None for no runs).
    ``runs`` are :class:`~fusion_psro.experiments.runs.RunSummary` objects."""
    from fusion_psro.experiments.runs import group_by_method, method_label, varying_settings  # noqa: PLC0415

    if not runs:
        return None
    varying = varying_settings(list(runs))
    rows = [trap_row(method_label(members[0].settings, varying), members)
            for members in group_by_method(list(runs)).values()]
    return "\n".join([TRAP_HEADER[0].format(what="method"), TRAP_HEADER[1], *rows])


def trap_section(runs: Sequence[Any]) -> list[str]:
    """The report's lines on trapped responses and frozen runs (see the module docstring)."""
    table = trap_table(runs)
    if table is None:
        return []
    return ["Trapped responses and frozen runs, per method: a response is trapped when it enters the meta-Nash "
            "with weight 0 and repeats an earlier response or is no better against the opponent mixture than the "
            "population; a run is frozen from the first iteration after which every row repeats the one before "
            "(a final value from a frozen run is a value that stopped moving). Undetermined: responses with "
            "weight 0 whose oracle reports no value to compare.", "", table, ""]


__all__ = ["TRAP_HEADER", "ResponseTrap", "TrapSummary", "compares_values", "frozen_from", "summarize_traps",
           "trap_row", "trap_section", "trap_table"]
