"""Vectorized episodes: sampled play matches the exact reach probabilities of the game."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.stats
from conftest import KUHN, LEDUC

from fusion_psro.errors import (
    ConfigError,
    GameNotSupportedError,
    InvalidMetaStrategyError,
    InvalidPlayerError,
    InvalidPolicyError,
)
from fusion_psro.evaluation import expected_payoff, mixture_plan, realization_plans
from fusion_psro.games import CHANCE, TERMINAL, CompiledGame, PlayerInfostates, compile_game
from fusion_psro.games.simulation import VectorizedEpisodes
from fusion_psro.policies import random_deterministic_policy, random_policy, uniform_policy

#: Chi-square tests reject at this p-value. The simulations are seeded, so a test either
#: always passes or always fails; the threshold only says how unlikely a pass by an
#: incorrect sampler would be.
P_VALUE = 1e-4


def sample_actions(policy: np.ndarray, infostates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per game from ``policy``'s rows (inactive games, -1, get action 0)."""
    rows = policy[np.maximum(infostates, 0)]
    cdf = np.cumsum(rows, axis=1)
    actions = np.argmax(cdf > rng.random(len(rows))[:, None] * cdf[:, -1:], axis=1)
    return np.where(infostates >= 0, actions, 0)


def play(episodes: VectorizedEpisodes, policy: np.ndarray, seed: int = 1):
    """Play until ``episodes`` is finished; return every terminal history and learner return."""
    rng = np.random.default_rng(seed)
    episodes.reset()
    terminals, returns = [episodes.last_terminals], [episodes.last_returns]
    while not episodes.finished:
        episodes.step(sample_actions(policy, episodes.infostates, rng))
        terminals.append(episodes.last_terminals)
        returns.append(episodes.last_returns)
    return np.concatenate(terminals), np.concatenate(returns)


def exact_terminal_distribution(compiled: CompiledGame, plan0: np.ndarray, plan1: np.ndarray) -> np.ndarray:
    """Probability of every history being the terminal reached (zero at non-terminals)."""
    z = compiled.terminal_histories
    probs = np.zeros(compiled.num_histories)
    probs[z] = compiled.chance_reach[z] * plan0[compiled.sequences[z, 0]] * plan1[compiled.sequences[z, 1]]
    return probs


def chi_square_p_value(terminals: np.ndarray, probs: np.ndarray) -> float:
    counts = np.bincount(terminals, minlength=probs.size)
    assert counts[probs == 0].sum() == 0, "a terminal of probability zero was sampled"
    support = probs > 0
    expected = probs[support] * terminals.size
    statistic = ((counts[support] - expected) ** 2 / expected).sum()
    return float(scipy.stats.chi2.sf(statistic, df=support.sum() - 1))


@pytest.mark.parametrize("learner", [0, 1])
def test_terminal_distribution_matches_exact_reach_probabilities(learner):
    compiled = compile_game(KUHN)
    rng = np.random.default_rng(7)
    policies = [random_policy(compiled, p, rng) for p in range(2)]
    episodes = VectorizedEpisodes(compiled, learner, policies[1 - learner], num_envs=1000, seed=3, max_episodes=200_000)
    terminals, returns = play(episodes, policies[learner])
    assert terminals.size == 200_000
    probs = exact_terminal_distribution(
        compiled, realization_plans(compiled, 0, policies[0]), realization_plans(compiled, 1, policies[1])
    )
    assert probs.sum() == pytest.approx(1.0)
    assert chi_square_p_value(terminals, probs) > P_VALUE
    np.testing.assert_array_equal(returns, compiled.returns[terminals, learner])


