"""The gradient oracle of the mixture game: Adam ascent on the 2-D point.

The oracle of Perez-Nieves et al. (2021) and the works after it: a policy is a point
``x``, its payoff against the opponent's meta-strategy mixture is
``u(x, sigma) = c . p(x) + const`` (exact, see :mod:`fusion_psro.games.mixture`), and
a best response is ``steps`` Adam steps (learning rate ``lr``) on ``x`` from the starting
point the initialization strategy chose: ``normal`` draws ``start_scale * N(0, I)``
(near the origin, as the prior code does), ``inherit`` copies the previous best
response, ``fusion`` takes the meta-Nash-weighted mean of the population's points.

With a :class:`~fusion_psro.oracles.diversity.DiversityTerm` the ascent maximizes
``payoff_weight * u(x, sigma) + weight * diversity(x)`` (``payoff_weight`` is 1 unless a
diversity schedule weighs both parts, :mod:`fusion_psro.psro.schedules`), ``diversity`` the term's differentiable form for
the mixture game (:meth:`~fusion_psro.oracles.diversity.DiversityMeasure.for_points`; DPP,
BD&RD or PSD, formulas in :mod:`fusion_psro.oracles.diversity`). The returned point is
where the ascent ends.

One "episode" of this oracle is one gradient step (one evaluation of the objective), so
that runs report work on the same axis as the learned oracles of the OpenSpiel games; a
checkpoint at budget ``b`` (``request.checkpoints``) is the point after ``b`` steps, read
off the ascent's path.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from fusion_psro import options
from fusion_psro.errors import OracleError
from fusion_psro.games.mixture import MixtureGame
from fusion_psro.registry import register_oracle
from fusion_psro.oracles.base import (
    BestResponseRequest,
    BestResponseResult,
    Oracle,
    OracleMetrics,
    StateDict,
)
from fusion_psro.oracles.diversity import DiversityTerm, measure_for
from fusion_psro.oracles.networks import check_steps

#: The only scratch scheme of a point: there are no layers to be orthogonal or fan-in scaled.
SCHEMES = ("normal",)


@dataclasses.dataclass(frozen=True)
class GradientConfig:
    """Hyperparameters of the gradient oracle.

    Attributes
    ----------
    steps:
        Adam steps per best response. The default, 50 at ``lr = 0.1``, lets the point
        travel from the origin to any hump (radius 2.87) and settle.
    lr:
        Adam learning rate (0.1, as in the prior code).
    start_scale:
        Standard deviation of the ``normal`` starting point around the origin.
    """

    steps: int = 50
    lr: float = 0.1
    start_scale: float = 0.1

    def __post_init__(self) -> None:
        check_steps(self.steps, "gradient oracle")
        options.positive_float(self.lr, "gradient oracle: lr")
        options.positive_float(self.start_scale, "gradient oracle: start_scale")


@dataclasses.dataclass
class GradientMetrics(OracleMetrics):
    """The gradient oracle's numbers for one best response.

    Attributes
    ----------
    player:
        The responding player.
    value:
        Exact payoff ``u(x, sigma)`` of the returned point against the opponent mixture
        (without the diversity term).
    steps:
        Adam steps taken.
    start:
        ``[x, y]``: where the ascent started.
    point:
        ``[x, y]``: where it ended (the best response).
    diversity:
        Unweighted diversity of the returned point; only for a diversity term of positive weight.
    """

    player: int
    value: float
    steps: int
    start: list[float]
    point: list[float]
    diversity: float | None = None


class GradientOracle(Oracle):
    """Best responses of the mixture game by Adam on the point; see the module docstring."""

    trains_parameters = True
    game_kinds = ("mixture",)
    optimizes_diversity = True
    weighs_payoff = True
    scratch_schemes = SCHEMES
    settings_class = GradientConfig
    takes_checkpoints = True
    budget_setting = "steps"

    def __init__(self, game: MixtureGame, config: GradientConfig | None = None):
        self.game = game
        self.config = config if config is not None else GradientConfig()

    @classmethod
    def start_point_scale(cls, settings: GradientConfig | None) -> float:
        """The ``start_scale`` setting: the populations' start points are drawn at the scale of its ``normal`` start."""
        return (settings if settings is not None else GradientConfig()).start_scale

    @classmethod
    def from_space(cls, space, settings: GradientConfig | None) -> GradientOracle:
        return cls(space.game, settings)

    def scratch_parameters(self, player: int, scheme: str, seed: int) -> StateDict:
        """``{"point": start_scale * N(0, I)}``, deterministic in ``seed``; only ``normal`` exists."""
        if scheme not in SCHEMES:
            raise OracleError(
                f"the gradient oracle's policy is a 2-D point; initialization {scheme!r} does not apply "
                f"(accepted: {', '.join(SCHEMES)}, inherit, fusion)"
            )
        point = self.config.start_scale * np.random.default_rng(int(seed)).standard_normal(2)
        return {"point": torch.tensor(point, dtype=torch.float64)}

    def _diversity(self, term: DiversityTerm | None):
        """The term as a function of the activation vector, or None when it does not apply (absent or weight 0)."""
        if term is None:
            return None
        measure = measure_for(term, "mixture", "gradient")
        own = np.asarray(term.own_population)
        if own.ndim != 2 or own.shape[1] != 2:
            raise OracleError(f"gradient oracle: own_population must be points [K, 2], got shape {own.shape}")
        return measure.for_points(self.game, term) if term.weight > 0 else None

    def _start(self, request: BestResponseRequest) -> np.ndarray:
        start = request.initial_parameters
        if start is None:
            start = self.scratch_parameters(request.player, "normal", request.seed)
        if set(start) != {"point"} or tuple(start["point"].shape) != (2,):
            raise OracleError(
                f"gradient oracle: initial_parameters must be {{'point': tensor of shape (2,)}}, got {list(start)}"
            )
        return start["point"].detach().to(torch.float64).numpy()

    def best_response(self, request: BestResponseRequest) -> BestResponseResult:
        """Adam ascent from the start point; checkpoints are read off the ascent's path afterwards."""
        cfg = self.config
        if request.player not in (0, 1):
            raise OracleError(f"player must be 0 or 1, got {request.player!r}")
        self.check_checkpoints(request, cfg.steps)
        start = self._start(request)
        term = request.diversity
        diversity = self._diversity(term)
        bonus = None if diversity is None else (lambda p: term.weight * diversity(p))
        response = self.game.gradient_best_response(
            request.opponent_population, request.opponent_meta_strategy, start=start,
            steps=cfg.steps, lr=cfg.lr, bonus=bonus, return_trajectory=bool(request.checkpoints),
            payoff_weight=1.0 if term is None else term.payoff_weight,
        )
        if request.on_progress is not None:
            request.on_progress(cfg.steps, cfg.steps)
        for budget in request.checkpoints:
            point = np.array(response.trajectory[budget])
            value = float(self.game.payoff_against_mixture(point[None], request.opponent_population,
                                                           request.opponent_meta_strategy)[0])
            request.on_checkpoint(budget, self._result(request.player, start, point, value, budget, diversity))
        return self._result(request.player, start, response.point, response.value, cfg.steps, diversity)

    def _result(self, player: int, start: np.ndarray, point: np.ndarray, value: float, steps: int,
                diversity) -> BestResponseResult:
        metrics = GradientMetrics(player=player, value=value, steps=steps, start=start.tolist(), point=point.tolist(),
                                  diversity=None if diversity is None else self._measured(diversity, point))
        return BestResponseResult(
            policy=point, parameters={"point": torch.as_tensor(point).clone()}, episodes=steps, metrics=metrics
        )

    def _measured(self, diversity, point: np.ndarray) -> float:
        with torch.no_grad():
            return float(diversity(self.game.torch_activations(torch.as_tensor(point))))


register_oracle("gradient", GradientOracle)

__all__ = ["SCHEMES", "GradientConfig", "GradientMetrics", "GradientOracle"]
