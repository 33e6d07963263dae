"""Every setting of a PSRO run in one dataclass, validated by asking the components.

:meth:`PSROConfig.resolved` looks each named component up in its registry
(:mod:`fusion_psro.registry`) and checks the combination against what the components
declare: the oracle's game kinds, whether it trains parameters and can optimize a
diversity term; the variant's diversity term; the init's requirements. No check compares
a component's name, so a registered component is validated like a built-in one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from fusion_psro import options
from fusion_psro.errors import ConfigError
from fusion_psro.psro.evaluation_settings import (  # noqa: F401 (EVALS, the defaults and parse_int_list: re-exported)
    DEFAULT_EVAL_BR_SEEDS,
    DEFAULT_EVAL_GAMES,
    EVALS,
    parse_int_list,
    resolve_evaluation,
)
from fusion_psro.psro.schedules import DIVERSITY_SCHEDULES
from fusion_psro.registry import DIVERSITY_TERMS, GAME_KINDS, INITS, META_SOLVERS, ORACLES, VARIANTS

#: ``per-player``: one population per player; ``shared``: one population of two-seat agents;
#: ``symmetric``: one population of a symmetric game, player 1's list repeating player 0's.
POPULATION_MODES = ("per-player", "shared", "symmetric")
def _setting(default: Any, help: str, **metadata: Any) -> Any:
    """A setting with its command-line help (``fusion-psro run --help`` is built from these)."""
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return dataclasses.field(**factory, metadata={"help": help, **metadata})


#: The sections of a run's settings, each with its settings: the loop (game, oracle, init,
#: meta-solver, budget), the variant (and its diversity term), and the evaluation (how
#: payoffs and exploitability are computed). Validated in that order, by
#: :meth:`PSROConfig.resolved` (the evaluation by :mod:`fusion_psro.psro.evaluation_settings`).
SECTIONS: dict[str, tuple[str, ...]] = {
    "loop": ("game", "oracle", "init", "meta_solver", "iterations", "seed", "fusion_start", "fusion_fallback",
             "episodes", "population", "oracle_options", "init_options", "target_exploitability",
             "meta_solver_options"),
    "variant": ("variant", "variant_options", "diversity_weight", "diversity_schedule"),
    "evaluation": ("exploitability_prior_code", "evaluation", "sims_per_entry", "payoff_tolerance",
                   "max_sims_per_entry", "eval", "eval_every", "eval_br_episodes", "eval_br_seeds", "eval_games"),
}


@dataclasses.dataclass
class PSROConfig:
    """Everything a PSRO run depends on. Same config and seed, same results.

    Each field's ``metadata["help"]`` says what it is; components are named by their
    registered names (:mod:`fusion_psro.registry`). The settings fall into the sections of
    :data:`SECTIONS` (:meth:`section`); they are given and recorded flat
    (``PSROConfig(game=..., iterations=...)``, ``config.json``), one name per setting.
    """

    game: str = _setting("leduc_poker", "an OpenSpiel game string, or a game of another kind: 'mixture' (the "
                         "non-transitive mixture game), 'mixture_dpp_code' (its humps in the DPP-PSRO code's order)")
    oracle: str | None = _setting(None, "best-response oracle (default: the game kind's, exact for OpenSpiel games, "
                                  "gradient for the mixture game)", registry="ORACLES")
    init: str | None = _setting(None, "where each new best response starts (oracles that train parameters; "
                                "default: normal)", registry="INITS")
    variant: str = _setting("psro", "PSRO variant; Fusion-X is --variant X --init fusion", registry="VARIANTS")
    meta_solver: str = _setting("nash", "meta-solver of the meta-game", registry="META_SOLVERS")
    iterations: int = _setting(20, "PSRO iterations")
    seed: int = _setting(0, "seed of every random draw of the run")
    fusion_start: int = _setting(1, "first iteration that fuses, with --init fusion", read_by="init")
    fusion_fallback: str = _setting("normal", "init before --fusion-start (an init that does not build on the "
                                    "population)", registry="INITS", fallback_init=True, read_by="init")
    episodes: int = _setting(20_000, "training episodes per best response (oracles with an episodes setting)",
                             read_by="oracle")
    variant_options: dict[str, Any] = _setting(dict, "settings of the variant by name (the fields of its settings "
                                               "class), e.g. learners=2 (psro-rn) or max_iterations=1 (p-psro)")
    population: str = _setting("per-player", "one population per player; one shared population of two-seat "
                               "agents (member k of both players' lists is agent k; the meta-game is the "
                               "symmetrized agent game and both players use its symmetric meta-Nash); or, in a "
                               "symmetric game, one symmetric population (player 0's best responses join both "
                               "lists; one symmetric meta-strategy)",
                               choices=POPULATION_MODES)
    diversity_weight: float | None = _setting(None, "weight of the diversity term of the variants that have one "
                                              "(default: the term's, 0.1)", read_by="variant")
    oracle_options: dict[str, Any] = _setting(dict, "oracle settings by name (the fields of the oracle's settings "
                                              "class), e.g. learning_rate=0.001 or hidden_sizes=[64,64]")
    init_options: dict[str, Any] = _setting(dict, "settings of the init by name, e.g. shrink=0.5 (shrink-perturb) "
                                            "or steps=500 (nash-distill)")
    target_exploitability: float | None = _setting(None, "stop once the exploitability (NashConv / 2) is at or "
                                                   "below this, before --iterations if it comes first")
    meta_solver_options: dict[str, Any] = _setting(dict, "meta-solver settings by name (its keyword parameters), "
                                                   "e.g. iterations=1000 for fp; a solver that takes a seed gets "
                                                   "one from the run's seed and the iteration")
    diversity_schedule: str = _setting("constant", "how the diversity variants weigh payoff against diversity "
                                       "over iterations: constant (payoff + W * diversity) or prior-code "
                                       "(lambda_i * payoff + (1 - lambda_i) * W * diversity, the mixture-game "
                                       "code of DPP-/PSD-PSRO)", choices=tuple(DIVERSITY_SCHEDULES))
    exploitability_prior_code: bool = _setting(False, "also report exploitability_prior_code, the prior code's "
                                               "estimate (one 100-step Adam ascent from a random start per "
                                               "player; game kinds that define it: the mixture game)")
    evaluation: str = _setting("auto", "how payoffs are computed: exact (the game is compiled), sampled (games are "
                               "played from pyspiel states, any size; the meta-game is estimated), auto (exact when "
                               "the game compiles, else sampled)")
    sims_per_entry: int | None = _setting(None, "sampled evaluation: games per meta-game entry (default 1000); with "
                                          "--payoff-tolerance, the games of each sampling round")
    payoff_tolerance: float | None = _setting(None, "sampled evaluation: sample each meta-game entry until its 95%% "
                                              "half-width is at most this")
    max_sims_per_entry: int | None = _setting(None, "sampled evaluation with --payoff-tolerance: most games per entry "
                                              "(default 20000); entries left wider are warned about in the metrics")
    eval: str = _setting("exact", "exact: the exact exploitability where the game compiles (NaN where it does not); "
                         "approx: also the approximate exploitability (trained best responses, a lower bound of "
                         "NashConv / 2 with its 95%% interval) every --eval-every iterations and at the last",
                         choices=EVALS)
    eval_every: int | None = _setting(None, "--eval approx: iterations between approximate evaluations (default: "
                                      "the last iteration only)")
    eval_br_episodes: tuple[int, ...] | None = _setting(
        None, "--eval approx: training budgets of the approximate best responses, e.g. 20000,100000 (one training "
        "run per seed, measured at each budget; default: --episodes)", parse="int_list")
    eval_br_seeds: int | None = _setting(None, "--eval approx: best-response training seeds per player (default 2)")
    eval_games: int | None = _setting(None, "--eval approx: sampled games that score each best response (default "
                                      "10000)")
    # The variant settings that were PSROConfig fields before variants had settings: given
    # (by old code or an old config.json), they become variant_options (see __post_init__).
    rn_learners: dataclasses.InitVar[Any] = None
    pipeline_learners: dataclasses.InitVar[Any] = None
    pipeline_max_iterations: dataclasses.InitVar[Any] = None
    pipeline_plateau: dataclasses.InitVar[Any] = None
    pipeline_parallel: dataclasses.InitVar[Any] = None

    def __post_init__(self, *legacy: Any) -> None:
        given = {name: value for name, value in zip(LEGACY_VARIANT_SETTINGS, legacy) if value is not None}
        if given:
            self.variant_options = _legacy_variant_options(self.variant, dict(self.variant_options), given)

    def resolved(self, *, oracle: type | None = None) -> PSROConfig:
        """A validated copy with defaults filled in; raises :class:`ConfigError`.

        ``oracle`` is the class of an oracle instance handed to the loop directly; its
        capabilities are asked instead of those of the registered oracle ``self.oracle``.
        """
        from fusion_psro.psro.spaces import game_kind  # noqa: PLC0415 (spaces import the games)

        check_types(self)
        config = dataclasses.replace(self, oracle_options=dict(self.oracle_options), init_options=dict(self.init_options),
                                     meta_solver_options=dict(self.meta_solver_options),
                                     variant_options=dict(self.variant_options))
        kind = game_kind(config.game, config.evaluation)
        config.evaluation = kind.evaluation
        oracle_class = _resolve_oracle(config, kind, oracle)
        _resolve_variant(config, kind, oracle_class)
        _resolve_population(config, kind, oracle_class)
        _resolve_meta_solver(config)
        _resolve_init(config, oracle_class, kind)
        _resolve_evaluation(config, kind)
        _check_numbers(config)
        resolve_evaluation(config, kind, oracle_class)
        return config

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PSROConfig:
        """The config a ``config.json`` ``psro`` record describes, with today's defaults for
        settings the record predates. Unknown keys are a :class:`ConfigError`."""
        if not isinstance(record, Mapping):
            raise ConfigError(f"a PSRO config record must be a JSON object, got {type(record).__name__}")
        fields = {field.name for field in dataclasses.fields(cls)} | set(LEGACY_VARIANT_SETTINGS)
        unknown = sorted(set(record) - fields)
        if unknown:
            raise ConfigError(f"unknown PSRO setting(s) {unknown}; accepted: {', '.join(sorted(fields))}")
        record = dict(record)
        legacy = {name: record.pop(name) for name in LEGACY_VARIANT_SETTINGS if record.get(name) is not None}
        config = cls(**record)
        if config.variant in VARIANTS:  # a plug-in's variant may not be loaded to read a run
            # A record of that time holds every old setting, also those its variant did not read.
            options = _legacy_variant_options(config.variant, dict(config.variant_options), legacy, strict=False)
            settings = VARIANTS.get(config.variant).settings_from(options)
            config.variant_options = {} if settings is None else _json(dataclasses.asdict(settings))
        return config

    def section(self, name: str) -> dict[str, Any]:
        """The settings of section ``name`` of :data:`SECTIONS` (``"loop"``, ``"variant"``, ``"evaluation"``)."""
        if name not in SECTIONS:
            raise ConfigError(f"unknown settings section {name!r}; accepted: {', '.join(SECTIONS)}")
        return {setting: getattr(self, setting) for setting in SECTIONS[name]}

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON values (tuples become lists), as ``config.json`` records them."""
        return _json(dataclasses.asdict(self))


