"""Best-response initializations: scratch, inherit, and Nash Policy Fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, Oracle
from fusion_psro.errors import ConfigError
from fusion_psro.psro.initialization import FusionError, StartContext, fuse_parameters
from fusion_psro.registry import INITS


def _net_params(seed: int, hidden: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


class RecordingOracle(Oracle):
    """Scratch parameters tagged with the scheme, so tests can see which was used."""

    name = "recording"
    trains_parameters = True

    def best_response(self, request: BestResponseRequest) -> BestResponseResult:  # pragma: no cover
        raise AssertionError("not called in these tests")

    def scratch_parameters(self, player, scheme, seed):
        params = _net_params(seed)
        params["scheme_tag"] = torch.tensor(["normal", "orthogonal", "kaiming"].index(scheme))
        return params


def test_one_hot_weights_reproduce_the_member_exactly():
    members = [_net_params(s) for s in range(4)]
    fused = fuse_parameters(members, [0.0, 0.0, 1.0, 0.0])
    for name, tensor in members[2].items():
        assert torch.equal(fused[name], tensor)


def test_uniform_weights_give_the_plain_average():
    members = [_net_params(s) for s in range(3)]
    fused = fuse_parameters(members, [1 / 3] * 3)
    for name in members[0]:
        expected = (members[0][name] + members[1][name] + members[2][name]) / 3
        torch.testing.assert_close(fused[name], expected, rtol=0, atol=1e-6)


def test_zero_weight_members_do_not_count_even_if_malformed():
    members = [_net_params(0), _net_params(1, hidden=7)]  # the second has another shape
    fused = fuse_parameters(members, [1.0, 0.0])
    assert all(torch.equal(fused[k], members[0][k]) for k in members[0])


def test_fusing_different_architectures_is_a_clear_error():
    with pytest.raises(FusionError, match=r"tensor '0.weight' has shape \(4, 3\) in one and \(7, 3\)"):
        fuse_parameters([_net_params(0), _net_params(1, hidden=7)], [0.5, 0.5])
    renamed = {f"x{k}": v for k, v in _net_params(1).items()}
    with pytest.raises(FusionError, match="different tensors"):
        fuse_parameters([_net_params(0), renamed], [0.5, 0.5])
    with pytest.raises(FusionError, match="probability vector"):
        fuse_parameters([_net_params(0), _net_params(1)], [0.7, 0.7])


def _choose(strategy, *, iteration=3, fusion_start=1, population=None, weights=None, previous=None, fallback="normal"):
    population = population if population is not None else [None, _net_params(1), _net_params(2)]
    weights = weights if weights is not None else np.array([0.5, 0.25, 0.25])
    return INITS.get(strategy).choose(StartContext(
        oracle=RecordingOracle(), player=0, iteration=iteration,
        population_parameters=population, meta_strategy=weights, previous_parameters=previous,
        fusion_start=fusion_start, fusion_fallback=fallback, seed=11,
    ))


@pytest.mark.parametrize("scheme", ["normal", "orthogonal", "kaiming"])
def test_scratch_schemes_come_from_the_oracle(scheme):
    choice = _choose(scheme)
    assert choice.strategy == scheme
    assert int(choice.parameters["scheme_tag"]) == ["normal", "orthogonal", "kaiming"].index(scheme)


def test_inherit_copies_the_previous_best_response():
    previous = _net_params(5)
    choice = _choose("inherit", previous=previous)
    assert choice.strategy == "inherit"
    assert all(torch.equal(choice.parameters[k], previous[k]) for k in previous)
    assert choice.parameters["0.weight"] is not previous["0.weight"]  # a copy, not an alias
    assert _choose("inherit", previous=None).strategy == "normal"  # nothing to inherit yet


def test_fusion_renormalizes_over_members_with_parameters():
    population = [None, _net_params(1), _net_params(2)]
    choice = _choose("fusion", population=population, weights=np.array([0.5, 0.375, 0.125]))
    assert choice.strategy == "fusion"
    assert choice.fusion_seconds > 0
    expected = 0.75 * population[1]["0.weight"] + 0.25 * population[2]["0.weight"]
    torch.testing.assert_close(choice.parameters["0.weight"], expected, rtol=0, atol=1e-6)


def test_fusion_waits_for_its_start_iteration_and_falls_back():
    assert _choose("fusion", iteration=2, fusion_start=3, fallback="orthogonal").strategy == "orthogonal"
    assert _choose("fusion", iteration=3, fusion_start=3).strategy == "fusion"
    # Only the parameter-less uniform member has weight: nothing to fuse.
    assert _choose("fusion", weights=np.array([1.0, 0.0, 0.0])).strategy == "normal"


def test_unknown_strategy():
    with pytest.raises(ValueError, match="accepted: normal, orthogonal, kaiming, inherit, fusion"):
        _choose("xavier")


# ---------------------------------------------------------------- fusion's variants, with a real network


@pytest.fixture(scope="module")
def leduc_dqn():
    from fusion_psro.games import compile_game
    from fusion_psro.oracles import DQNConfig, DQNOracle

    return DQNOracle(compile_game("leduc_poker"), DQNConfig(hidden_sizes=(16, 16)))


def _context(oracle, population, weights, **changes):
    from fusion_psro.psro.initialization import StartContext

    settings = dict(oracle=oracle, player=0, iteration=3, seed=5, population_parameters=population,
                    meta_strategy=np.asarray(weights))
    return StartContext(**{**settings, **changes})


def test_shrink_perturb_is_the_convex_combination_of_fused_and_fresh(leduc_dqn):
    from fusion_psro.psro.initialization import ShrinkPerturbSettings
    from fusion_psro.registry import INITS

    members = [None] + [leduc_dqn.scratch_parameters(0, "normal", s) for s in (1, 2)]
    context = _context(leduc_dqn, members, [0.2, 0.3, 0.5], settings=ShrinkPerturbSettings(shrink=0.25))
    choice = INITS.get("shrink-perturb").choose(context)
    fused = fuse_parameters(members[1:], [0.375, 0.625])
    fresh = leduc_dqn.scratch_parameters(0, "normal", 5)
    assert choice.strategy == "shrink-perturb" and choice.fusion_seconds > 0
    for name in fused:
        torch.testing.assert_close(choice.parameters[name], 0.25 * fused[name] + 0.75 * fresh[name], rtol=0, atol=1e-6)
    # Nothing to fuse yet: the fallback, as for fusion.
    assert INITS.get("shrink-perturb").choose(_context(leduc_dqn, members, [1.0, 0, 0])).strategy == "normal"
    with pytest.raises(ConfigError, match=r"shrink must be a number in \[0, 1\]"):
        INITS.get("shrink-perturb").settings({"shrink": 1.5})


def test_reset_output_keeps_the_fused_hidden_layers_and_draws_a_new_head(leduc_dqn):
    from fusion_psro.registry import INITS

    members = [leduc_dqn.scratch_parameters(0, "normal", s) for s in (1, 2)]
    choice = INITS.get("fusion-reset-output").choose(_context(leduc_dqn, members, [0.5, 0.5]))
    fused, fresh = fuse_parameters(members, [0.5, 0.5]), leduc_dqn.scratch_parameters(0, "normal", 5)
    assert leduc_dqn.output_layer_names(0) == ("layers.2.bias", "layers.2.weight")
    for name in fused:
        expected = fresh[name] if name.startswith("layers.2.") else fused[name]
        assert torch.equal(choice.parameters[name], expected), name


def test_nash_distill_fits_the_mixture(leduc_dqn):
    """The distilled Q-network's values are the mixture's exact action values (to the fit's accuracy)."""
    from fusion_psro.evaluation import action_values, mixture_behaviour, mixture_plan
    from fusion_psro.oracles import DQNConfig, DQNOracle
    from fusion_psro.psro.initialization import DistillSettings
    from fusion_psro.policies import random_policy, uniform_policy
    from fusion_psro.registry import INITS

    compiled = leduc_dqn.compiled
    leduc_dqn = DQNOracle(compiled, DQNConfig(hidden_sizes=(64, 64)))
    rng = np.random.default_rng(0)
    own = np.stack([uniform_policy(compiled, 0), random_policy(compiled, 0, rng)])
    opponents = np.stack([random_policy(compiled, 1, rng)])
    context = _context(leduc_dqn, [None, None], [0.4, 0.6], population_policies=list(own), opponent_policies=opponents,
                       opponent_weights=np.ones(1), settings=DistillSettings(steps=500, learning_rate=3e-3))
    choice = INITS.get("nash-distill").choose(context)
    assert choice.strategy == "nash-distill"
    values = action_values(compiled, 0, mixture_behaviour(compiled, 0, own, [0.4, 0.6]),
                           mixture_plan(compiled, 1, opponents, np.ones(1)))
    network = leduc_dqn.network(0, choice.parameters)
    with torch.no_grad():
        q = network(torch.from_numpy(compiled.players[0].tensors)).double().numpy()
    fitted = compiled.players[0].legal_mask & (values.reach > 0)[:, None]
    fresh = leduc_dqn.network(0, leduc_dqn.scratch_parameters(0, "normal", 5))
    with torch.no_grad():
        q0 = fresh(torch.from_numpy(compiled.players[0].tensors)).double().numpy()
    before, after = np.abs(q0 - values.q)[fitted].mean(), np.abs(q - values.q)[fitted].mean()
    assert after < 0.1 * before, (before, after)


def test_kaiming_is_its_own_draw_not_normal_scaled(leduc_dqn):
    normal = leduc_dqn.scratch_parameters(0, "normal", 7)
    kaiming = leduc_dqn.scratch_parameters(0, "kaiming", 7)
    ratio = kaiming["layers.0.weight"] / normal["layers.0.weight"]
    assert not torch.allclose(ratio, torch.full_like(ratio, 2 ** 0.5))
    assert torch.equal(kaiming["layers.0.weight"], leduc_dqn.scratch_parameters(0, "kaiming", 7)["layers.0.weight"])
    # He normal on the hidden layers: variance 2 / fan_in.
    assert float(kaiming["layers.1.weight"].var() * 16) == pytest.approx(2.0, rel=0.35)
