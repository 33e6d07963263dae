"""Fusion's weightings of the parameter average, and the remedies for a response that enters with weight 0."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fusion_psro.errors import ConfigError
from fusion_psro.psro.initialization import (
    FloorSettings,
    FusionSettings,
    InitializationChoice,
    Initialization,
    ShrinkPerturbSettings,
    StartContext,
    fuse_parameters,
)
from fusion_psro.registry import INITS

# Three members with parameters after the parameter-less uniform policy: A, B, C in order.
A = {"w": torch.tensor([1.0, 0.0, 2.0]), "b": torch.tensor([4.0])}
B = {"w": torch.tensor([0.0, 3.0, 2.0]), "b": torch.tensor([-4.0])}
C = {"w": torch.tensor([5.0, 1.0, -1.0]), "b": torch.tensor([8.0])}
SIGMA = np.array([0.1, 0.0, 0.6, 0.3])


class _Oracle:
    """Scratch draws of the same tensors, seeded."""

    def scratch_parameters(self, player, scheme, seed):
        generator = torch.Generator().manual_seed(seed)
        return {"w": torch.randn(3, generator=generator), "b": torch.randn(1, generator=generator)}


def _start(weights: str | None = None, *, sigma=SIGMA, seed=3, init="fusion", settings=None, **changes):
    if weights is not None:
        settings = FusionSettings(weights=weights)
    context = StartContext(oracle=_Oracle(), player=0, iteration=4, seed=seed, population_parameters=[None, A, B, C],
                           meta_strategy=np.asarray(sigma), previous_parameters=C, previous_index=3, settings=settings)
    return INITS.get(init).choose(dataclasses.replace(context, **changes))


def _combination(a, b, c):
    return {name: a * A[name] + b * B[name] + c * C[name] for name in A}


def _assert_equal(parameters, expected):
    for name in expected:
        torch.testing.assert_close(parameters[name], expected[name], rtol=0, atol=1e-6)


@pytest.mark.parametrize(("weights", "coefficients"), [
    ("nash", (0.0, 0.6 / 0.9, 0.3 / 0.9)),             # the meta-Nash on the members with parameters
    ("uniform", (1 / 3, 1 / 3, 1 / 3)),                # every member, whatever its weight
    ("recent:2", (0.0, 0.5, 0.5)),                     # the last two
    ("recent:9", (1 / 3, 1 / 3, 1 / 3)),               # more than there are: all of them
    ("ema:0.5", (0.25, 0.25, 0.5)),                    # e1 = A, e2 = (A + B) / 2, e3 = e2 / 2 + C / 2
    ("ema:0", (0.0, 0.0, 1.0)),                        # no memory: the last member
    ("argmax", (0.0, 1.0, 0.0)),                       # the heaviest member, B
])
def test_each_weighting_computes_the_average_it_names(weights, coefficients):
    choice = _start(weights)
    assert choice.strategy == "fusion"
    _assert_equal(choice.parameters, _combination(*coefficients))


def test_argmax_copies_the_member_exactly():
    assert all(torch.equal(_start("argmax").parameters[name], B[name]) for name in B)


def test_random_weights_are_a_seeded_dirichlet_draw_on_the_support():
    fused = _start("random").parameters
    # A has meta-Nash weight 0: the draw is w B + (1 - w) C, with one w for every entry.
    w = (fused["w"] - C["w"]) / (B["w"] - C["w"])
    assert 0 < float(w[0]) < 1
    torch.testing.assert_close(w, torch.full_like(w, float(w[0])), rtol=0, atol=1e-5)
    _assert_equal(fused, _combination(0.0, float(w[0]), 1 - float(w[0])))
    _assert_equal(_start("random").parameters, fused)  # the same seed draws the same weights
    draws = [float(((_start("random", seed=s).parameters["b"] - C["b"]) / (B["b"] - C["b"]))[0]) for s in range(400)]
    assert len(set(np.round(draws, 9))) == 400
    # Dirichlet(1, 1) on two members: w is uniform on [0, 1], mean 1/2 and variance 1/12.
    assert np.mean(draws) == pytest.approx(0.5, abs=0.05)
    assert np.var(draws) == pytest.approx(1 / 12, abs=0.02)


def test_the_default_weighting_is_nash_and_the_weightings_keep_fusions_fallback():
    _assert_equal(_start().parameters, _start("nash").parameters)
    assert _start("uniform", iteration=2, fusion_start=3).strategy == "normal"
    # Nothing with parameters has meta-Nash weight: nash, random and argmax fall back ...
    for weights in ("nash", "random", "argmax"):
        assert _start(weights, sigma=[1.0, 0.0, 0.0, 0.0]).strategy == "normal", weights
    # ... while uniform, recent and ema do not look at the meta-Nash.
    assert _start("recent:1", sigma=[1.0, 0.0, 0.0, 0.0]).strategy == "fusion"
    assert _start("uniform", population_parameters=[None]).strategy == "normal"


@pytest.mark.parametrize("bad", ["nsh", "recent", "recent:0", "recent:x", "ema:1", "ema:-0.1", "ema:x", "nash:2", 3])
def test_bad_weightings_are_one_line_errors(bad):
    with pytest.raises(ConfigError, match=r"weights must be one of nash, uniform, recent:K .* got") as error:
        INITS.get("fusion").settings({"weights": bad})
    assert "\n" not in str(error.value)


def test_weights_from_the_command_line_and_in_a_sweep(tmp_path, capsys):
    from fusion_psro.cli import main
    from fusion_psro.experiments.sweep import load_sweep

    assert main(["run", "--game", "kuhn_poker", "--oracle", "pg", "--init", "fusion", "--init-option",
                 "weights=ema:2", "--iterations", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "weights must be one of" in capsys.readouterr().err
    config = tmp_path / "sweep.toml"
    config.write_text('[sweep]\nout = "runs"\nworkers = 1\n[grid]\nseed = [0]\n[settings]\ngame = "kuhn_poker"\n'
                      'oracle = "pg"\ninit = "fusion"\ninit_options = {weights = "recent:3"}\n')
    (cell,) = load_sweep(config).cells
    assert cell.config.init_options == {"weights": "recent:3"}


class _LegacyFusion(Initialization):
    """Fusion as it was before the weightings: the meta-Nash on the members with parameters, renormalized."""

    def choose(self, context):
        has = [k for k, p in enumerate(context.population_parameters) if p is not None]
        weights = np.asarray(context.meta_strategy, dtype=np.float64)[has] if has else np.zeros(0)
        if context.iteration < context.fusion_start or weights.sum() <= 0:
            return INITS.get("normal").choose(context)
        return InitializationChoice(
            fuse_parameters([context.population_parameters[k] for k in has], weights / weights.sum()), "fusion")


def _pg_run(init, **options):
    from fusion_psro.psro import PSRO, PSROConfig

    psro = PSRO(PSROConfig(game="leduc_poker", oracle="pg", init=init, iterations=4, seed=2, init_options=options,
                           oracle_options={"steps": 5, "hidden_sizes": (16, 16)}))
    rows = [{k: v for k, v in row.to_json().items() if k not in ("wall_s", "iteration_s", "fusion_s")}
            for row in psro.run()]
    for row in rows:
        for entry in row["oracle"]:
            entry.pop("train_s")
    return rows, [m.parameters for m in psro.state.populations[0] + psro.state.populations[1]]


def test_weights_nash_is_todays_fusion_bit_for_bit():
    INITS.register("legacy-fusion", _LegacyFusion())
    try:
        legacy_rows, legacy = _pg_run("legacy-fusion")
    finally:
        INITS.unregister("legacy-fusion")
    for options in ({}, {"weights": "nash"}):
        rows, parameters = _pg_run("fusion", **options)
        assert [r["exploitability"] for r in rows] == [r["exploitability"] for r in legacy_rows]
        assert [{**r, "inits": None} for r in rows] == [{**r, "inits": None} for r in legacy_rows]
        for mine, theirs in zip(parameters, legacy):
            assert (mine is None) == (theirs is None)
            assert mine is None or all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert _pg_run("fusion", weights="uniform")[0] != legacy_rows  # a weighting changes the run


# ---------------------------------------------------------------- remedies


def test_remedies_are_fusion_while_the_previous_response_has_weight():
    sigma = [0.1, 0.0, 0.6, 0.3]  # C, the previous response, has weight 0.3
    for init in ("fusion-perturb", "fusion-inherit", "fusion-floor"):
        choice = _start(init=init, sigma=sigma)
        assert choice.strategy == init
        _assert_equal(choice.parameters, _start("nash", sigma=sigma).parameters)


TRAPPED = [0.1, 0.3, 0.6, 0.0]  # C entered with weight 0


def test_remedy_a_shrinks_and_perturbs_the_fused_start():
    choice = _start(init="fusion-perturb", sigma=TRAPPED, settings=ShrinkPerturbSettings(shrink=0.25))
    assert choice.strategy == "fusion-perturb"
    fused, fresh = _combination(1 / 3, 2 / 3, 0.0), _Oracle().scratch_parameters(0, "normal", 3)
    _assert_equal(choice.parameters, {k: 0.25 * fused[k] + 0.75 * fresh[k] for k in fused})
    other_seed = _start(init="fusion-perturb", sigma=TRAPPED, seed=4).parameters
    assert not torch.equal(other_seed["w"], _start(init="fusion-perturb", sigma=TRAPPED).parameters["w"])


def test_remedy_b_inherits_the_previous_response():
    choice = _start(init="fusion-inherit", sigma=TRAPPED)
    assert choice.strategy == "fusion-inherit"
    assert all(torch.equal(choice.parameters[k], C[k]) for k in C)
    assert choice.parameters["w"] is not C["w"]


def test_remedy_c_floors_the_previous_responses_weight():
    choice = _start(init="fusion-floor", sigma=TRAPPED, settings=FloorSettings(floor=0.2))
    assert choice.strategy == "fusion-floor"
    _assert_equal(choice.parameters, _combination(0.8 / 3, 1.6 / 3, 0.2))
    _assert_equal(_start(init="fusion-floor", sigma=TRAPPED).parameters, _combination(0.3, 0.6, 0.1))  # default 0.1
    with pytest.raises(ConfigError, match=r"floor must be a number in \(0, 1\]"):
        INITS.get("fusion-floor").settings({"floor": 0})


def test_remedies_act_in_a_run_when_a_response_enters_with_weight_0():
    """pg on Kuhn with 1-step responses: the remedies follow fusion until a previous response has weight 0."""
    from fusion_psro.psro import PSRO, PSROConfig

    def run(init):
        psro = PSRO(PSROConfig(game="kuhn_poker", oracle="pg", init=init, iterations=8, seed=1,
                               oracle_options={"steps": 1, "hidden_sizes": (8,)}))
        return [row.to_json() for row in psro.run()]

    fusion = run("fusion")
    # The previous response has weight 0 while another member with parameters has some (else: the fallback).
    unused = [(row["iteration"] + 1, p) for row in fusion[:-1] for p in range(2)
              if row["meta_strategies"][p][-1] == 0 and sum(row["meta_strategies"][p][1:]) > 0]
    first = unused[0][0]
    for init in ("fusion-perturb", "fusion-inherit", "fusion-floor"):
        rows = run(init)
        assert [r["exploitability"] for r in rows[: first - 1]] == [r["exploitability"] for r in fusion[: first - 1]]
        assert rows[first - 1]["start_distances"] != fusion[first - 1]["start_distances"], init
        assert {name for row in rows for name in row["inits"]} == {"normal", init}
    # fusion-inherit starts from the previous response itself exactly where it acts.
    rows = run("fusion-inherit")
    acted = [(row["iteration"] + 1, p) for row in rows[:-1] for p in range(2)
             if row["meta_strategies"][p][-1] == 0 and sum(row["meta_strategies"][p][1:]) > 0]
    assert acted
    for t, p in acted:
        assert rows[t - 1]["start_distances"][p] == {"l2": 0.0, "kl": 0.0}


def test_remedies_act_in_psro_rn_when_the_newest_response_enters_with_weight_0():
    """In PSRO-rN the start ``inherit`` copies is the member being rectified, always in the support:
    the remedies watch the newest response instead (mixture game, gradient oracle: seed 7 adds weight-0
    responses from iteration 6 on)."""
    from fusion_psro.psro import PSRO, PSROConfig

    def run(init):
        psro = PSRO(PSROConfig(game="mixture", oracle="gradient", variant="psro-rn", init=init, iterations=8, seed=7))
        return [row.to_json() for row in psro.run()]

    fusion = run("fusion")
    unused = [row["iteration"] + 1 for row in fusion[:-1] if row["meta_strategies"][0][-1] == 0]
    assert unused, "the fusion run never added a response with weight 0"
    first = unused[0]
    assert all(row["meta_strategies"][0][row["population_sizes"][0] - 1] == 0 for row in fusion[first - 1:-1])
    for init in ("fusion-perturb", "fusion-inherit", "fusion-floor"):
        rows = run(init)
        assert [r["exploitability"] for r in rows[: first - 1]] == [r["exploitability"] for r in fusion[: first - 1]]
        assert [r["exploitability"] for r in rows[first - 1:]] != [r["exploitability"] for r in fusion[first - 1:]], init


def test_a_sweep_lists_arms_of_settings_that_go_together(tmp_path):
    from fusion_psro.experiments.sweep import SweepConfigError, load_sweep

    config = tmp_path / "arms.toml"
    config.write_text(
        '[sweep]\nout = "runs"\nworkers = 1\n[grid]\n'
        'arm = [{name = "normal", init = "normal"}, {name = "uniform", init = "fusion", init_options = {weights = '
        '"uniform"}}, {init = "fusion-floor", init_options = {floor = 0.2}}]\nseed = [0, 1]\n'
        '[settings]\ngame = "kuhn_poker"\noracle = "pg"\n')
    cells = load_sweep(config).cells
    assert [c.name for c in cells] == ["normal-seed0", "normal-seed1", "uniform-seed0", "uniform-seed1",
                                       "fusion_floor_init_optionsfloor_0.2-seed0",
                                       "fusion_floor_init_optionsfloor_0.2-seed1"]
    assert [(c.config.init, c.config.init_options, c.config.seed) for c in cells[1:3]] == [
        ("normal", {}, 1), ("fusion", {"weights": "uniform"}, 0)]
    config.write_text(config.read_text().replace('oracle = "pg"', 'oracle = "pg"\ninit = "inherit"'))
    with pytest.raises(SweepConfigError, match=r"\['init'\] appear in both arm"):
        load_sweep(config)
    config.write_text('[grid]\narm = [{init = "fusion", init_options = {weights = "nope"}}]\n'
                      '[settings]\ngame = "kuhn_poker"\noracle = "pg"\n')
    with pytest.raises(SweepConfigError, match="weights must be one of"):
        load_sweep(config)