def _json(value: Any) -> Any:
    """``value`` as JSON values (tuples become lists)."""
    return json.loads(json.dumps(value))


#: The variant settings that were flat ``PSROConfig`` fields, with the values every
#: ``config.json`` of that time recorded for variants that do not read them.
LEGACY_VARIANT_SETTINGS = {"rn_learners": 1, "pipeline_learners": 4, "pipeline_max_iterations": 5,
                           "pipeline_plateau": 1e-3, "pipeline_parallel": False}


def _legacy_variant_options(variant_name: str, options: dict[str, Any], given: dict[str, Any], *,
                            strict: bool = True) -> dict[str, Any]:
    """``options`` with the old flat settings ``given`` moved in, under the names the variant's
    :attr:`~fusion_psro.psro.variants.Variant.legacy_settings` gives them.

    An old setting the variant does not have is dropped at its old default, and refused
    otherwise (naming the variants that have it) unless not ``strict``: a ``config.json`` of
    that time records every old setting, also those its variant did not read.
    """
    variant = VARIANTS.get(variant_name)
    for old, value in given.items():
        new = variant.legacy_settings.get(old)
        if new is None:
            if strict and value != LEGACY_VARIANT_SETTINGS[old]:
                raise ConfigError(f"{old} does not apply to the {variant_name} variant; variants that have it: "
                                  f"{VARIANTS.accepted(lambda v: old in v.legacy_settings)} (give it as "
                                  "variant_options, --variant-option)")
            continue
        if options.get(new, value) != value:
            raise ConfigError(f"the {variant_name} variant's {new} is given twice ({old}={value!r} and "
                              f"variant option {new}={options[new]!r}); give it once, as a variant option")
        options[new] = value
    return options


