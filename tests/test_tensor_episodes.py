"""Tensor episodes: many jobs' sampled play matches the exact payoffs and reach probabilities.

Every test runs on the CPU; with ``FUSION_PSRO_TEST_DEVICE=cuda`` in the environment (and
CUDA present) each runs on CUDA too. The simulations are seeded, so a statistical test
either always passes or always fails (see ``P_VALUE`` in test_simulation.py).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import scipy.stats
import torch
from conftest import KUHN, LEDUC
from test_simulation import P_VALUE, _toy_game, chi_square_p_value, exact_terminal_distribution

from fusion_psro.errors import ConfigError, GameNotSupportedError, InvalidMetaStrategyError, InvalidPlayerError
from fusion_psro.errors import FusionPSROError, InvalidPolicyError
from fusion_psro.evaluation import expected_payoff, mixture_plan, realization_plans
from fusion_psro.games import TERMINAL, compile_game
from fusion_psro.games.tensor_episodes import EpisodeJob, RandomPlay, TensorEpisodes, _alias_tables
from fusion_psro.policies import random_deterministic_policy, random_policy, uniform_policy


def _devices() -> list:
    requested = os.environ.get("FUSION_PSRO_TEST_DEVICE")
    cuda = pytest.param("cuda", marks=pytest.mark.skipif(
        requested != "cuda" or not torch.cuda.is_available(),
        reason="CUDA runs only with FUSION_PSRO_TEST_DEVICE=cuda on a machine with CUDA"
        + ("" if requested != "cuda" else " (this PyTorch sees no CUDA device)")))
    return ["cpu", cuda]


DEVICES = _devices()


def _learner_tables(compiled, policies) -> torch.Tensor:
    """Per job, its learner's policy padded to ``[J, I_max, A]``."""
    rows = max(info.num_infostates for info in compiled.players)
    table = np.zeros((len(policies), rows, compiled.num_actions))
    for j, policy in enumerate(policies):
        table[j, : policy.shape[0]] = policy
    return torch.as_tensor(table, dtype=torch.float32)


def play(episodes: TensorEpisodes, policies, seed: int = 1):
    """Play until finished, learner ``j`` following ``policies[j]``; return per job its terminals and returns."""
    compiled = episodes.compiled
    table = _learner_tables(compiled, policies).to(episodes.device)
    generator = torch.Generator(device=episodes.device).manual_seed(seed)
    jobs = torch.arange(episodes.num_jobs, device=episodes.device)[:, None]
    episodes.reset()
    collected = [(episodes.last_jobs, episodes.last_terminals, episodes.last_returns)]
    while not episodes.finished:
        probs = table[jobs, episodes.infostates.clamp(min=0)]
        actions = torch.multinomial(probs.reshape(-1, compiled.num_actions), 1, generator=generator)
        episodes.step(actions.view(episodes.num_jobs, episodes.num_envs))
        collected.append((episodes.last_jobs, episodes.last_terminals, episodes.last_returns))
    job_of, terminals, returns = (torch.cat(parts).cpu().numpy() for parts in zip(*collected))
    return [(terminals[job_of == j], returns[job_of == j]) for j in range(episodes.num_jobs)]


def _close(returns: np.ndarray, exact: float) -> bool:
    return abs(returns.mean() - exact) < 4 * returns.std() / np.sqrt(returns.size)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("game", [KUHN, LEDUC])
def test_mean_returns_of_mixed_jobs_match_the_exact_payoffs(game, device):
    """Jobs with both learners and populations of 1 and 3 members (padded) in one batch."""
    compiled = compile_game(game)
    rng = np.random.default_rng(3)
    learner_policies = [random_policy(compiled, p, rng) for p in (0, 1, 1)]
    populations = [random_policy(compiled, 1, rng)[None],
                   np.stack([random_deterministic_policy(compiled, 0, rng) for _ in range(3)]),
                   np.stack([random_policy(compiled, 0, rng) for _ in range(2)])]
    weights = [np.ones(1), np.array([0.5, 0.2, 0.3]), np.array([0.0, 1.0])]
    jobs = [EpisodeJob(p, pop, w, max_episodes=n)
            for p, pop, w, n in zip((0, 1, 1), populations, weights, (30_000, 25_000, 20_000))]
    episodes = TensorEpisodes(compiled, jobs, num_envs=1024, device=device, seed=11)
    results = play(episodes, learner_policies)
    assert episodes.episodes_completed.tolist() == episodes.episodes_started.tolist() == [30_000, 25_000, 20_000]
    for job, policy, (terminals, returns) in zip(jobs, learner_policies, results):
        assert returns.size == job.max_episodes
        np.testing.assert_array_equal(returns, compiled.returns[terminals, job.learner])
        values = [expected_payoff(compiled, *((policy, m) if job.learner == 0 else (m, policy)))[job.learner]
                  for m in job.opponent_population]
        assert _close(returns, float(np.dot(job.opponent_weights, values)))


