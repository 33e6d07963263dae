"""Tests for fusion_psro.meta: PSRO meta-solvers for two-player zero-sum meta-games."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from scipy.optimize import linprog

from fusion_psro import registry
from fusion_psro.errors import (
    ConfigError,
    FusionPSROError,
    InvalidMetaStrategyError,
    NumericalError,
    UnknownComponentError,
)
from fusion_psro.meta import (
    META_SOLVERS,
    InvalidMetaGameError,
    InvalidMetaSolverError,
    MetaSolution,
    get_meta_solver,
    meta_exploitability,
    meta_nash_conv,
    solve_nash,
    solve_prd,
    solve_regret_matching,
    solve_uniform,
)
from fusion_psro.meta import solvers as solvers_module
from fusion_psro.registry import register_meta_solver

RPS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
# Biased rock-paper-scissors: unique equilibrium (1/4, 1/2, 1/4) for both players, value 0.
BIASED_RPS = np.array([[0.0, -1.0, 2.0], [1.0, 0.0, -1.0], [-2.0, 1.0, 0.0]])
MATCHING_PENNIES = np.array([[1.0, -1.0], [-1.0, 1.0]])
# Row 2 strictly dominates; column 1 is player 1's best reply: pure saddle point (2, 1), value 3.
SADDLE = np.array([[4.0, 2.0, 3.0], [1.0, 0.0, -1.0], [5.0, 3.0, 4.0]])
SKEWED_START = ([0.6, 0.3, 0.1], [0.2, 0.2, 0.6])

TOL = 1e-8


def assert_distribution(p, n):
    p = np.asarray(p)
    assert p.shape == (n,)
    assert p.dtype == np.float64
    assert np.all(p >= 0.0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def assert_minimax(M, sol: MetaSolution, tol=TOL):
    """sigma0 guarantees at least the value against every column, sigma1 at most against every row."""
    s0, s1 = sol.strategies
    assert np.all(s0 @ M >= sol.value - tol)
    assert np.all(M @ s1 <= sol.value + tol)


def independent_value(M) -> float:
    """Game value by the classic positive-shift LP (Dantzig / Shoham & Leyton-Brown), dual simplex.

    With P = M - min(M) + 1 > 0, player 0 solves min sum(p) s.t. P.T @ p >= 1, p >= 0; then
    value(P) = 1 / sum(p).  A different formulation and algorithm from solve_nash's.
    """
    shift = M.min() - 1.0
    P = M - shift
    K, L = M.shape
    res = linprog(np.ones(K), A_ub=-P.T, b_ub=-np.ones(L), bounds=[(0, None)] * K, method="highs-ds")
    assert res.status == 0
    return 1.0 / res.x.sum() + shift


def player1_value(M) -> float:
    """Player 1's minimax LP in the same shifted form: max sum(q) s.t. P @ q <= 1, q >= 0."""
    shift = M.min() - 1.0
    P = M - shift
    K, L = M.shape
    res = linprog(-np.ones(L), A_ub=P, b_ub=np.ones(K), bounds=[(0, None)] * L, method="highs-ipm")
    assert res.status == 0
    return 1.0 / res.x.sum() + shift


# --------------------------------------------------------------------------- Nash


def test_rps_nash_is_uniform_with_value_zero():
    sol = solve_nash(RPS)
    assert sol.solver == "nash"
    assert sol.value == pytest.approx(0.0, abs=1e-12)
    for s in sol.strategies:
        np.testing.assert_allclose(s, np.full(3, 1 / 3), atol=1e-10)
    assert_minimax(RPS, sol)


def test_biased_rps_nash():
    sol = solve_nash(BIASED_RPS)
    assert sol.value == pytest.approx(0.0, abs=1e-12)
    for s in sol.strategies:
        np.testing.assert_allclose(s, [0.25, 0.5, 0.25], atol=1e-10)


def test_matching_pennies_nash():
    sol = solve_nash(MATCHING_PENNIES)
    assert sol.value == pytest.approx(0.0, abs=1e-12)
    for s in sol.strategies:
        np.testing.assert_allclose(s, [0.5, 0.5], atol=1e-10)


def test_pure_saddle_point():
    sol = solve_nash(SADDLE)
    np.testing.assert_allclose(sol.strategies[0], [0.0, 0.0, 1.0], atol=1e-10)
    np.testing.assert_allclose(sol.strategies[1], [0.0, 1.0, 0.0], atol=1e-10)
    assert sol.value == pytest.approx(3.0, abs=1e-12)
    assert_minimax(SADDLE, sol)


@pytest.mark.parametrize("name", sorted(META_SOLVERS))
def test_one_by_one(name):
    sol = get_meta_solver(name)([[2.5]])
    np.testing.assert_array_equal(sol.strategies[0], [1.0])
    np.testing.assert_array_equal(sol.strategies[1], [1.0])
    assert sol.value == 2.5
    assert sol.solver == name