#: What a value of each annotated type may be, and how an error names the type.
_TYPES = {
    "int": (lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool), "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "dict[str, Any]": (lambda v: isinstance(v, Mapping), "a table of settings by name, e.g. {steps = 100}"),
    "tuple[int, ...]": (lambda v: isinstance(v, (str, list, tuple)), "a list of integers, e.g. [20000, 100000]"),
}


def check_types(config: PSROConfig) -> None:
    """:class:`ConfigError` naming the first setting whose value has the wrong type.

    A boolean is not an integer (TOML ``seed = true`` is refused like ``iterations = true``),
    and a ``*_options`` setting must be a table.
    """
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        annotation = str(field.type).replace(" | None", "")
        if value is None and "None" in str(field.type):
            continue
        accepts, kind = _TYPES[annotation]
        if not accepts(value):
            raise ConfigError(f"{field.name} must be {kind}, got {value!r} ({type(value).__name__})")


def resolved_settings(recorded: Any) -> dict[str, Any] | None:
    """The settings of a ``config.json`` ``psro`` record resolved with today's defaults.

    A record written before a setting existed gets that setting's default, so runs written
    by different versions compare and group by what they ran. Returned as JSON values;
    None if the record is not a valid config.
    """
    try:
        return PSROConfig.from_record(recorded).resolved().to_json()
    except (ConfigError, TypeError, ValueError):
        return None


