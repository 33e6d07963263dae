"""Tests of the non-transitive mixture game (``fusion_psro.games.mixture``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from fusion_psro.errors import ConfigError, InvalidMetaStrategyError, InvalidPolicyError, NumericalError
from fusion_psro.games.mixture import (
    CIRCLE_CENTRES,
    DPP_PSRO_CENTRES,
    GridSpec,
    MixtureGame,
    cyclic_dominance_matrix,
)
from fusion_psro.psro import fuse_parameters

GAME = MixtureGame()


def explicit_payoff(x, y, centres=CIRCLE_CENTRES, precision=0.54):
    """The payoff written out term by term, independent of the module's vectorised code."""
    H = len(centres)
    p = [np.exp(-0.5 * precision * np.sum((np.asarray(x) - centres[k]) ** 2)) for k in range(H)]
    q = [np.exp(-0.5 * precision * np.sum((np.asarray(y) - centres[k]) ** 2)) for k in range(H)]
    total = 0.0
    for k in range(H):
        for j in range(H):
            offset = (j - k) % H
            s = 0.0 if offset == 0 else (1.0 if offset <= (H - 1) // 2 else -1.0)
            total += p[k] * s * q[j]
    return total + 0.5 * (sum(p) - sum(q))


def maximin_lp(M):
    """Row player's maximin strategy and value of the zero-sum matrix game M (HiGHS)."""
    K, L = M.shape
    c = np.zeros(K + 1)
    c[-1] = -1.0
    res = linprog(
        c,
        A_ub=np.hstack([-M.T, np.ones((L, 1))]),
        b_ub=np.zeros(L),
        A_eq=np.hstack([np.ones((1, K)), np.zeros((1, 1))]),
        b_eq=[1.0],
        bounds=[(0.0, None)] * K + [(None, None)],
        method="highs",
    )
    assert res.status == 0
    return res.x[:K], res.x[-1]


def brute_force_best_value(game, points, weights, spacing=0.0075, half_width=6.0):
    """max_x u(x, sigma) on a very fine grid, by direct summation of the Gaussians."""
    c, const = game.response_coefficients(points, weights)
    nodes = np.arange(-half_width, half_width + spacing / 2, spacing)
    best = -np.inf
    for start in range(0, len(nodes), 400):  # chunks of rows keep the memory small
        xs = nodes[start:start + 400]
        X, Y = np.meshgrid(xs, nodes, indexing="ij")
        f = np.zeros_like(X)
        for k in range(game.num_humps):
            mx, my = game.centres[k]
            f += c[k] * np.exp(-0.5 * game.precision * ((X - mx) ** 2 + (Y - my) ** 2))
        best = max(best, float(f.max()))
    curvature = game.precision * np.abs(c).sum()
    return best + const, curvature * spacing**2 / 4  # value and its certified error


def random_mixture(rng, size):
    points = CIRCLE_CENTRES[rng.integers(0, 7, size)] + 0.8 * rng.standard_normal((size, 2))
    return points, rng.dirichlet(np.ones(size))


# ---------------------------------------------------------------------------- structure


def test_activations_formula():
    points = np.array([[0.0, 0.0], CIRCLE_CENTRES[2], [1.0, -2.0]])
    P = GAME.activations(points)
    assert P.shape == (3, 7)
    assert P[1, 2] == pytest.approx(1.0)
    d2 = np.sum((points[2] - CIRCLE_CENTRES[5]) ** 2)
    assert P[2, 5] == pytest.approx(np.exp(-0.27 * d2), rel=1e-14)
    assert np.allclose(P[0], P[0, 0], rtol=1e-4)  # the origin is (nearly) equidistant from all humps



def test_torch_activations_match_the_numpy_ones_and_carry_gradients():
    import torch

    points = np.array([[0.0, 0.0], CIRCLE_CENTRES[2], [1.0, -2.0]])
    batch = GAME.torch_activations(torch.tensor(points))
    assert batch.shape == (3, 7)
    np.testing.assert_allclose(batch.numpy(), GAME.activations(points), rtol=1e-15)
    x = torch.tensor(points[2], requires_grad=True)
    single = GAME.torch_activations(x)
    assert single.shape == (7,)
    single[5].backward()  # d/dx exp(-0.27 |x - mu|^2) = -0.54 (x - mu) p
    expected = -GAME.precision * (points[2] - CIRCLE_CENTRES[5]) * GAME.activations(points[2:])[0, 5]
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)