@pytest.mark.parametrize("device", DEVICES)
def test_terminal_frequencies_match_the_exact_reach_probabilities(device):
    """Kuhn, learner 1 against a two-member mixture drawn once per episode (see
    test_simulation's test of the same name for why per-episode matters)."""
    compiled = compile_game(KUHN)
    rng = np.random.default_rng(5)
    population = np.stack([random_policy(compiled, 0, rng) for _ in range(2)])
    weights = np.array([0.3, 0.7])
    learner_policy = random_policy(compiled, 1, rng)
    jobs = [EpisodeJob(1, population, weights, max_episodes=100_000)] * 2
    episodes = TensorEpisodes(compiled, jobs, num_envs=2000, device=device, seed=2)
    mixed = mixture_plan(compiled, 0, population, weights)
    probs = exact_terminal_distribution(compiled, mixed, realization_plans(compiled, 1, learner_policy))
    for terminals, _ in play(episodes, [learner_policy] * 2):
        assert terminals.size == 100_000
        assert chi_square_p_value(terminals, probs) > P_VALUE


@pytest.mark.parametrize("device", DEVICES)
def test_leduc_terminal_frequencies(device):
    compiled = compile_game(LEDUC)
    rng = np.random.default_rng(8)
    learner_policy, opponent = random_policy(compiled, 0, rng), random_policy(compiled, 1, rng)
    episodes = TensorEpisodes(compiled, [EpisodeJob(0, opponent, max_episodes=100_000)], num_envs=4096,
                              device=device, seed=4)
    [(terminals, _)] = play(episodes, [learner_policy])
    probs = exact_terminal_distribution(
        compiled, realization_plans(compiled, 0, learner_policy), realization_plans(compiled, 1, opponent))
    order = np.argsort(probs)[::-1]  # group the 5,520 terminals into ~50 groups of ~2% each
    groups = np.zeros(compiled.num_histories, dtype=np.int64)
    groups[order] = np.minimum(np.cumsum(probs[order]) // 0.02, 49).astype(np.int64)
    assert chi_square_p_value(groups[terminals], np.bincount(groups, weights=probs)) > P_VALUE


@pytest.mark.parametrize("device", DEVICES)
def test_step_results_observations_and_counters(device):
    compiled = compile_game(LEDUC)
    jobs = [EpisodeJob(0, uniform_policy(compiled, 1), max_episodes=300),
            EpisodeJob(1, uniform_policy(compiled, 0), max_episodes=100), EpisodeJob(1, uniform_policy(compiled, 0))]
    episodes = TensorEpisodes(compiled, jobs, num_envs=64, device=device, seed=0)
    episodes.reset()
    learners = np.array([0, 1, 1])[:, None]
    done_total, steps = np.zeros(3, dtype=int), np.zeros(3, dtype=int)
    for _ in range(400):
        mask = episodes.legal_mask()
        actions = torch.multinomial(mask.reshape(-1, 3).float(), 1).view(3, 64)
        active_before = episodes.active.clone()
        result = episodes.step(actions)
        assert torch.equal(result.acted, active_before) and not (result.done & ~result.acted).any()
        done, terminals, rewards = (x.cpu().numpy() for x in (result.done, result.terminals, result.rewards))
        assert (compiled.node_player[terminals[done]] == TERMINAL).all() and (terminals[~done] == -1).all()
        np.testing.assert_array_equal(rewards[done], compiled.returns[terminals[done], np.broadcast_to(learners, done.shape)[done]])
        assert (rewards[~done] == 0).all()
        _check_learner_view(compiled, episodes, learners)
        assert episodes.last_completed.tolist() == done.sum(axis=1).tolist()  # poker: no learner-less episodes
        by_job = episodes.last_returns_by_job()
        for j in range(3):
            np.testing.assert_array_equal(np.sort(by_job[j]), np.sort(rewards[j][done[j]]))
        done_total += done.sum(axis=1)
        steps += result.acted.sum(dim=1).cpu().numpy()
    assert done_total[:2].tolist() == episodes.episodes_completed[:2].tolist() == [300, 100]
    assert episodes.jobs_finished.tolist() == [True, True, False] and not episodes.finished
    assert (done_total[2] == episodes.episodes_completed[2].item()) and episodes.learner_steps.tolist() == steps.tolist()


def _check_learner_view(compiled, episodes, learners) -> None:
    """Every active game waits at its learner's decision; infostates, observations and masks are that learner's."""
    history, active = episodes.history.cpu().numpy(), episodes.active.cpu().numpy()
    players = np.broadcast_to(learners, history.shape)
    assert (compiled.node_player[history[active]] == players[active]).all()
    infostates = episodes.infostates.cpu().numpy()
    assert (infostates[~active] == -1).all()
    np.testing.assert_array_equal(infostates[active], compiled.node_infostate[history[active]])
    obs, mask = episodes.observations().cpu().numpy(), episodes.legal_mask().cpu().numpy()
    for p in (0, 1):
        rows = active & (players == p)
        np.testing.assert_array_equal(obs[rows], compiled.players[p].tensors[infostates[rows]])
        np.testing.assert_array_equal(mask[rows], compiled.players[p].legal_mask[infostates[rows]])
    assert mask.any(axis=-1).all()  # inactive games too: a row with a legal action


@pytest.mark.parametrize("device", DEVICES)
def test_episodes_that_end_before_the_learner_acts_are_counted(device):
    compiled = _toy_game()
    job = EpisodeJob(1, np.array([[0.5, 0.5]]), max_episodes=40_000)
    episodes = TensorEpisodes(compiled, [job], num_envs=100, device=device, seed=0)
    [(terminals, returns)] = play(episodes, [np.array([[0.5, 0.5]])])
    assert terminals.size == episodes.episodes_completed.item() == 40_000
    assert episodes.learner_steps.item() == np.isin(terminals, [5, 6]).sum()
    counts = np.bincount(terminals, minlength=7)[[1, 3, 5, 6]]
    assert scipy.stats.chisquare(counts, 40_000 * np.array([0.3, 0.35, 0.175, 0.175])).pvalue > P_VALUE
    np.testing.assert_array_equal(returns, compiled.returns[terminals, 1])


def test_same_seed_same_episodes():
    compiled = compile_game(LEDUC)
    policy = random_policy(compiled, 0, np.random.default_rng(0))
    job = EpisodeJob(0, uniform_policy(compiled, 1), max_episodes=500)
    runs = [play(TensorEpisodes(compiled, [job, job], num_envs=32, seed=seed), [policy] * 2, seed=5)
            for seed in (123, 123, 124)]
    for (a, _), (b, _) in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0][0], runs[2][0][0])
    assert not np.array_equal(runs[0][0][0], runs[0][1][0])  # the two jobs draw different episodes


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("game", [KUHN, LEDUC])
def test_random_play_episode_rate_matches_the_exact_episode_length(game, device):
    """Uniformly random legal play, one decision per pass: decisions per episode average the exact expectation."""
    compiled = compile_game(game)
    num_envs, passes = 2048, 200
    play_ = RandomPlay(compiled, num_envs=num_envs, device=device, seed=0)
    assert (compiled.node_player[play_.histories.cpu().numpy()] >= 0).all()
    play_.run(passes)
    uniform = [realization_plans(compiled, p, uniform_policy(compiled, p)) for p in (0, 1)]
    probs = exact_terminal_distribution(compiled, *uniform)
    decisions = np.zeros(compiled.num_histories)  # decisions on the path to each history
    for h in range(1, compiled.num_histories):  # pre-order: parents first
        parent = compiled.parent[h]
        decisions[h] = decisions[parent] + (compiled.node_player[parent] >= 0)
    z = compiled.terminal_histories
    mean, variance = probs[z] @ decisions[z], probs[z] @ (decisions[z] - probs[z] @ decisions[z]) ** 2
    # Renewal: after n decisions per game, about n / mean episodes per game (+- 1 for the one under way).
    expected = num_envs * passes / mean
    spread = np.sqrt(num_envs * passes * variance / mean**3)
    assert abs(play_.episodes_completed - expected) < 4 * spread + num_envs