def recorded_settings(recorded: Any) -> dict[str, Any] | None:
    """The settings of a ``config.json`` ``psro`` record with today's defaults for settings it
    predates, as JSON values (None if it is not a config record).

    Unlike :func:`resolved_settings` it validates nothing against the components, so reading
    runs needs neither the oracles nor PyTorch.
    """
    try:
        return PSROConfig.from_record(recorded).to_json()
    except (ConfigError, TypeError):
        return None


#: How to ask each kind of component which settings it reads (a field's ``metadata["read_by"]``):
#: its registry, the run's component of that kind, and the settings a component reads.
_READERS = {
    "oracle": (ORACLES, lambda c: c.oracle, lambda oracle: (oracle.budget_setting,)),
    "variant": (VARIANTS, lambda c: c.variant, lambda variant: variant.settings_read()),
    "init": (INITS, lambda c: c.init, lambda init: init.settings_read()),
}


def ignored_settings(config: PSROConfig, given: Iterable[str]) -> dict[str, str]:
    """The settings among ``given`` that a run of ``config`` (resolved) would not read, each with why.

    A setting whose field names the kind of component that reads it (``metadata["read_by"]``)
    applies when the run's component of that kind declares it reads it (an oracle's
    ``budget_setting``, a variant's or an init's ``settings_read()``). A setting left at its
    default says nothing; one given explicitly that the run ignores is a mistake worth an error.
    """
    ignored = {}
    for field in dataclasses.fields(PSROConfig):
        kind = field.metadata.get("read_by")
        if kind is None or field.name not in given:
            continue
        registry, chosen, reads = _READERS[kind]
        name = chosen(config)
        if name is not None and field.name in reads(registry.get(name)):
            continue
        readers = registry.accepted(lambda component: field.name in reads(component))
        which = f"the {kind} {name} does not read it" if name is not None else f"the run has no {kind}"
        ignored[field.name] = f"{which}; {kind}s that do: {readers}"
    return ignored


def _resolve_oracle(config: PSROConfig, kind, given: type | None):
    if given is None:
        config.oracle = config.oracle or kind.default_oracle
        oracle_class = ORACLES.get(config.oracle)
    else:
        oracle_class = given
        config.oracle = config.oracle or oracle_class.name
    if kind.name not in oracle_class.game_kinds:
        serving = ORACLES.names(lambda o: kind.name in o.game_kinds)
        raise ConfigError(
            f"the {config.oracle} oracle does not apply to {config.game!r} ({kind.description}); "
            f"accepted: {', '.join(serving) or 'none'}"
        )
    return oracle_class


