"""Where a new best-response network starts: scratch, inherited, or Nash Policy Fusion.

Each strategy is an :class:`Initialization` registered by name in
:data:`fusion_psro.registry.INITS` (``--init``); it declares which oracles it applies to
(:meth:`Initialization.unsupported_by`) and whether it can stand in for fusion before
``fusion_start`` (:attr:`Initialization.fallback`). The built-in ones:

* ``normal``, ``orthogonal``, ``kaiming``: fresh weights from that scheme (the oracle
  defines the exact distributions, see :meth:`fusion_psro.oracles.base.Oracle.scratch_parameters`).
* ``inherit``: a copy of the player's previous best response ("Inherited-BR").
* ``fusion``: Nash Policy Fusion (Lian, Huang et al., *Fusion-PSRO*, ECAI 2025): the
  meta-Nash-weighted average of the parameters of the player's own population,
  ``theta_new = sum_k sigma(k) theta_k``, every tensor of the network. The oracle copies
  it into its target network and starts a fresh optimizer. Fusion starts at iteration
  ``fusion_start``; before it, and whenever no member with positive weight has
  parameters, the ``fusion_fallback`` strategy is used.

Members without parameters (the uniform policy that seeds every population) take no part
in fusion: the weights of the members that have parameters are renormalized. With the
exact oracle there is nothing to initialize and any ``--init`` is an error.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fusion_psro.errors import FusionPSROError
from fusion_psro.psro.population import StateDict
from fusion_psro.registry import INITS, register_init

if TYPE_CHECKING:
    import torch

class FusionError(FusionPSROError, ValueError):
    """Parameters that cannot be fused (different architectures, bad weights)."""


def fuse_parameters(parameters: Sequence[StateDict], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Weighted average of state dicts: ``sum_k weights[k] * parameters[k]``, tensor by tensor.

    Members with zero weight are skipped. Every member must have the same tensor names and
    shapes; a mismatch is a :class:`FusionError` naming the tensor and the members.
    Floating-point tensors are averaged in float64 and cast back to their dtype; other
    tensors (integer buffers such as step counters) are copied from the heaviest member.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if len(parameters) != weights.shape[0] or weights.ndim != 1:
        raise FusionError(f"got {len(parameters)} parameter sets but weights of shape {weights.shape}")
    if len(parameters) == 0:
        raise FusionError("nothing to fuse: the population has no members with parameters")
    if not np.isfinite(weights).all() or (weights < 0).any() or abs(weights.sum() - 1.0) > 1e-6:
        raise FusionError(f"fusion weights must be a probability vector, got {weights.tolist()}")
    members = [k for k in range(len(parameters)) if weights[k] > 0]
    reference_index = members[int(np.argmax(weights[members]))]
    reference = parameters[reference_index]
    for k in members:
        if set(parameters[k]) != set(reference):
            raise FusionError(
                f"cannot fuse members {reference_index} and {k}: their networks have different tensors "
                f"({sorted(set(parameters[k]) ^ set(reference))}); fusion needs one architecture per population"
            )
        for name, tensor in parameters[k].items():
            if tensor.shape != reference[name].shape:
                raise FusionError(
                    f"cannot fuse members {reference_index} and {k}: tensor {name!r} has shape "
                    f"{tuple(reference[name].shape)} in one and {tuple(tensor.shape)} in the other; "
                    "fusion needs one architecture per population"
                )
    import torch  # noqa: PLC0415 (reading runs does not load PyTorch)

    member_weights = torch.tensor(weights[members], dtype=torch.float64)
    fused = {}
    # One thread: these are small memory-bound sums, and torch's default thread pool was
    # measured 100x slower (1.5 s instead of 17 ms for 15 Leduc networks) on busy cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, tensor in reference.items():
            if tensor.is_floating_point():
                stacked = torch.stack([parameters[k][name].detach().to(torch.float64) for k in members])
                fused[name] = torch.tensordot(member_weights, stacked, dims=1).to(tensor.dtype)
            else:
                fused[name] = tensor.detach().clone()
    finally:
        torch.set_num_threads(threads)
    return fused


@dataclasses.dataclass(frozen=True)
class InitializationChoice:
    """The parameters a new best response starts from, and how they were chosen."""

    parameters: StateDict | None
    strategy: str
    fusion_seconds: float = 0.0


@dataclasses.dataclass(frozen=True, eq=False)
class StartContext:
    """What an initialization may look at to choose a new best response's parameters.

    Attributes
    ----------
    oracle:
        The oracle that will train from them (its ``scratch_parameters`` draw fresh ones).
    player, iteration, seed:
        Whose response, at which PSRO iteration (the first is 1), and the seed of its draws.
    population_parameters:
        Parameters of each member of the player's own population (None for members without).
    meta_strategy:
        The player's meta-strategy over that population (the fusion weights).
    previous_parameters:
        Parameters of the player's previous best response (``inherit``), or None.
    fusion_start, fusion_fallback:
        First iteration that fuses, and the strategy used before it.
    """

    oracle: Any
    player: int
    iteration: int
    seed: int
    population_parameters: Sequence[StateDict | None] = ()
    meta_strategy: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    previous_parameters: StateDict | None = None
    fusion_start: int = 1
    fusion_fallback: str = "normal"


class Initialization(abc.ABC):
    """A way to choose where a new best response starts; register it with :func:`fusion_psro.register_init`."""

    #: Registered name (set when registered).
    name: str = ""
    #: Whether it can stand in for fusion before ``fusion_start`` (it needs no population).
    fallback: bool = False

    def unsupported_by(self, oracle_class: type) -> str | None:
        """Why it cannot start ``oracle_class``'s best responses, or None if it can."""
        return None

    @abc.abstractmethod
    def choose(self, context: StartContext) -> InitializationChoice:
        """The starting parameters for the best response ``context`` describes."""