def test_dominance_matrix():
    S = GAME.S
    assert np.array_equal(S, -S.T)
    assert np.array_equal(S[0], [0, 1, 1, 1, -1, -1, -1])
    for k in range(7):
        assert np.array_equal(S[k], np.roll(S[0], k))
    assert np.array_equal(S.sum(axis=0), np.zeros(7))
    assert cyclic_dominance_matrix(9)[0].tolist() == [0, 1, 1, 1, 1, -1, -1, -1, -1]
    with pytest.raises(ConfigError, match="odd"):
        cyclic_dominance_matrix(6)


def test_centres_go_counter_clockwise_around_one_circle():
    angles = np.degrees(np.arctan2(CIRCLE_CENTRES[:, 1], CIRCLE_CENTRES[:, 0]))
    steps = np.diff(np.concatenate([angles, angles[:1]])) % 360.0
    assert np.all((steps > 50.0) & (steps < 53.0))  # ~360 / 7 each, all counter-clockwise
    assert steps.sum() == pytest.approx(360.0)
    assert np.allclose(np.hypot(*CIRCLE_CENTRES.T), 2.8723, atol=1e-4)


def test_each_hump_beats_the_next_three_around_the_circle():
    U = GAME.payoff_matrix(CIRCLE_CENTRES, CIRCLE_CENTRES)
    for k in range(7):
        for j in (1, 2, 3):
            assert U[k, (k + j) % 7] > 1.0  # beats the next three (counter-clockwise)
            assert U[k, (k + j + 3) % 7] < -1.0  # loses to the three after


def test_prior_code_order_is_not_rotational():
    # DPP-PSRO's code lists the same centres zig-zag; the index cycle holds, the spatial one does not.
    prior = MixtureGame.dpp_psro_prior_code()
    assert np.allclose(np.sort(prior.centres, axis=0), np.sort(CIRCLE_CENTRES, axis=0), atol=1e-4)
    U = prior.payoff_matrix(DPP_PSRO_CENTRES, DPP_PSRO_CENTRES)
    for k in range(7):
        for j in (1, 2, 3):
            assert U[k, (k + j) % 7] > 0 > U[k, (k + j + 3) % 7]
    # The hump at angle 0 (index 0) beats both spatial neighbours (indices 1 and 2, at +-51 deg).
    assert U[0, 1] > 0 and U[0, 2] > 0


def regular_game(num_humps: int, radius: float) -> MixtureGame:
    """The rotational variant of later codes: centres at ``radius * (cos, sin)(2 pi i / H)``."""
    angles = 2.0 * np.pi * np.arange(num_humps) / num_humps
    return MixtureGame(centres=radius * np.stack([np.cos(angles), np.sin(angles)], axis=1))


def test_regular_variant():
    game = regular_game(9, 4.0)  # the 9-hump game of the BD&RD-PSRO code
    assert game.num_humps == 9 and game.S.shape == (9, 9)
    U = game.payoff_matrix(game.centres, game.centres)
    assert all(U[k, (k + 1) % 9] > 0 for k in range(9))


# ---------------------------------------------------------------------------- payoffs


def test_payoff_is_antisymmetric_and_matches_formula():
    rng = np.random.default_rng(0)
    A = rng.uniform(-4, 4, (6, 2))
    B = rng.uniform(-4, 4, (5, 2))
    for x, y in zip(A, B):
        assert GAME.payoff(x, y) == pytest.approx(explicit_payoff(x, y), abs=1e-12)
        assert GAME.payoff(x, y) == pytest.approx(-GAME.payoff(y, x), abs=1e-12)
        assert GAME.payoff(x, x) == pytest.approx(0.0, abs=1e-12)
    M = GAME.payoff_matrix(A, A)
    assert np.allclose(M, -M.T, atol=1e-12)
    assert np.allclose(GAME.payoff_matrix(A, B), -GAME.payoff_matrix(B, A).T, atol=1e-12)


def test_symmetric_game_has_value_zero():
    rng = np.random.default_rng(1)
    points = rng.uniform(-4, 4, (80, 2))
    M = GAME.payoff_matrix(points, points)
    x, value = maximin_lp(M)
    assert abs(value) < 1e-9
    assert abs(x @ M @ x) < 1e-12  # u(sigma, sigma) = 0 for any sigma, by antisymmetry


