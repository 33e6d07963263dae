"""Networks shared by the neural oracles: a ReLU MLP over information-state tensors,
its initialization schemes, and the torch settings every oracle applies (device, threads,
optimizer).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fusion_psro import options
from fusion_psro.errors import ConfigError

#: Scratch initialization schemes of :func:`initialize`.
SCHEMES = ("normal", "orthogonal", "kaiming")


#: Most gradient steps of one best response: more would train for weeks.
MAX_STEPS = 10 ** 7
#: Copies of a network's float32 parameters that training holds at once: the weights, their
#: gradients, Adam's two moments, a target network (DQN) and the copy kept in the population.
TRAINING_COPIES = 6


def check_steps(steps: object, owner: str) -> None:
    """:class:`ConfigError` unless ``steps`` is an integer from 1 to :data:`MAX_STEPS`."""
    options.positive_int(steps, f"{owner}: steps")
    if steps > MAX_STEPS:
        raise ConfigError(f"{owner}: steps must be at most {MAX_STEPS:,}, got {steps:,}: one best response of that "
                          "many gradient steps would train for weeks")


def parameter_count(input_size: int, hidden_sizes: tuple[int, ...], num_actions: int) -> int:
    """Weights and biases of an :class:`MLP` with these sizes."""
    sizes = (int(input_size), *(int(h) for h in hidden_sizes), int(num_actions))
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def check_network_size(input_size: int, hidden_sizes: tuple[int, ...], num_actions: int, owner: str) -> None:
    """:class:`ConfigError`, before anything is allocated, when training such a network would not
    fit in the memory available (an estimate: :data:`TRAINING_COPIES` float32 copies of its parameters)."""
    count = parameter_count(input_size, hidden_sizes, num_actions)
    needed, available = 4 * TRAINING_COPIES * count, available_memory()
    if available is not None and needed > available:
        raise ConfigError(
            f"{owner}: hidden_sizes {list(hidden_sizes)} make a network of {count:,} parameters; training it needs "
            f"about {_bytes(needed)} (an estimate: {TRAINING_COPIES} float32 copies of the parameters for the "
            f"weights, gradients, optimizer state and the copies kept) and {_bytes(available)} of memory is "
            "available. Use smaller hidden_sizes, e.g. [256,256,256]"
        )


def _bytes(count: int) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{count:,} bytes"


class MLP(nn.Module):
    """ReLU MLP: information-state tensor -> one output per distinct action (Q-values or logits).

    Parameters are named ``layers.{k}.weight`` / ``layers.{k}.bias``.
    """

    def __init__(self, input_size: int, hidden_sizes: tuple[int, ...], num_actions: int) -> None:
        super().__init__()
        check_network_size(input_size, hidden_sizes, num_actions, "MLP")
        sizes = (input_size, *hidden_sizes, num_actions)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


def initialize(network: MLP, scheme: str, seed: int) -> None:
    """Initialize ``network`` in place from ``seed``; biases are zero under every scheme.

    * ``"normal"``: every weight ~ N(0, 1 / fan_in) (LeCun normal).
    * ``"orthogonal"``: :func:`torch.nn.init.orthogonal_` with gain sqrt(2) (ReLU) on
      the hidden layers and gain 1 on the output layer.
    * ``"kaiming"``: He normal, N(0, 2 / fan_in) on the hidden layers
      (:func:`torch.nn.init.kaiming_normal_`, fan-in, ReLU) and N(0, 1 / fan_in) on the
      output layer, from a random stream of its own. Drawn from normal's stream it would
      be normal's network with every hidden weight times sqrt(2): with zero biases a ReLU
      network is positively homogeneous, so its outputs would be normal's times
      2^(hidden layers / 2) and its greedy policy normal's, not a different start.

    The draws come from a private :class:`torch.Generator`; the global RNG is untouched.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown initialization scheme {scheme!r}; accepted: {', '.join(SCHEMES)}")
    stream = int(seed) if scheme != "kaiming" else int(np.random.SeedSequence([int(seed), 2]).generate_state(1)[0])
    generator = torch.Generator().manual_seed(stream)
    last = len(network.layers) - 1
    with torch.no_grad():
        for k, layer in enumerate(network.layers):
            hidden = k < last
            if scheme == "normal":
                nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(layer.in_features), generator=generator)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(layer.weight, gain=math.sqrt(2.0) if hidden else 1.0, generator=generator)
            else:
                nn.init.kaiming_normal_(
                    layer.weight, mode="fan_in", nonlinearity="relu" if hidden else "linear", generator=generator
                )
            nn.init.zeros_(layer.bias)