class ScratchInit(Initialization):
    """Fresh parameters from one of the oracle's scratch schemes."""

    fallback = True

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    def unsupported_by(self, oracle_class: type) -> str | None:
        if self.scheme not in oracle_class.scratch_schemes:
            return f"its scratch schemes are: {', '.join(oracle_class.scratch_schemes) or 'none'}"
        return None

    def choose(self, context: StartContext) -> InitializationChoice:
        parameters = context.oracle.scratch_parameters(context.player, self.scheme, context.seed)
        return InitializationChoice(parameters, self.scheme)


class InheritInit(Initialization):
    """A copy of the player's previous best response ("Inherited-BR"); the first one starts from ``normal``."""

    fallback = True

    def choose(self, context: StartContext) -> InitializationChoice:
        if context.previous_parameters is None:  # the first best response has nobody to inherit from
            return INITS.get("normal").choose(context)
        copied = {k: v.detach().clone() for k, v in context.previous_parameters.items()}
        return InitializationChoice(copied, "inherit")


class FusionInit(Initialization):
    """Nash Policy Fusion: the meta-Nash-weighted average of the population's parameters."""

    def choose(self, context: StartContext) -> InitializationChoice:
        fused = fused_population(context)
        if fused is None:
            return INITS.get(context.fusion_fallback).choose(dataclasses.replace(context, fusion_fallback="normal"))
        return fused


def fused_population(context: StartContext) -> InitializationChoice | None:
    """The fused start of ``context``, or None before ``fusion_start`` or with nothing to fuse.

    Members without parameters take no part; the weights of the others are renormalized.
    """
    has_parameters = [k for k, p in enumerate(context.population_parameters) if p is not None]
    weights = np.asarray(context.meta_strategy, dtype=np.float64)[has_parameters] if has_parameters else np.zeros(0)
    if context.iteration < context.fusion_start or weights.sum() <= 0:
        return None
    started = time.perf_counter()
    fused = fuse_parameters([context.population_parameters[k] for k in has_parameters], weights / weights.sum())
    return InitializationChoice(fused, "fusion", time.perf_counter() - started)


for _scheme in ("normal", "orthogonal", "kaiming"):
    register_init(_scheme, ScratchInit(_scheme))
register_init("inherit", InheritInit())
register_init("fusion", FusionInit())


def initial_parameters(*, strategy: str, **context: Any) -> InitializationChoice:
    """Choose a new best response's starting parameters with the registered ``strategy``.

    ``context`` holds the fields of :class:`StartContext` (``oracle``, ``player``,
    ``iteration``, ``seed``, ``population_parameters``, ``meta_strategy``,
    ``previous_parameters``, ``fusion_start``, ``fusion_fallback``).
    """
    return INITS.get(strategy).choose(StartContext(**context))
