"""The episode interface (:mod:`fusion_psro.games.episodes`): both backends implement it and step alike."""

from __future__ import annotations

import numpy as np

from fusion_psro.games import compile_game
from fusion_psro.games.episodes import EpisodeSource, StepResult
from fusion_psro.games.sampled import SampledEpisodes, load_sampled_game, random_legal_actions
from fusion_psro.games.simulation import VectorizedEpisodes
from fusion_psro.policies import uniform_policy


class _UniformSeat:
    weights = np.ones(1)

    def act(self, members, ids, table, uniforms):
        return random_legal_actions(table.legal_mask[ids], uniforms)


def _play(episodes: EpisodeSource, legal_mask) -> list[StepResult]:
    """Every episode with the lowest legal action, through the protocol alone."""
    results = []
    episodes.reset()
    while not episodes.finished:
        ids = episodes.infostates
        actions = np.argmax(legal_mask()[np.maximum(ids, 0)], axis=1)
        results.append(episodes.step(actions))
    return results


def test_both_backends_are_episode_sources_with_one_step_result():
    kuhn = compile_game("kuhn_poker")
    compiled = VectorizedEpisodes(kuhn, 0, uniform_policy(kuhn, 1)[None], np.ones(1), num_envs=8, seed=0,
                                  max_episodes=40)
    sampled = SampledEpisodes(load_sampled_game("kuhn_poker"), (None, _UniformSeat()), learner=0, num_envs=8,
                              seed=0, max_episodes=40)
    for episodes, legal in ((compiled, lambda: kuhn.players[0].legal_mask), (sampled, lambda: sampled.table.legal_mask)):
        assert isinstance(episodes, EpisodeSource)
        results = _play(episodes, legal)
        assert all(type(r) is StepResult for r in results)
        assert sum(int(r.done.sum()) for r in results) == episodes.episodes_completed == 40
        assert episodes.learner_steps == sum(int(r.acted.sum()) for r in results)
    assert all(r.terminals is not None and (r.terminals[r.done] >= 0).all() for r in _play(compiled, lambda: kuhn.players[0].legal_mask))
    assert all(r.terminals is None for r in _play(sampled, lambda: sampled.table.legal_mask))
