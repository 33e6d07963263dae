"""Exact evaluation: payoffs, payoff matrices, best responses, NashConv, exploitability,
behaviour strategies of mixtures and action values."""

from fusion_psro.evaluation.behaviour import ActionValues, action_values, mixture_behaviour, opponent_reach, play_kl
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
    "ActionValues",
    "BestResponse",
    "ProfileEvaluation",
    "action_values",
    "best_response",
    "evaluate_mixture",
    "evaluate_plans",
    "evaluate_profile",
    "expected_payoff",
    "exploitability",
    "mixture_behaviour",
    "mixture_best_response",
    "mixture_exploitability",
    "mixture_nash_conv",
    "mixture_plan",
    "nash_conv",
    "opponent_reach",
    "payoff_matrix",
    "play_kl",
    "realization_plans",
    "sequence_form",
]