def test_mixture_payoff_is_weighted_sum_of_pairwise_payoffs():
    rng = np.random.default_rng(2)
    opp, w = random_mixture(rng, 7)
    mine, v = random_mixture(rng, 4)
    M = GAME.payoff_matrix(mine, opp)
    assert np.allclose(GAME.payoff_against_mixture(mine, opp, w), M @ w, atol=1e-12)
    assert np.allclose(GAME.mixture_activation(opp, w), w @ GAME.activations(opp))


# ---------------------------------------------------------------------------- oracles

# Opponent: humps 0, 3 and 5, uniformly. Gradient ascent from the origin climbs a
# local maximum near (-1.12, 2.31) (value 0.277); the best response is near (-2.39, -1.02)
# (value 0.373).
HARD_POINTS = CIRCLE_CENTRES[[0, 3, 5]]
HARD_WEIGHTS = np.full(3, 1.0 / 3.0)


def test_gradient_best_response_increases_payoff():
    rng = np.random.default_rng(3)
    opp, w = random_mixture(rng, 5)
    start = np.array([0.3, -0.2])
    br = GAME.gradient_best_response(opp, w, start=start, steps=100, return_trajectory=True)
    assert br.trajectory.shape == (101, 2)
    assert np.array_equal(br.trajectory[0], start)
    values = GAME.payoff_against_mixture(br.trajectory, opp, w)
    assert br.value == pytest.approx(values[-1])
    assert br.value > values[0] + 0.05
    same = GAME.gradient_best_response(opp, w, seed=7, steps=20)
    assert np.array_equal(same.point, GAME.gradient_best_response(opp, w, seed=7, steps=20).point)


def test_global_best_response_finds_what_one_gradient_start_misses():
    global_br = GAME.global_best_response(HARD_POINTS, HARD_WEIGHTS)
    truth, error = brute_force_best_value(GAME, HARD_POINTS, HARD_WEIGHTS, spacing=0.01)
    assert truth <= global_br.value + 1e-12
    assert global_br.value - truth <= error
    assert global_br.value == pytest.approx(0.3735, abs=1e-3)
    assert np.allclose(global_br.point, [-2.391, -1.020], atol=1e-2)

    # The paper's oracle from the origin converges to a different, worse local maximum.
    local = GAME.gradient_best_response(HARD_POINTS, HARD_WEIGHTS, start=[0.0, 0.0], steps=300)
    longer = GAME.gradient_best_response(HARD_POINTS, HARD_WEIGHTS, start=[0.0, 0.0], steps=1000)
    assert longer.value == pytest.approx(local.value, abs=1e-6)  # converged: more steps do not help
    assert local.value == pytest.approx(0.2766, abs=1e-3)
    assert np.linalg.norm(local.point - global_br.point) > 3.0
    assert global_br.value - local.value > 0.09
    # ... and so do most near-origin random starts 0.1 * N(0, I) used by the prior code.
    values = [GAME.gradient_best_response(HARD_POINTS, HARD_WEIGHTS, seed=s, steps=200).value for s in range(8)]
    assert min(values) < global_br.value - 0.09
    assert max(values) <= global_br.value + 1e-9


@pytest.mark.parametrize("seed", [4, 5])
def test_global_best_response_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    opp, w = random_mixture(rng, 6)
    br = GAME.global_best_response(opp, w)
    assert br.value == pytest.approx(GAME.payoff_against_mixture(br.point[None], opp, w)[0], abs=1e-12)
    truth, error = brute_force_best_value(GAME, opp, w)
    assert truth <= br.value + 1e-12  # never beaten by the finer grid
    assert br.value - truth <= error  # within the certified gap of the finer grid
    assert 0 <= br.value_error_bound < 2e-3
    grads = [GAME.gradient_best_response(opp, w, seed=s, steps=100).value for s in range(3)]
    assert max(grads) <= br.value + 1e-9
    assert br.value >= GAME.payoff_against_mixture(opp, opp, w).max() - 1e-12


def test_global_best_response_grows_a_small_box():
    small = GAME.global_best_response(HARD_POINTS, HARD_WEIGHTS, grid=GridSpec(half_width=1.0, spacing=0.02))
    default = GAME.global_best_response(HARD_POINTS, HARD_WEIGHTS)
    assert small.value == pytest.approx(default.value, abs=1e-9)


# ---------------------------------------------------------------------------- exploitability