@pytest.mark.slow
def test_compiled_random_play_plays_the_same_episodes():
    """torch.compile of the passes (minutes on a busy CPU: slow) changes nothing but the speed."""
    compiled = compile_game(LEDUC)
    runs = [RandomPlay(compiled, num_envs=512, seed=3, compile=flag) for flag in (False, True)]
    for play_ in runs:
        play_.run(RandomPlay.BLOCK * 2 + 5)
    assert runs[0].episodes_completed == runs[1].episodes_completed > 0
    assert torch.equal(runs[0].state, runs[1].state)


def test_alias_tables_reproduce_the_distributions():
    rows = [[(4, 0.5), (6, 0.25), (9, 0.25)], [(1, 1.0)], [(3, 0.1), (5, 0.0), (7, 0.9)]]
    accept, codes = _alias_tables(rows)
    width = accept.shape[1]
    for r, row in enumerate(rows):
        implied = {}
        for k in range(width):
            for code, p in ((codes[r, k, 0], accept[r, k]), (codes[r, k, 1], 1 - accept[r, k])):
                implied[int(code)] = implied.get(int(code), 0.0) + p / width
        for code, p in row:
            assert implied.get(code, 0.0) == pytest.approx(p, abs=1e-12)


def test_invalid_arguments_are_refused_in_one_line():
    compiled = compile_game(KUHN)
    opponent = uniform_policy(compiled, 1)
    cases = [
        (InvalidPlayerError, "learner", lambda: TensorEpisodes(compiled, [EpisodeJob(2, opponent)])),
        (ConfigError, "num_envs", lambda: TensorEpisodes(compiled, [EpisodeJob(0, opponent)], num_envs=0)),
        (ConfigError, "max_episodes", lambda: TensorEpisodes(compiled, [EpisodeJob(0, opponent, max_episodes=-1)])),
        (ConfigError, "jobs", lambda: TensorEpisodes(compiled, [])),
        (InvalidMetaStrategyError, "opponent_weights", lambda: TensorEpisodes(compiled, [EpisodeJob(0, [opponent] * 2)])),
        (InvalidPolicyError, r"jobs\[1\] opponent population", lambda: TensorEpisodes(
            compiled, [EpisodeJob(0, opponent), EpisodeJob(0, np.ones((6, 3)) / 3)])),
        (ConfigError, "device", lambda: TensorEpisodes(compiled, [EpisodeJob(0, opponent)], device="nonsense")),
    ]
    for error, pattern, make in cases:
        with pytest.raises(error, match=pattern) as caught:
            make()
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("device", DEVICES)
def test_illegal_actions_are_refused_in_one_line(device):
    compiled = compile_game(LEDUC)
    jobs = [EpisodeJob(1, uniform_policy(compiled, 0)), EpisodeJob(0, uniform_policy(compiled, 1))]
    episodes = TensorEpisodes(compiled, jobs, num_envs=8, device=device, seed=0)
    episodes.reset()  # job 1's games at player 0's first decision, where folding (action 0) is illegal
    actions = torch.ones(2, 8, dtype=torch.int64)
    actions[1, 3] = 0
    pattern = r"illegal action 0 for job 1, game 3 \(learner 0\), .*legal actions there: \[1, 2\]"
    for bad, expected in ((actions, pattern), (torch.full((2, 8), 7), "illegal action 7 for job 0, game 0"),
                          (torch.ones(2, 7, dtype=torch.int64), "shape"), (torch.ones(2, 8), "integer")):
        with pytest.raises(FusionPSROError, match=expected) as caught:
            episodes.step(bad)
        assert "\n" not in str(caught.value)
    assert episodes.learner_steps.tolist() == [0, 0]


def test_observations_of_a_game_without_tensors_are_refused():
    toy = _toy_game()
    no_tensors = dataclasses.replace(toy, players=tuple(dataclasses.replace(p, tensors=None) for p in toy.players))
    episodes = TensorEpisodes(no_tensors, [EpisodeJob(1, np.array([[0.5, 0.5]]))], num_envs=2)
    episodes.reset()
    with pytest.raises(GameNotSupportedError, match="toy provides no information-state tensors"):
        episodes.observations()