def test_leduc_terminal_distribution_and_mean_return():
    compiled = compile_game(LEDUC)
    rng = np.random.default_rng(11)
    learner_policy = random_policy(compiled, 0, rng)
    opponent = random_policy(compiled, 1, rng)
    episodes = VectorizedEpisodes(compiled, 0, opponent, num_envs=2048, seed=5, max_episodes=300_000)
    terminals, returns = play(episodes, learner_policy)
    probs = exact_terminal_distribution(
        compiled, realization_plans(compiled, 0, learner_policy), realization_plans(compiled, 1, opponent)
    )
    # 5,520 terminals: compare on terminals grouped so that every group is expected often.
    order = np.argsort(probs)[::-1]
    groups = np.zeros(compiled.num_histories, dtype=np.int64)
    groups[order] = np.minimum(np.cumsum(probs[order]) // 0.01, 99).astype(np.int64)
    grouped_probs = np.bincount(groups, weights=probs)
    assert chi_square_p_value(groups[terminals], grouped_probs) > P_VALUE
    exact = expected_payoff(compiled, learner_policy, opponent)[0]
    assert abs(returns.mean() - exact) < 4 * returns.std() / np.sqrt(returns.size)


def test_mixture_opponent_is_sampled_once_per_episode():
    """The opponent follows one member per episode: the distribution is the mixture plan's.

    In Kuhn poker player 0 may act twice. Member A always bets first; member B checks and
    calls. Per episode, the second decision (after check, bet) is reached only under B and
    then always calls; mixing the members per decision would fold there half the time.
    """
    compiled = compile_game(KUHN)
    info = compiled.players[0]
    bet_first = np.zeros((info.num_infostates, 2))
    check_call = np.zeros((info.num_infostates, 2))
    for row, key in enumerate(info.keys.tolist()):
        second_decision = key.endswith("pb")
        bet_first[row, 0 if second_decision else 1] = 1.0  # fold if ever asked again
        check_call[row, 1 if second_decision else 0] = 1.0
    population = np.stack([bet_first, check_call])
    weights = np.array([0.3, 0.7])
    learner_policy = random_policy(compiled, 1, np.random.default_rng(2))
    episodes = VectorizedEpisodes(compiled, 1, population, weights, num_envs=1000, seed=9, max_episodes=100_000)
    terminals, returns = play(episodes, learner_policy)

    mixed = mixture_plan(compiled, 0, population, weights)
    probs = exact_terminal_distribution(compiled, mixed, realization_plans(compiled, 1, learner_policy))
    assert chi_square_p_value(terminals, probs) > P_VALUE
    # Mixing per decision would reach "check, bet, fold" terminals; per episode never does.
    folds_after_check_bet = [h for h in compiled.terminal_histories if compiled.action_path(int(h))[2:] == [0, 1, 0]]
    assert len(folds_after_check_bet) == 6
    assert not np.isin(terminals, folds_after_check_bet).any()

    values = [expected_payoff(compiled, member, learner_policy)[1] for member in population]
    exact = float(weights @ values)
    assert abs(returns.mean() - exact) < 4 * returns.std() / np.sqrt(returns.size)


def test_mixture_mean_return_on_leduc():
    compiled = compile_game(LEDUC)
    rng = np.random.default_rng(4)
    population = np.stack([random_deterministic_policy(compiled, 0, rng) for _ in range(3)])
    weights = np.array([0.5, 0.2, 0.3])
    learner_policy = random_policy(compiled, 1, rng)
    episodes = VectorizedEpisodes(compiled, 1, population, weights, num_envs=2048, seed=1, max_episodes=200_000)
    _, returns = play(episodes, learner_policy)
    exact = sum(w * expected_payoff(compiled, member, learner_policy)[1] for w, member in zip(weights, population))
    assert abs(returns.mean() - exact) < 4 * returns.std() / np.sqrt(returns.size)


def test_auto_reset_counts_episodes_exactly():
    compiled = compile_game(LEDUC)
    policy = uniform_policy(compiled, 0)
    episodes = VectorizedEpisodes(compiled, 0, uniform_policy(compiled, 1), num_envs=64, seed=0, max_episodes=1000)
    rng = np.random.default_rng(0)
    episodes.reset()
    assert episodes.episodes_started == 64 and episodes.episodes_completed == 0
    done_total = 0
    learner_steps = 0
    while not episodes.finished:
        active_before = episodes.active.copy()
        result = episodes.step(sample_actions(policy, episodes.infostates, rng))
        np.testing.assert_array_equal(result.acted, active_before)
        assert not (result.done & ~result.acted).any()
        np.testing.assert_array_equal(np.sort(result.terminals[result.done]), np.sort(episodes.last_terminals))
        assert (compiled.node_player[result.terminals[result.done]] == TERMINAL).all()
        np.testing.assert_array_equal(result.rewards[result.done], compiled.returns[result.terminals[result.done], 0])
        assert (result.rewards[~result.done] == 0).all()
        # Every active game, including those just reset, waits at a learner decision.
        active = episodes.active
        assert (compiled.node_player[episodes.history[active]] == 0).all()
        assert (episodes.infostates[active] == compiled.node_infostate[episodes.history[active]]).all()
        assert (episodes.infostates[~active] == -1).all()
        done_total += int(result.done.sum())
        learner_steps += int(result.acted.sum())
    assert done_total == episodes.episodes_completed == episodes.episodes_started == 1000
    assert episodes.learner_steps == learner_steps


def test_unbounded_episodes_keep_every_game_active():
    compiled = compile_game(KUHN)
    episodes = VectorizedEpisodes(compiled, 1, uniform_policy(compiled, 0), num_envs=8, seed=0)
    episodes.reset()
    policy = uniform_policy(compiled, 1)
    rng = np.random.default_rng(0)
    done = 0
    for _ in range(100):
        done += int(episodes.step(sample_actions(policy, episodes.infostates, rng)).done.sum())
        assert episodes.active.all()
    # In Kuhn player 1 acts exactly once per episode: every step ends every episode.
    assert done == episodes.episodes_completed == 800
    assert episodes.episodes_started == 808
    obs = episodes.observations
    assert obs.shape == (8, compiled.players[1].tensors.shape[1])
    np.testing.assert_array_equal(obs, compiled.players[1].tensors[episodes.infostates])
    np.testing.assert_array_equal(episodes.legal_mask, compiled.players[1].legal_mask[episodes.infostates])


def test_same_seed_same_episodes():
    compiled = compile_game(LEDUC)
    policy = random_policy(compiled, 0, np.random.default_rng(0))
    runs = []
    for _ in range(2):
        episodes = VectorizedEpisodes(compiled, 0, uniform_policy(compiled, 1), num_envs=32, seed=123, max_episodes=500)
        runs.append(play(episodes, policy, seed=5)[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    other = VectorizedEpisodes(compiled, 0, uniform_policy(compiled, 1), num_envs=32, seed=124, max_episodes=500)
    assert not np.array_equal(play(other, policy, seed=5)[0], runs[0])


def _toy_game() -> CompiledGame:
    """Chance (0.3 / 0.7): outcome 0 ends the game; outcome 1 lets player 0 act: action 0
    ends the game, action 1 lets player 1 act (two terminal actions)."""
    #            0: chance, 1: terminal, 2: p0, 3: terminal, 4: p1, 5/6: terminals
    parent = np.array([-1, 0, 0, 2, 2, 4, 4], dtype=np.int32)
    parent_action = np.array([-1, 0, 1, 0, 1, 0, 1], dtype=np.int32)
    node_player = np.array([CHANCE, TERMINAL, 0, TERMINAL, 1, TERMINAL, TERMINAL], dtype=np.int8)
    node_infostate = np.array([-1, -1, 0, -1, 0, -1, -1], dtype=np.int32)
    edge = np.array([1.0, 0.3, 0.7, 1, 1, 1, 1])
    reach = np.array([1.0, 0.3, 0.7, 0.7, 0.7, 0.7, 0.7])
    sequences = np.array([[2, 2], [2, 2], [2, 2], [0, 2], [1, 2], [1, 0], [1, 1]], dtype=np.int64)
    returns = np.zeros((7, 2))
    returns[[1, 3, 5, 6]] = [[1, -1], [2, -2], [-1, 1], [0, 0]]

    def player() -> PlayerInfostates:
        return PlayerInfostates(
            num_actions=2, keys=np.array(["s"]), legal_mask=np.ones((1, 2), dtype=bool), tensors=np.ones((1, 1), np.float32),
            parent_sequence=np.array([2]), level=np.array([0], dtype=np.int32), representative_history=np.array([2]),
        )

    return CompiledGame(
        game_string="toy", openspiel_version="-", num_actions=2, utility_sum=0.0, parent=parent,
        parent_action=parent_action, depth=np.array([0, 1, 1, 2, 2, 3, 3], dtype=np.int16), node_player=node_player,
        node_infostate=node_infostate, edge_chance_prob=edge, chance_reach=reach, sequences=sequences,
        returns=returns, players=(player(), player()),
    )


def test_episodes_that_end_before_the_learner_acts_are_counted():
    compiled = _toy_game()
    opponent = np.array([[0.5, 0.5]])  # player 0
    episodes = VectorizedEpisodes(compiled, 1, opponent, num_envs=100, seed=0, max_episodes=40_000)
    terminals, returns = play(episodes, np.array([[0.5, 0.5]]))
    assert terminals.size == returns.size == episodes.episodes_completed == 40_000
    # The learner (player 1) acts in 35% of the episodes.
    assert episodes.learner_steps == np.isin(terminals, [5, 6]).sum()
    counts = np.bincount(terminals, minlength=7)[[1, 3, 5, 6]]
    assert scipy.stats.chisquare(counts, 40_000 * np.array([0.3, 0.35, 0.175, 0.175])).pvalue > P_VALUE
    np.testing.assert_array_equal(returns, compiled.returns[terminals, 1])


def test_invalid_arguments():
    compiled = compile_game(KUHN)
    opponent = uniform_policy(compiled, 1)
    with pytest.raises(InvalidPlayerError, match="learner"):
        VectorizedEpisodes(compiled, 2, opponent)
    with pytest.raises(ConfigError, match="num_envs"):
        VectorizedEpisodes(compiled, 0, opponent, num_envs=0)
    with pytest.raises(ConfigError, match="max_episodes"):
        VectorizedEpisodes(compiled, 0, opponent, max_episodes=-1)
    with pytest.raises(InvalidMetaStrategyError, match="opponent_weights"):
        VectorizedEpisodes(compiled, 0, np.stack([opponent, opponent]))
    episodes = VectorizedEpisodes(compiled, 0, opponent, num_envs=4, seed=0)
    episodes.reset()
    with pytest.raises(InvalidPolicyError, match="shape"):
        episodes.step(np.zeros(3, dtype=int))
    with pytest.raises(InvalidPolicyError, match=r"illegal action 5 for game 0, .*legal actions there: \[0, 1\]"):
        episodes.step(np.full(4, 5))


def test_illegal_action_within_range_is_named():
    compiled = compile_game(LEDUC)
    episodes = VectorizedEpisodes(compiled, 0, uniform_policy(compiled, 1), num_envs=8, seed=0)
    episodes.reset()  # every game at player 0's first decision, where folding (action 0) is illegal
    assert not episodes.legal_mask[:, 0].any()
    with pytest.raises(InvalidPolicyError, match=r"illegal action 0 for game 0, .*legal actions there: \[1, 2\]"):
        episodes.step(np.zeros(8, dtype=int))


def test_observations_of_a_game_without_tensors_are_refused():
    toy = _toy_game()
    no_tensors = dataclasses.replace(toy, players=tuple(dataclasses.replace(p, tensors=None) for p in toy.players))
    episodes = VectorizedEpisodes(no_tensors, 1, np.array([[0.5, 0.5]]), num_envs=2, seed=0)
    episodes.reset()
    with pytest.raises(GameNotSupportedError, match="toy provides no information-state tensors"):
        episodes.observations