def test_exploitability_is_half_nash_conv_of_the_symmetric_profile():
    rng = np.random.default_rng(6)
    points, w = random_mixture(rng, 5)
    expl = GAME.exploitability(points, w)
    assert expl == GAME.global_best_response(points, w).value
    assert expl > 0
    assert w @ GAME.payoff_matrix(points, points) @ w == pytest.approx(0.0, abs=1e-12)
    # Player 1's best deviation, computed independently: minimise u(sigma, y) over a grid of y.
    nodes = np.arange(-6.0, 6.0 + 1e-9, 0.03)
    ys = np.stack(np.meshgrid(nodes, nodes), axis=-1).reshape(-1, 2)
    gain_1 = -float((w @ GAME.payoff_matrix(points, ys)).min())
    nash_conv = expl + gain_1  # both gains measured from u(sigma, sigma) = 0
    assert 0 <= 2 * expl - nash_conv < 3e-3  # the grid can only under-estimate gain_1
    assert GAME.nash_conv(points, w, points, w) == pytest.approx(2 * expl, abs=1e-12)


def test_exploitability_of_a_meta_nash_over_a_dense_population_is_small():
    axis = np.arange(-4.0, 4.0 + 1e-9, 0.5)
    population = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    sigma, value = maximin_lp(GAME.payoff_matrix(population, population))
    sigma = np.clip(sigma, 0, None) / np.clip(sigma, 0, None).sum()
    assert abs(value) < 1e-9
    assert -1e-9 <= GAME.exploitability(population, sigma) < 0.01
    assert GAME.exploitability(CIRCLE_CENTRES[:1], [1.0]) > 1.5  # a pure hump is very exploitable


# ---------------------------------------------------------------------------- fusion and validation


def test_fusion_of_points_is_their_meta_strategy_weighted_mean():
    # A policy of the mixture game is its own parameter vector {"point": tensor}.
    points = np.array([[1.0, 2.0], [-3.0, 0.5], [0.0, -1.0]])
    members = [{"point": torch.tensor(point)} for point in points]

    def fuse(weights):
        return fuse_parameters(members, weights)["point"].numpy()

    assert np.array_equal(fuse([0.0, 1.0, 0.0]), points[1])
    assert np.allclose(fuse(np.full(3, 1 / 3)), points.mean(axis=0))
    assert np.allclose(fuse([0.5, 0.0, 0.5]), [0.5, 0.5])
    with pytest.raises(ValueError, match="probability vector"):
        fuse([0.5, 0.6, 0.0])
    with pytest.raises(ValueError, match="weights of shape"):
        fuse([1.0, 0.0])


def test_input_validation():
    with pytest.raises(InvalidPolicyError):
        GAME.activations(np.zeros((3, 3)))
    with pytest.raises(InvalidPolicyError):
        GAME.payoff([0.0, np.nan], [0.0, 0.0])
    with pytest.raises(InvalidMetaStrategyError):
        GAME.payoff_against_mixture(np.zeros((1, 2)), np.zeros((2, 2)), [-0.5, 1.5])
    with pytest.raises(ConfigError, match="odd"):
        MixtureGame(centres=np.zeros((6, 2)))
    with pytest.raises(ConfigError, match="precision"):
        MixtureGame(precision=0.0)
    with pytest.raises(ConfigError, match="linear_weight"):
        MixtureGame(linear_weight=np.inf)
    with pytest.raises(ConfigError, match="half_width"):
        GridSpec(half_width=2.0, max_half_width=1.0)
    with pytest.raises(ConfigError, match="lr"):
        GAME.gradient_best_response(np.zeros((1, 2)), [1.0], lr=0.0)
    with pytest.raises(ConfigError, match="num_starts"):
        GAME.global_best_response(np.zeros((1, 2)), [1.0], num_starts=0)
    with pytest.raises(AttributeError):
        GAME.precision = 1.0  # frozen
    assert not GAME.centres.flags.writeable


def test_a_grid_that_cannot_cover_the_optimum_is_a_numerical_error():
    # The box may not grow past 1.0 while every hump lies at radius 2.87: a point outside
    # could beat every grid node.
    grid = GridSpec(half_width=1.0, spacing=0.1, max_half_width=1.0)
    with pytest.raises(NumericalError, match="increase grid.max_half_width"):
        GAME.global_best_response(CIRCLE_CENTRES[:1], [1.0], grid=grid)
