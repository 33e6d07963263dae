"""A population member: the policy the evaluation sees, and the parameters fusion averages."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

#: Parameters of a learned policy, by tensor name (a torch state dict).
StateDict = Mapping[str, Any]


@dataclasses.dataclass
class Member:
    """A population member: its tabular policy (or point) and, for learned oracles, its parameters.

    ``origin`` says where it came from (``"initial"``, ``"iteration 7"``).
    """

    policy: np.ndarray
    parameters: StateDict | None = None
    origin: str = ""


def stack_policies(members: list[Member]) -> np.ndarray:
    """``[K, ...]`` policies of ``members``, for oracle requests and diversity terms."""
    return np.stack([member.policy for member in members])


__all__ = ["Member", "StateDict", "stack_policies"]