def test_one_by_n_and_n_by_one():
    sol = solve_nash([[3.0, 1.0, 2.0]])
    np.testing.assert_allclose(sol.strategies[0], [1.0])
    np.testing.assert_allclose(sol.strategies[1], [0.0, 1.0, 0.0], atol=1e-10)
    assert sol.value == pytest.approx(1.0, abs=1e-12)

    sol = solve_nash([[3.0], [1.0], [2.0]])
    np.testing.assert_allclose(sol.strategies[0], [1.0, 0.0, 0.0], atol=1e-10)
    np.testing.assert_allclose(sol.strategies[1], [1.0])
    assert sol.value == pytest.approx(3.0, abs=1e-12)


@pytest.mark.parametrize("name", sorted(META_SOLVERS))
def test_one_by_n_all_solvers_return_distributions(name):
    M = np.array([[3.0, 1.0, 2.0, -1.0]])
    sol = get_meta_solver(name)(M)
    assert_distribution(sol.strategies[0], 1)
    assert_distribution(sol.strategies[1], 4)
    s0, s1 = sol.strategies
    assert sol.value == pytest.approx(float(s0 @ M @ s1), abs=1e-12)


@pytest.mark.parametrize("shape", [(8, 5), (20, 20)])
def test_random_matrices_minimax_property(shape):
    seeds = range(30)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        M = rng.normal(size=shape)
        sol = solve_nash(M)
        assert_distribution(sol.strategies[0], shape[0])
        assert_distribution(sol.strategies[1], shape[1])
        assert_minimax(M, sol)
        s0, s1 = sol.strategies
        assert sol.value == pytest.approx(float(s0 @ M @ s1), abs=1e-12)
        assert meta_nash_conv(M, s0, s1) <= 2 * TOL
        assert sol.value == pytest.approx(independent_value(M), abs=TOL)
        assert sol.value == pytest.approx(player1_value(M), abs=1e-7)  # interior point: looser


def test_nash_is_invariant_to_positive_affine_payoffs():
    rng = np.random.default_rng(7)
    M = rng.normal(size=(6, 9))
    base = solve_nash(M)
    for scale, shift in [(1e4, -3.0), (1e-3, 50.0), (1.0, 1e3)]:
        sol = solve_nash(scale * M + shift)  # a constant-sum game when shift != 0
        assert sol.value == pytest.approx(scale * base.value + shift, rel=1e-9, abs=1e-9 * scale)
        assert meta_nash_conv(M, *sol.strategies) <= 1e-8


def test_constant_matrix_any_strategy_is_nash():
    sol = solve_nash(np.full((3, 4), 2.0))
    assert_distribution(sol.strategies[0], 3)
    assert_distribution(sol.strategies[1], 4)
    assert sol.value == pytest.approx(2.0)


def test_integer_and_list_input():
    sol = solve_nash([[0, -1, 1], [1, 0, -1], [-1, 1, 0]])
    np.testing.assert_allclose(sol.strategies[0], np.full(3, 1 / 3), atol=1e-10)


# --------------------------------------------------------------------------- uniform


def test_uniform():
    M = np.arange(12.0).reshape(3, 4)
    sol = solve_uniform(M)
    np.testing.assert_array_equal(sol.strategies[0], np.full(3, 1 / 3))
    np.testing.assert_array_equal(sol.strategies[1], np.full(4, 1 / 4))
    assert sol.value == pytest.approx(M.mean())
    assert sol.solver == "uniform"


# --------------------------------------------------------------------------- PRD


def openspiel_prd(M, **kwargs):
    from open_spiel.python.algorithms.projected_replicator_dynamics import projected_replicator_dynamics

    return projected_replicator_dynamics([M, -M], **kwargs)


@pytest.mark.parametrize(
    ("shape", "seed", "iterations", "step", "exploration", "window"),
    [
        ((6, 4), 0, 1500, 0.05, 1e-6, None),  # strategies hit the floor: projections active
        ((5, 5), 1, 1500, 1e-3, 1e-6, None),  # OpenSpiel's dt and gamma
        ((4, 7), 2, 1000, 0.1, 1e-2, 400),  # large floor, finite averaging window
    ],
)
def test_prd_matches_openspiel(shape, seed, iterations, step, exploration, window):
    M = np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)
    ours = solve_prd(M, iterations=iterations, step=step, exploration=exploration, average_last=window)
    theirs = openspiel_prd(
        M,
        prd_iterations=iterations,
        prd_dt=step,
        prd_gamma=exploration,
        average_over_last_n_strategies=window,
    )
    for mine, ref in zip(ours.strategies, theirs):
        np.testing.assert_allclose(mine, ref, atol=1e-12)
    assert ours.solver == "prd"


