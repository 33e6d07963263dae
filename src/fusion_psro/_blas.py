"""Run the engine's small dense products on one BLAS thread.

The engine's matrix products are small (tens of columns). Multi-threaded OpenBLAS spins
its threads on every call and, on a machine whose cores are busy with anything else (a
test runner, a PyTorch learner, Ray workers), one 50 x 1,400 x 50 product was measured
at 50 ms instead of 0.5 ms. The limit is set only for the duration of a call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from threadpoolctl import ThreadpoolController

F = TypeVar("F", bound=Callable)


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_threaded_blas(function: F) -> F:
    """Decorator: run ``function`` with BLAS limited to one thread."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with _controller().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