def fresh_parameters(network: MLP, scheme: str, seed: int) -> dict[str, torch.Tensor]:
    """Parameters of ``network`` drawn by ``scheme`` from ``seed`` (:func:`initialize`), as CPU copies."""
    initialize(network, scheme, seed)
    return {name: value.detach().clone() for name, value in network.state_dict().items()}


def output_layer_names(parameters) -> tuple[str, ...]:
    """Names of the output layer's tensors in an :class:`MLP` state dict (``layers.{last}.*``)."""
    layers = [int(name.split(".")[1]) for name in parameters if name.startswith("layers.")]
    if not layers:
        raise ConfigError(f"parameters {sorted(parameters)[:4]} are not an MLP's; they have no output layer")
    return tuple(sorted(name for name in parameters if name.startswith(f"layers.{max(layers)}.")))


def fit_network(network: MLP, observations: np.ndarray, loss, *, steps: int, learning_rate: float) -> dict:
    """``network`` after ``steps`` full-batch Adam steps on ``loss(outputs over all observations)``; its parameters."""
    inputs = torch.from_numpy(observations)
    optimizer = adam(network, learning_rate)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss(network(inputs)).backward()
        optimizer.step()
    return {name: value.detach().clone() for name, value in network.state_dict().items()}


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


#: Device types a ``device`` setting may name (besides ``"auto"``).
DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(device: object, owner: str) -> None:
    """:class:`ConfigError` unless ``device`` is ``"auto"`` or a device this machine has.

    ``owner`` names the setting's oracle in the message (``"DQNConfig"``, ``"pg oracle"``).
    """
    accepted = "'auto' or a torch device this machine has: 'cpu', or 'cuda' / 'cuda:0' where CUDA is present"
    if device == "auto":
        return
    if not isinstance(device, str):
        raise ConfigError(f"{owner}: device must be {accepted}; got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in DEVICE_TYPES:
        raise ConfigError(f"{owner}: device must be {accepted}; got {device!r}")
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"{owner}: device {device!r} needs CUDA, which this machine (or this PyTorch build) "
                              "does not have; use device=auto or device=cpu")
        if parsed.index is not None and parsed.index >= count:
            raise ConfigError(f"{owner}: device {device!r} does not exist; this machine has CUDA devices "
                              f"cuda:0..cuda:{count - 1}")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{owner}: device {device!r} is not available here; use device=auto or device=cpu")


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    wanted = threads if threads is not None else available_cpus()
    if wanted != previous:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def greedy_policy(network: nn.Module, observations: torch.Tensor, legal_mask: torch.Tensor) -> np.ndarray:
    """One-hot ``float64[I, A]`` greedy policy over the legal actions (ties: lowest action)."""
    with torch.no_grad():
        q = network(observations).masked_fill(~legal_mask, -torch.inf)
        best = q.argmax(dim=1).cpu().numpy()
    policy = np.zeros(tuple(legal_mask.shape), dtype=np.float64)
    policy[np.arange(policy.shape[0]), best] = 1.0
    return policy


def adam(network: nn.Module | list[torch.Tensor], learning_rate: float) -> torch.optim.Adam:
    """Adam with PyTorch's defaults over a network's parameters (or a list of leaf tensors),
    using the fused kernel where the device has one.

    The fused kernel runs the same update rule as the per-parameter loop (the default on
    the CPU) in one pass; only rounding differs. Adam is elementwise: one Adam over the
    parameters of several networks makes each network's own update.
    """
    parameters = list(network.parameters()) if isinstance(network, nn.Module) else list(network)
    try:
        return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    except (RuntimeError, ValueError):  # pragma: no cover - device without a fused Adam
        return torch.optim.Adam(parameters, lr=learning_rate)


