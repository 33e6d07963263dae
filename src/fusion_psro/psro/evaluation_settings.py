"""Validation of the evaluation settings of a run: sampled meta-games and approximate exploitability.

Called by :meth:`fusion_psro.psro.PSROConfig.resolved` once the game kind and oracle are
known. Each check asks a declared capability: the game kind's ``estimates_payoffs`` (the
sampling settings apply to it), the oracle's ``game_kinds`` (approximate best responses
play sampled games, so the run's members must be networks an oracle of the ``sampled``
kind produces).
"""

from __future__ import annotations

from typing import Any

from fusion_psro import options
from fusion_psro.errors import ConfigError
from fusion_psro.registry import GAME_KINDS, ORACLES

#: ``--eval``: the space's own (exact) exploitability, or also the approximate one.
EVALS = ("exact", "approx")
#: Defaults of the approximate evaluation during a run.
DEFAULT_EVAL_BR_SEEDS, DEFAULT_EVAL_GAMES = 2, 10_000


def parse_int_list(text: Any) -> tuple[int, ...]:
    """``"20000,100000"`` (or a list) -> ``(20000, 100000)``; a :class:`ConfigError` names a bad value."""
    parts = text.strip("()[] ").split(",") if isinstance(text, str) else list(text)
    try:
        values = tuple(int(str(part).strip()) for part in parts if str(part).strip())
    except ValueError:
        raise ConfigError(f"expected comma-separated integers such as 20000,100000; got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"expected positive integers such as 20000,100000; got {text!r}")
    return values


_SAMPLING = ("sims_per_entry", "payoff_tolerance", "max_sims_per_entry")
_APPROX = ("eval_every", "eval_br_episodes", "eval_br_seeds", "eval_games")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve_evaluation(config: Any, kind: type, oracle_class: type) -> None:
    """Check (and fill the defaults of) the sampling and approximate-evaluation settings of ``config``."""
    _resolve_sampling(config, kind)
    _resolve_approx(config, oracle_class)


def _resolve_sampling(config: Any, kind: type) -> None:
    given = [name for name in _SAMPLING if getattr(config, name) is not None]
    if not kind.estimates_payoffs:
        if given:
            sampled = ", ".join(n for n, k in GAME_KINDS.items() if k.estimates_payoffs)
            raise ConfigError(
                f"{_flag(given[0])} applies to meta-games estimated from sampled games (game kinds: {sampled}; "
                f"--evaluation sampled, or a game too large to compile); {config.game!r} is evaluated exactly"
            )
        return
    _positive_int(config, "sims_per_entry", 1)
    tolerance = config.payoff_tolerance
    if tolerance is not None:
        options.positive_float(tolerance, "payoff_tolerance")
        _positive_int(config, "sims_per_entry", 2)  # a standard error needs two games
        _positive_int(config, "max_sims_per_entry", 2)
        if config.max_sims_per_entry is not None and config.sims_per_entry is not None \
                and config.max_sims_per_entry < config.sims_per_entry:
            raise ConfigError(f"max_sims_per_entry ({config.max_sims_per_entry}) must be at least sims_per_entry "
                              f"({config.sims_per_entry})")
    elif config.max_sims_per_entry is not None:
        raise ConfigError("--max-sims-per-entry caps sampling to a --payoff-tolerance; give the tolerance too")


def _resolve_approx(config: Any, oracle_class: type) -> None:
    if config.eval not in EVALS:
        raise ConfigError(f"unknown eval {config.eval!r}; accepted: {', '.join(EVALS)}")
    if config.eval != "approx":
        given = [name for name in _APPROX if getattr(config, name) is not None]
        if given:
            raise ConfigError(f"{_flag(given[0])} applies to --eval approx only")
        return
    if oracle_class.member_hidden_sizes(None) is None:
        able = ORACLES.accepted(lambda o: o.member_hidden_sizes(None) is not None)
        raise ConfigError(
            f"--eval approx trains best responses that play sampled games against the run's members, which must "
            f"be networks that play sampled games; the {config.oracle} oracle's are not. Accepted: {able}"
        )
    if config.eval_br_episodes is not None:
        config.eval_br_episodes = tuple(sorted(set(parse_int_list(config.eval_br_episodes))))
    _positive_int(config, "eval_every", 1)
    _positive_int(config, "eval_br_seeds", 1)
    _positive_int(config, "eval_games", 2)


def _positive_int(config: Any, name: str, minimum: int) -> None:
    options.integer(getattr(config, name), name, minimum=minimum, optional=True)


__all__ = ["DEFAULT_EVAL_BR_SEEDS", "DEFAULT_EVAL_GAMES", "EVALS", "parse_int_list", "resolve_evaluation"]
