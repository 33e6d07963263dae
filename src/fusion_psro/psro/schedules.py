"""How a diversity variant weighs payoff against diversity from one iteration to the next.

A schedule maps the PSRO iteration ``t`` (1 for the first) to a pair ``(a_t, b_t)``; the
best response of iteration ``t`` then ascends

    a_t * payoff + b_t * W * diversity

with ``W`` the run's ``diversity_weight`` (the scale of the term; when the run sets none,
the attribute of the term's :class:`~fusion_psro.oracles.diversity.DiversityMeasure` that the
schedule names). Built-in schedules (``PSROConfig.diversity_schedule``):

``constant``
    ``(1, 1)``: ``payoff + W * diversity`` at every iteration; ``W`` defaults to the term's
    ``default_weight``.
``prior-code``
    ``(lambda_i, 1 - lambda_i)`` with ``i = t - 1`` and
    ``lambda_i = 1 - 0.7 / (1 + exp(-0.25 (i - 25)))``: the objective
    ``lambda_i * payoff + (1 - lambda_i) * W * diversity`` of the mixture-game code of
    DPP-PSRO and PSD-PSRO (whose loop counts iterations from 0). The payoff weight falls
    from 0.9987 at i = 0 through 0.65 at i = 25 to 0.30 at i = 50. Divided by
    ``lambda_i`` it is the constant form ``payoff + w_i * diversity`` with the growing
    weight ``w_i = W (1 - lambda_i) / lambda_i`` (0.0013 W, 0.54 W, 2.3 W): the same
    ascent direction at every point, only the objective's scale differs. Adam, the
    mixture game's oracle, divides that scale out of its steps up to its epsilon, so the
    two forms give nearly the same path; the schedule keeps the prior code's form exactly.
    ``W`` defaults to the term's ``prior_code_weight``, the scale the prior code gives it.

Variants without a diversity term ascend the payoff alone under every schedule (the prior
code multiplies their payoff by ``lambda_i`` too, which changes the scale only).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable


def constant_schedule(iteration: int) -> tuple[float, float]:
    """``(1, 1)``: the diversity weight is the same at every iteration."""
    return 1.0, 1.0


def prior_code_payoff_weight(i: int) -> float:
    """``lambda_i = 1 - 0.7 / (1 + exp(-0.25 (i - 25)))``, ``i`` counted from 0."""
    return 1.0 - 0.7 / (1.0 + math.exp(-0.25 * (i - 25)))


def prior_code_schedule(iteration: int) -> tuple[float, float]:
    """``(lambda_i, 1 - lambda_i)`` with ``i = iteration - 1`` (the prior code counts from 0)."""
    weight = prior_code_payoff_weight(iteration - 1)
    return weight, 1.0 - weight


@dataclasses.dataclass(frozen=True)
class DiversitySchedule:
    """A schedule: its factors per iteration, and where the term's default scale comes from."""

    #: ``iteration -> (payoff factor a_t, diversity factor b_t)``, iterations counted from 1.
    factors: Callable[[int], tuple[float, float]]
    #: The attribute of a diversity measure that is ``W`` when the run sets no diversity weight.
    default_weight: str = "default_weight"

    @property
    def weighs_payoff(self) -> bool:
        """Whether some iteration's payoff factor differs from 1 (the oracle must then apply it)."""
        return self.factors is not constant_schedule


#: Schedule name -> :class:`DiversitySchedule`.
DIVERSITY_SCHEDULES: dict[str, DiversitySchedule] = {
    "constant": DiversitySchedule(constant_schedule),
    "prior-code": DiversitySchedule(prior_code_schedule, default_weight="prior_code_weight"),
}

__all__ = ["DIVERSITY_SCHEDULES", "DiversitySchedule", "constant_schedule", "prior_code_payoff_weight",
           "prior_code_schedule"]
