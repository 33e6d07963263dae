"""Population members that are networks: their policy vectors, and frozen seats that play them.

In a game played by sampling (:mod:`fusion_psro.psro.sampled_space`) a member's policy is
not a table: it is the network itself, written as one ``float64`` vector so that the loop,
checkpoints and saved populations handle it like any other policy array::

    [kind, L, h_1, ..., h_L, parameters...]

``kind`` is :data:`UNIFORM` (the uniformly random policy every population starts with;
its parameters are zeros), :data:`GREEDY_Q` (a network whose policy is the legal action
with the highest output, ties to the lowest: the DQN oracle's members, and the pg oracle's
greedy ones) or :data:`SOFTMAX` (a network whose policy is the softmax of its outputs over
the legal actions: the pg oracle's stochastic members). The oracle that trained a member
writes its vector (:meth:`~fusion_psro.oracles.base.Oracle.member_vector`); ``h`` are the hidden
widths of the ReLU MLP (:class:`~fusion_psro.oracles.networks.MLP`) over the game's
information-state tensors, and the parameters follow in state-dict order. float32
parameters are exact in float64, so :func:`decode` gives back the network bit for bit.

:class:`NetworkSeat` plays a mixture of such members in
:class:`~fusion_psro.games.sampled.SampledEpisodes`: each member's games of a round of
moves go through one batched forward pass, and a member's greedy action at an information
state is computed once and then looked up; a softmax member draws its action from the
game's uniform draw of the move.
"""

from __future__ import annotations

import numpy as np
import torch

from fusion_psro.errors import InvalidPolicyError
from fusion_psro.games.sampled import ObservationTable, random_legal_actions
from fusion_psro.oracles.networks import MLP, greedy_policy, masked_softmax, softmax_policy

#: Kind codes of a policy vector.
UNIFORM, GREEDY_Q, SOFTMAX = 0.0, 1.0, 2.0
KINDS = (UNIFORM, GREEDY_Q, SOFTMAX)


def vector_length(input_size: int, hidden_sizes: tuple[int, ...], num_actions: int) -> int:
    """Length of the policy vector of an MLP with these sizes."""
    sizes = (input_size, *hidden_sizes, num_actions)
    return 2 + len(hidden_sizes) + sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def uniform_vector(input_size: int, hidden_sizes: tuple[int, ...], num_actions: int) -> np.ndarray:
    """The uniform policy, as long as the vectors of networks of these sizes."""
    vector = np.zeros(vector_length(input_size, hidden_sizes, num_actions))
    vector[0], vector[1], vector[2: 2 + len(hidden_sizes)] = UNIFORM, len(hidden_sizes), hidden_sizes
    return vector


def encode(parameters, hidden_sizes: tuple[int, ...], kind: float = GREEDY_Q) -> np.ndarray:
    """The policy vector of the network with ``parameters`` (an MLP state dict) acting by ``kind``."""
    if kind not in (GREEDY_Q, SOFTMAX):
        raise InvalidPolicyError(f"a network member acts by GREEDY_Q ({GREEDY_Q}) or SOFTMAX ({SOFTMAX}), got {kind!r}")
    # The network's order (layer by layer, weight before bias), whatever the dict's: a state dict
    # read back from a safetensors file comes sorted by name.
    names = sorted(parameters, key=lambda name: (int(name.split(".")[1]), name.endswith(".bias")))
    flat = [np.asarray(parameters[name].detach().cpu(), dtype=np.float64).ravel() for name in names]
    header = np.array([kind, len(hidden_sizes), *hidden_sizes], dtype=np.float64)
    return np.concatenate([header, *flat])


def hidden_sizes_of(vector: np.ndarray) -> tuple[int, ...]:
    layers = int(vector[1])
    return tuple(int(h) for h in vector[2: 2 + layers])


def decode(vector: np.ndarray, input_size: int, num_actions: int) -> MLP | None:
    """The network of a policy vector (None for the uniform policy)."""
    vector = np.asarray(vector, dtype=np.float64)
    if vector.ndim != 1 or vector.size < 2 or vector[0] not in KINDS:
        raise InvalidPolicyError(f"not a network policy vector (kind {vector[:1].tolist()}); expected kind 0, 1 or 2")
    hidden = hidden_sizes_of(vector)
    if vector.size != vector_length(input_size, hidden, num_actions):
        raise InvalidPolicyError(
            f"a policy vector of {vector.size} numbers does not hold an MLP {input_size}-{hidden}-{num_actions}"
        )
    if vector[0] == UNIFORM:
        return None
    with torch.random.fork_rng(devices=[]):
        network = MLP(input_size, hidden, num_actions)
    offset = 2 + len(hidden)
    state = {}
    for name, tensor in network.state_dict().items():
        count = tensor.numel()
        state[name] = torch.from_numpy(vector[offset: offset + count].astype(np.float32)).reshape(tensor.shape)
        offset += count
    network.load_state_dict(state)
    network.requires_grad_(False)
    return network