def test_prd_matches_openspiel_from_initial_strategies():
    M = BIASED_RPS
    ours = solve_prd(M, iterations=800, step=0.05, initial_strategies=SKEWED_START)
    theirs = openspiel_prd(
        M, prd_iterations=800, prd_dt=0.05, prd_initial_strategies=[np.array(s) for s in SKEWED_START]
    )
    for mine, ref in zip(ours.strategies, theirs):
        np.testing.assert_allclose(mine, ref, atol=1e-12)


def test_prd_default_parameters_match_openspiel_semantics():
    M = np.random.default_rng(3).uniform(-1.0, 1.0, size=(5, 3))
    ours = solve_prd(M)  # defaults: 2000 iterations, dt 0.05, gamma 1e-6, whole-trajectory average
    theirs = openspiel_prd(M, prd_iterations=2000, prd_dt=0.05)
    for mine, ref in zip(ours.strategies, theirs):
        np.testing.assert_allclose(mine, ref, atol=1e-12)


@pytest.mark.parametrize("M", [RPS, BIASED_RPS], ids=["rps", "biased_rps"])
def test_prd_approaches_nash(M):
    coarse = solve_prd(M, iterations=2_000, step=1e-2, initial_strategies=SKEWED_START)
    fine = solve_prd(M, iterations=20_000, step=1e-2, initial_strategies=SKEWED_START)
    start = meta_nash_conv(M, *SKEWED_START)
    assert meta_nash_conv(M, *fine.strategies) < meta_nash_conv(M, *coarse.strategies) < start
    assert meta_exploitability(M, *fine.strategies) < 0.01
    assert fine.value == pytest.approx(0.0, abs=0.01)


def test_prd_uniform_is_a_fixed_point_of_rps():
    sol = solve_prd(RPS)
    for s in sol.strategies:
        np.testing.assert_allclose(s, np.full(3, 1 / 3), atol=1e-12)


def test_prd_respects_exploration_floor():
    M = SADDLE
    sol = solve_prd(M, iterations=3000, step=0.1, exploration=0.01, average_last=1)
    for s in sol.strategies:
        assert np.all(s >= 0.01 - 1e-12)


def test_prd_zero_iterations_returns_start():
    sol = solve_prd(RPS, iterations=0, initial_strategies=SKEWED_START)
    np.testing.assert_allclose(sol.strategies[0], SKEWED_START[0])
    np.testing.assert_allclose(sol.strategies[1], SKEWED_START[1])


# --------------------------------------------------------------------------- regret matching


@pytest.mark.parametrize("M", [RPS, BIASED_RPS], ids=["rps", "biased_rps"])
def test_regret_matching_approaches_nash(M):
    short = solve_regret_matching(M, iterations=500, initial_strategies=SKEWED_START)
    long = solve_regret_matching(M, iterations=10_000, initial_strategies=SKEWED_START)
    assert meta_nash_conv(M, *long.strategies) < meta_nash_conv(M, *short.strategies)
    assert meta_exploitability(M, *long.strategies) < 0.015
    for s in long.strategies:
        np.testing.assert_allclose(s, solve_nash(M).strategies[0], atol=0.02)
    assert long.solver == "rm"


def test_regret_matching_random_matrix_regret_bound():
    M = np.random.default_rng(11).uniform(-1.0, 1.0, size=(12, 9))
    sol = solve_regret_matching(M, iterations=4000)
    # Average-regret bound of regret matching: payoff range * sqrt(n_actions / T) per player.
    bound = 2.0 * (np.sqrt(12 / 4000) + np.sqrt(9 / 4000))
    assert meta_nash_conv(M, *sol.strategies) < bound


# --------------------------------------------------------------------------- registry


def test_registry_contents_and_signature():
    assert META_SOLVERS is registry.META_SOLVERS
    assert list(META_SOLVERS) == ["nash", "uniform", "prd", "rm", "fp"]
    assert "prd" in META_SOLVERS and "alpharank" not in META_SOLVERS
    M = np.random.default_rng(5).normal(size=(4, 3))
    for name, solver in META_SOLVERS.items():
        assert get_meta_solver(name) is solver
        sol = solver(M)
        assert isinstance(sol, MetaSolution)
        assert sol.solver == name
        assert_distribution(sol.strategies[0], 4)
        assert_distribution(sol.strategies[1], 3)


def test_unknown_solver_name_lists_accepted_names():
    with pytest.raises(UnknownComponentError) as info:
        get_meta_solver("alpharank")
    assert str(info.value) == "unknown meta-solver 'alpharank'; accepted: nash, uniform, prd, rm, fp"
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownComponentError, match="accepted: nash, uniform, prd, rm, fp"):
        get_meta_solver(None)


