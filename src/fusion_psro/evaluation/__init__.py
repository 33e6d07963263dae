"""Exact evaluation: payoffs, payoff matrices, best responses, NashConv, exploitability."""

from fusion_psro.evaluation.exact import (
    ProfileEvaluation,
    best_response,
    evaluate_mixture,
    evaluate_plans,
    evaluate_profile,
    expected_payoff,
    exploitability,
    mixture_best_response,
    mixture_exploitability,
    mixture_nash_conv,
    mixture_plan,
    nash_conv,
    payoff_matrix,
)
from fusion_psro.evaluation.sequence_form import BestResponse, realization_plans, sequence_form

__all__ = [
    "BestResponse",
    "ProfileEvaluation",
    "best_response",
    "evaluate_mixture",
    "evaluate_plans",
    "evaluate_profile",
    "expected_payoff",
    "exploitability",
    "mixture_best_response",
    "mixture_exploitability",
    "mixture_nash_conv",
    "mixture_plan",
    "nash_conv",
    "payoff_matrix",
    "realization_plans",
    "sequence_form",
]