def tabular_policy(vector: np.ndarray, tensors: np.ndarray, legal_mask: np.ndarray) -> np.ndarray:
    """``float64[I, A]`` policy of a member at the information states given by their tensors and legal masks."""
    network = decode(vector, tensors.shape[1], legal_mask.shape[1])
    if network is None:
        return legal_mask / legal_mask.sum(axis=1, keepdims=True)
    inputs = torch.from_numpy(np.ascontiguousarray(tensors)), torch.from_numpy(legal_mask)
    return softmax_policy(network, *inputs) if vector[0] == SOFTMAX else greedy_policy(network, *inputs)


class NetworkSeat:
    """A frozen seat of :class:`~fusion_psro.games.sampled.SampledEpisodes`: a mixture of network members.

    Parameters
    ----------
    vectors:
        ``[K, P]`` policy vectors of the members (or a list of them).
    weights:
        ``[K]`` probability vector; a member is drawn per episode.
    input_size, num_actions:
        The game's information-state tensor length and distinct actions.
    """

    def __init__(self, vectors, weights, input_size: int, num_actions: int) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.networks = [decode(v, input_size, num_actions) for v in vectors]
        self.softmax = [float(np.asarray(v)[0]) == SOFTMAX for v in vectors]
        if len(self.networks) != self.weights.size:
            raise InvalidPolicyError(f"{len(self.networks)} members but {self.weights.size} weights")
        self._cache: list[np.ndarray] = [np.zeros(0, dtype=np.int64) for _ in self.networks]
        self._table_key: tuple[int, int] | None = None

    def act(self, members: np.ndarray, ids: np.ndarray, table: ObservationTable, uniforms: np.ndarray) -> np.ndarray:
        key = (table.token, table.version)
        if key != self._table_key:  # another table, or this one was renumbered: forget the actions
            self._cache = [np.zeros(0, dtype=np.int64) for _ in self.networks]
            self._table_key = key
        actions = np.empty(ids.size, dtype=np.int64)
        for member in np.unique(members).tolist():
            rows = np.flatnonzero(members == member)
            network = self.networks[member]
            if network is None:
                actions[rows] = random_legal_actions(table.legal_mask[ids[rows]], uniforms[rows])
            elif self.softmax[member]:
                actions[rows] = self._sampled(network, ids[rows], table, uniforms[rows])
            else:
                actions[rows] = self._greedy(member, network, ids[rows], table)
        return actions

    @staticmethod
    def _sampled(network: MLP, ids: np.ndarray, table: ObservationTable, uniforms: np.ndarray) -> np.ndarray:
        """Actions drawn from the network's softmax over the legal actions, by inverse CDF of ``uniforms``."""
        with torch.no_grad():
            probabilities = masked_softmax(network(torch.from_numpy(table.tensors[ids])),
                                           torch.from_numpy(table.legal_mask[ids])).numpy()
        below = np.cumsum(probabilities, axis=1) <= uniforms[:, None]
        chosen = np.minimum(below.sum(axis=1), probabilities.shape[1] - 1)
        # Rounding can leave u above the last legal action's cumulative sum: take the last legal one.
        last_legal = probabilities.shape[1] - 1 - np.argmax(table.legal_mask[ids][:, ::-1], axis=1)
        return np.where(table.legal_mask[ids][np.arange(ids.size), chosen], chosen, last_legal)

    def _greedy(self, member: int, network: MLP, ids: np.ndarray, table: ObservationTable) -> np.ndarray:
        cache = self._cache[member]
        if cache.size < table.size:
            cache = np.concatenate([cache, np.full(table.size - cache.size, -1, dtype=np.int64)])
            self._cache[member] = cache
        unknown = np.unique(ids[cache[ids] < 0])
        if unknown.size:
            with torch.no_grad():
                q = network(torch.from_numpy(table.tensors[unknown]))
                q = q.masked_fill(~torch.from_numpy(table.legal_mask[unknown]), -torch.inf)
            cache[unknown] = q.argmax(dim=1).numpy()
        return cache[ids]


__all__ = [
    "GREEDY_Q", "KINDS", "NetworkSeat", "SOFTMAX", "UNIFORM", "decode", "encode", "hidden_sizes_of", "tabular_policy", "uniform_vector",
    "vector_length",
]