def _resolve_variant(config: PSROConfig, kind, oracle_class) -> None:
    variant = VARIANTS.get(config.variant)
    settings = variant.settings_from(config.variant_options)
    config.variant_options = {} if settings is None else _json(dataclasses.asdict(settings))
    if config.diversity_schedule not in DIVERSITY_SCHEDULES:
        raise ConfigError(f"unknown diversity schedule {config.diversity_schedule!r}; "
                          f"accepted: {', '.join(DIVERSITY_SCHEDULES)}")
    if variant.diversity is None:
        if config.diversity_weight is not None:
            raise ConfigError(
                f"--diversity-weight applies to the variants with a diversity term "
                f"({VARIANTS.accepted(lambda v: v.diversity is not None)}), not to --variant {config.variant}"
            )
        return
    term = DIVERSITY_TERMS.get(variant.diversity)
    if not term.supports(kind.name):
        runnable = VARIANTS.accepted(lambda v: v.diversity is None or DIVERSITY_TERMS.get(v.diversity).supports(kind.name))
        raise ConfigError(
            f"--variant {config.variant} does not apply to {config.game!r} ({kind.description}): its diversity "
            f"term needs what that game kind does not compute exactly (payoff vectors or behaviour); accepted: {runnable}"
        )
    if not (oracle_class.optimizes_diversity and term.supports(kind.name)):
        able = ORACLES.names(lambda o: kind.name in o.game_kinds and o.optimizes_diversity and term.supports(kind.name))
        what = "supports none" if not oracle_class.optimizes_diversity else f"cannot optimize it on {kind.description}"
        raise ConfigError(
            f"--variant {config.variant} needs an oracle that can optimize its diversity term; the "
            f"{config.oracle} oracle {what}. Use --oracle {' or '.join(able) or '(none is registered)'}"
        )
    schedule = DIVERSITY_SCHEDULES[config.diversity_schedule]
    if schedule.weighs_payoff and not oracle_class.weighs_payoff:
        able = ORACLES.names(lambda o: kind.name in o.game_kinds and o.optimizes_diversity and o.weighs_payoff)
        raise ConfigError(
            f"--diversity-schedule {config.diversity_schedule} weighs the payoff too, which the {config.oracle} "
            f"oracle does not; use --diversity-schedule constant, or --oracle {' or '.join(able) or '(none is registered)'}"
        )
    weight = getattr(term, schedule.default_weight) if config.diversity_weight is None else config.diversity_weight
    options.non_negative_float(weight, "diversity_weight")
    config.diversity_weight = float(weight)


def _resolve_population(config: PSROConfig, kind, oracle_class) -> None:
    if config.population not in POPULATION_MODES:
        raise ConfigError(f"unknown population mode {config.population!r}; accepted: {', '.join(POPULATION_MODES)}")
    if config.population == "symmetric" and not kind.symmetric:
        raise ConfigError(
            f"--population symmetric needs a symmetric game; {config.game!r} is {kind.description}, which is not "
            f"declared symmetric. Game kinds that are: {GAME_KINDS.accepted(lambda k: k.symmetric)}; or use "
            f"--population {' or '.join(m for m in POPULATION_MODES if m != 'symmetric')}"
        )
    if config.population == "shared" and not oracle_class.shared_population:
        both = ORACLES.accepted(lambda o: o.shared_population)
        raise ConfigError(
            f"a shared population needs one learner that plays both seats; the {config.oracle} oracle trains "
            f"one per player. Use --population per-player, or an oracle that plays both seats: {both}"
        )


def _resolve_meta_solver(config: PSROConfig) -> None:
    """The meta-solver must exist and take ``meta_solver_options``; their values are checked by
    one call on a 1 x 1 meta-game, so a bad value fails before the run starts."""
    from fusion_psro.meta.solvers import get_meta_solver, takes_seed  # noqa: PLC0415 (SciPy)

    solver = META_SOLVERS.get(config.meta_solver)
    solver_options = config.meta_solver_options
    if not solver_options:
        return
    if "seed" in solver_options and takes_seed(solver):
        raise ConfigError(f"meta-solver {config.meta_solver}: its seed comes from the run's --seed and the "
                          "iteration; drop the seed option")
    bound = get_meta_solver(config.meta_solver, **solver_options)
    try:
        bound(np.zeros((1, 1)), **({"seed": 0} if takes_seed(solver) else {}))
    except ConfigError as exc:
        raise ConfigError(f"meta-solver {config.meta_solver}: {exc}") from None