def test_registered_solvers_are_found_by_name():
    def solve_first(M) -> MetaSolution:
        M = np.asarray(M, dtype=np.float64)
        first = [np.eye(n)[0] for n in M.shape]
        return MetaSolution(strategies=(first[0], first[1]), value=float(M[0, 0]), solver="first")

    register_meta_solver("first", solve_first)
    try:
        assert get_meta_solver("first") is solve_first
        assert list(META_SOLVERS)[-1] == "first"
    finally:
        META_SOLVERS.unregister("first")
    assert "first" not in META_SOLVERS


def test_get_meta_solver_binds_keyword_arguments():
    solver = get_meta_solver("prd", iterations=10, step=0.5)
    direct = solve_prd(BIASED_RPS, iterations=10, step=0.5)
    np.testing.assert_array_equal(solver(BIASED_RPS).strategies[0], direct.strategies[0])
    with pytest.raises(InvalidMetaSolverError, match="meta-solver 'nash'.*its keyword arguments: none"):
        get_meta_solver("nash", iterations=10)
    with pytest.raises(InvalidMetaSolverError, match="keyword arguments: iterations, initial_strategies$"):
        get_meta_solver("rm", steps=10)
    assert issubclass(InvalidMetaSolverError, ConfigError)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("M", "fragment"),
    [
        ([1.0, 2.0, 3.0], "2-D"),
        (np.zeros((2, 2, 2)), "2-D"),
        (5.0, "2-D"),
        (np.zeros((0, 3)), "at least one row"),
        (np.zeros((3, 0)), "at least one row"),
        ([[1.0, np.nan]], "finite"),
        ([[1.0, 2.0], [np.inf, 0.0]], "[1, 0]"),
        ([[1.0, 2.0], [3.0]], "cannot be read"),
        ([["a", "b"]], "dtype"),
        ("rock", "str"),
        (np.array([[1 + 1j, 0]]), "dtype"),
        (np.array([[True, False]]), "dtype"),
        (np.array([[1.0, None]], dtype=object), "non-numeric"),
        (None, "NoneType"),
    ],
)
@pytest.mark.parametrize("name", sorted(META_SOLVERS))
def test_bad_matrices_rejected(M, fragment, name):
    with pytest.raises(InvalidMetaGameError) as info:
        META_SOLVERS.get(name)(M)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, FusionPSROError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"iterations": -1},
        {"iterations": 2.5},
        {"iterations": True},
        {"step": 0.0},
        {"step": float("nan")},
        {"exploration": -1e-3},
        {"exploration": 0.5},  # 0.5 * 3 >= 1
        {"average_last": 0},
    ],
)
def test_prd_bad_parameters(kwargs):
    with pytest.raises(InvalidMetaSolverError):
        solve_prd(RPS, **kwargs)


def test_regret_matching_bad_iterations():
    with pytest.raises(InvalidMetaSolverError, match="iterations"):
        solve_regret_matching(RPS, iterations=0)


@pytest.mark.parametrize(
    "initial",
    [
        ([1.0, 0.0, 0.0],),
        ([0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]),
        ([0.6, 0.6, -0.2], [1 / 3, 1 / 3, 1 / 3]),
        ([0.5, 0.2, 0.2], [1 / 3, 1 / 3, 1 / 3]),
        ([np.nan, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]),
    ],
)
@pytest.mark.parametrize("solver", [solve_prd, solve_regret_matching])
def test_bad_initial_strategies(initial, solver):
    with pytest.raises(InvalidMetaStrategyError):
        solver(RPS, initial_strategies=initial)


# --------------------------------------------------------------------------- misc


def test_a_failed_linear_program_is_a_numerical_error(monkeypatch):
    class Failed:
        status, x, message = 4, None, "numerical difficulties"

    monkeypatch.setattr(solvers_module, "linprog", lambda *args, **kwargs: Failed())
    with pytest.raises(NumericalError, match="status 4.*numerical difficulties"):
        solve_nash(RPS)


def test_solution_is_immutable_and_input_untouched():
    M = np.random.default_rng(9).normal(size=(4, 4))
    copy = M.copy()
    for _, solver in META_SOLVERS.items():
        sol = solver(M)
        np.testing.assert_array_equal(M, copy)
        with pytest.raises(dataclasses.FrozenInstanceError):
            sol.value = 1.0
        with pytest.raises(ValueError):
            sol.strategies[0][0] = 0.5


def test_solvers_log_and_do_not_print(capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="fusion_psro.meta"):
        for _, solver in META_SOLVERS.items():
            solver(SADDLE)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert any("solve_nash" in r.getMessage() for r in caplog.records)


def test_meta_nash_conv_checks_shapes():
    with pytest.raises(InvalidMetaStrategyError):
        meta_nash_conv(RPS, [1.0, 0.0], [1.0, 0.0, 0.0])
    assert meta_nash_conv(RPS, [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]) == pytest.approx(2.0)