def stacked_parameters(networks: list[MLP]) -> list[torch.Tensor]:
    """The parameters of ``networks`` (same sizes, same device) stacked on a leading run axis:
    ``[W_0, b_0, W_1, b_1, ...]``, ``W_k`` of shape ``[R, out, in]`` and ``b_k`` of shape ``[R, out]``.

    The stack is differentiable: gradients flow back to each network's own parameters, which
    stay the leaves an optimizer steps. (Adam over the networks' own tensors, rather than over
    stacked leaves, gives each run exactly the update it gets alone: the fused kernel's
    rounding depends on a tensor's length.)
    """
    return [torch.stack(tensors) for tensors in zip(*(network.parameters() for network in networks))]


def stacked_forward(parameters: list[torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
    """``[R, N, outputs]``: every run's :class:`MLP` (:func:`stacked_parameters`) over the same
    ``[N, input]`` inputs, through one batched matrix product per layer (``baddbmm``)."""
    pairs = list(zip(parameters[0::2], parameters[1::2]))
    x = inputs.expand(pairs[0][0].shape[0], *inputs.shape)
    for k, (weight, bias) in enumerate(pairs):
        x = torch.baddbmm(bias[:, None, :], x, weight.transpose(1, 2))
        if k < len(pairs) - 1:
            x = F.relu(x)
    return x


def masked_log_softmax(logits: torch.Tensor, legal_mask: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the legal actions of each row (the last axis), in float64; illegal actions get -inf.

    float64 keeps the plan products and the value accurate to the engine's precision
    whatever the network's dtype; it costs little next to the network itself.
    """
    return torch.log_softmax(logits.to(torch.float64).masked_fill(~legal_mask, -torch.inf), dim=-1)


def masked_softmax(logits: torch.Tensor, legal_mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the legal actions of each row, in float64; illegal actions get exactly 0."""
    return masked_log_softmax(logits, legal_mask).exp()


def softmax_policy(network: nn.Module, observations: torch.Tensor, legal_mask: torch.Tensor) -> np.ndarray:
    """``float64[I, A]`` softmax policy of the network's outputs over the legal actions (rows sum to 1)."""
    with torch.no_grad():
        policy = masked_softmax(network(observations), legal_mask).cpu().numpy()
    # Renormalize in float64 so that rows sum to 1 to the engine's tolerance exactly.
    return policy / policy.sum(axis=1, keepdims=True)


def network_diagnostics(network: MLP, observations: np.ndarray, legal_mask: np.ndarray) -> dict:
    """How much a network can still learn, over all of a player's information states.

    ``dead_relu``: per hidden layer, the share of units that output 0 at every
    information state (they get no gradient); ``parameter_norm``: the L2 norm of all
    parameters; ``q_gap``: the mean over information states of the best minus the worst
    legal output (Q-values or logits; with epsilon-greedy acting a large gap means that
    exploration rarely changes the greedy choice).
    """
    legal = torch.from_numpy(legal_mask)
    dead = []
    with torch.no_grad():
        x = torch.from_numpy(observations)
        for layer in network.layers[:-1]:
            x = F.relu(layer(x))
            dead.append(float((x.amax(dim=0) <= 0).float().mean()))
        out = network.layers[-1](x)
        gap = out.masked_fill(~legal, -torch.inf).amax(dim=1) - out.masked_fill(~legal, torch.inf).amin(dim=1)
        norm = torch.sqrt(sum((p.double() ** 2).sum() for p in network.parameters()))
    return {"dead_relu": dead, "parameter_norm": float(norm), "q_gap": float(gap.mean())}


__all__ = [
    "MAX_STEPS", "MLP", "SCHEMES", "adam", "available_cpus", "check_network_size", "check_steps", "fit_network",
    "fresh_parameters", "greedy_policy", "initialize", "masked_log_softmax", "masked_softmax", "network_diagnostics",
    "softmax_policy", "stacked_forward", "stacked_parameters",
    "output_layer_names", "resolve_device", "torch_threads",
]
