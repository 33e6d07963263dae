"""Meta-solvers for two-player zero-sum PSRO meta-games.

``solver(M) -> MetaSolution`` maps player 0's payoff matrix ``M`` (K x L) to
meta-strategies ``(sigma0, sigma1)``::

    from fusion_psro.meta import get_meta_solver
    sol = get_meta_solver("nash")(M)
    sigma0, sigma1 = sol.strategies
"""

from fusion_psro.meta.solvers import (
    META_SOLVERS,
    InvalidMetaGameError,
    InvalidMetaSolverError,
    MetaSolution,
    MetaSolver,
    get_meta_solver,
    meta_exploitability,
    meta_nash_conv,
    solve_nash,
    solve_prd,
    solve_regret_matching,
    solve_uniform,
)

__all__ = [
    "META_SOLVERS",
    "InvalidMetaGameError",
    "InvalidMetaSolverError",
    "MetaSolution",
    "MetaSolver",
    "get_meta_solver",
    "meta_exploitability",
    "meta_nash_conv",
    "solve_nash",
    "solve_prd",
    "solve_regret_matching",
    "solve_uniform",
]