def _resolve_evaluation(config: PSROConfig, kind) -> None:
    if config.target_exploitability is not None and kind.estimates_payoffs and kind.claims(config.game):
        raise ConfigError(f"--target-exploitability needs the exact exploitability, which {config.game!r} (too large "
                          "to compile) does not have; give --iterations alone")
    options.flag(config.exploitability_prior_code, "exploitability_prior_code")
    if config.exploitability_prior_code and not kind.prior_code_exploitability:
        raise ConfigError(
            f"--exploitability-prior-code does not apply to {config.game!r} ({kind.description}); game kinds "
            f"that define it: {GAME_KINDS.accepted(lambda k: k.prior_code_exploitability)}"
        )


def _resolve_init(config: PSROConfig, oracle_class, kind=None) -> None:
    if not oracle_class.trains_parameters:
        if config.init is not None:
            raise ConfigError(
                f"--init {config.init} does not apply to the {config.oracle} oracle: its best response is "
                "computed, not trained, so it has no starting point to choose. Drop --init, or use an oracle "
                f"that trains parameters: {ORACLES.accepted(lambda o: o.trains_parameters)}"
            )
    else:
        config.init = config.init or "normal"
    fallbacks = INITS.names(lambda i: not i.builds_on_population)
    if config.fusion_fallback not in fallbacks:
        raise ConfigError(f"unknown fusion fallback {config.fusion_fallback!r}; accepted: {', '.join(fallbacks)}")
    if not oracle_class.trains_parameters:
        return
    settings = INITS.get(config.init).settings(config.init_options)
    why = INITS.get(config.init).unsupported_with(settings, oracle_class, _budget(config, oracle_class))
    if why is not None:
        raise ConfigError(f"init {config.init!r} with the {config.oracle} oracle: {why}")
    usable = INITS.names(lambda i: i.unsupported_by(oracle_class) is None)
    for setting in ("init", "fusion_fallback"):
        name = getattr(config, setting)
        reason = INITS.get(name).unsupported_by(oracle_class)
        on_kind = INITS.get(name).unsupported_on(kind) if kind is not None else None
        if reason is None and on_kind is not None:
            usable = INITS.names(lambda i: i.unsupported_by(oracle_class) is None and i.unsupported_on(kind) is None)
            raise ConfigError(f"{setting} {name!r} does not apply to {config.game!r} ({on_kind}); "
                              f"accepted: {', '.join(usable)}")
        if reason is not None:
            raise ConfigError(f"{setting} {name!r} does not apply to the {config.oracle} oracle ({reason}); "
                              f"accepted: {', '.join(usable)}")


def _budget(config: PSROConfig, oracle_class) -> int:
    """A best response's training budget under ``config`` (0 for oracles without one)."""
    if oracle_class.budget_setting == "episodes":
        return config.episodes
    if oracle_class.budget_setting is None or oracle_class.settings_class is None:
        return 0
    default = {f.name: f.default for f in dataclasses.fields(oracle_class.settings_class)}.get(oracle_class.budget_setting, 0)
    return config.oracle_options.get(oracle_class.budget_setting, default)


_MINIMA = (("iterations", 1), ("fusion_start", 1), ("episodes", 1))
#: Upper bounds, each with why a larger value is a mistake rather than a long run.
MAXIMA = {
    "iterations": (10_000, "each iteration adds a member per player and a row and column to the meta-game, and "
                           "every iteration solves and evaluates the whole meta-game; beyond 10,000 a run would "
                           "not end in any useful time"),
    "episodes": (10 ** 9, "one best response of more than 1,000,000,000 episodes would train for weeks"),
}


def _check_numbers(config: PSROConfig) -> None:
    for name, minimum in _MINIMA:
        options.integer(getattr(config, name), name, minimum=minimum)
    for name, (maximum, why) in MAXIMA.items():
        if getattr(config, name) > maximum:
            raise ConfigError(f"{name} must be at most {maximum:,}, got {getattr(config, name):,}: {why}")
    builds_on_population = config.init is not None and INITS.get(config.init).builds_on_population
    if builds_on_population and config.fusion_start > config.iterations:
        raise ConfigError(
            f"fusion_start {config.fusion_start:,} is after the last iteration ({config.iterations}): a run labelled "
            f"init {config.init} that never uses it. Give a fusion_start of at most the iterations"
        )
    options.non_negative_int(config.seed, "seed")
    options.non_negative_float(config.target_exploitability, "target_exploitability", optional=True)


__all__ = ["EVALS", "LEGACY_VARIANT_SETTINGS", "POPULATION_MODES", "PSROConfig", "SECTIONS", "ignored_settings", "parse_int_list",
           "recorded_settings", "resolved_settings"]
