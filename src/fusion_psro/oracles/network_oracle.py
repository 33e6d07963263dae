"""The network half of the oracles that train an MLP over information-state tensors (DQN, pg).

:class:`NetworkOracle` builds a player's network, draws scratch parameters, loads
parameters into a network with an error that says what does not fit, names the output
layer and describes a network's plasticity. A subclass says how large a player's network
is (:meth:`NetworkOracle.network_sizes`), what its network is called in messages
(:attr:`NetworkOracle.network_kind`) and how it trains (``best_response``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fusion_psro import options
from fusion_psro.errors import OracleError
from fusion_psro.games.compiled import CompiledGame
from fusion_psro.oracles.base import BestResponseRequest, Oracle, StateDict
from fusion_psro.oracles.network_policy import GREEDY_Q, encode
from fusion_psro.oracles.networks import MLP, SCHEMES, fresh_parameters, network_diagnostics, output_layer_names


class NetworkOracle(Oracle):
    """An oracle whose responses are :class:`~fusion_psro.oracles.networks.MLP` parameters.

    Subclasses set ``config`` (a settings object with ``hidden_sizes``) and ``compiled``
    (the compiled game, or None where the oracle plays sampled games), and implement
    :meth:`network_sizes`.
    """

    trains_parameters = True
    scratch_schemes = SCHEMES
    has_output_layer = True
    #: What a player's network is called in messages (``"Q-network"``, ``"policy network"``).
    network_kind = "network"

    compiled: CompiledGame | None
    config: Any

    @classmethod
    def member_hidden_sizes(cls, settings: Any) -> tuple[int, ...]:
        """The hidden widths of its networks: the ``hidden_sizes`` setting."""
        return tuple((settings if settings is not None else cls.settings_class()).hidden_sizes)

    @classmethod
    def member_vector(cls, settings: Any, parameters: StateDict) -> np.ndarray:
        """A greedy network: its members play the legal action with the highest output."""
        return encode(parameters, cls.member_hidden_sizes(settings), GREEDY_Q)

    def network_sizes(self, player: int) -> tuple[int, int]:
        """``(input size, outputs)`` of ``player``'s network: the information-state tensor length
        and the distinct actions."""
        raise NotImplementedError

    def check_player(self, player: object) -> int:
        """``player`` as an int; :class:`OracleError` unless it is 0 or 1."""
        if not options.is_integer(player) or player not in (0, 1):
            raise OracleError(f"player must be 0 or 1, got {player!r}")
        return int(player)

    def build_network(self, player: int) -> MLP:
        """A network of ``player`` on the CPU, with arbitrary weights (load or initialize them).

        PyTorch's default layer initialization runs on a forked RNG state, so building a
        network leaves the global torch RNG untouched.
        """
        input_size, outputs = self.network_sizes(self.check_player(player))
        with torch.random.fork_rng(devices=[]):
            return MLP(input_size, self.config.hidden_sizes, outputs)

    def scratch_parameters(self, player: int, scheme: str, seed: int) -> StateDict:
        """Fresh parameters of ``player``'s network (CPU tensors); see :func:`~fusion_psro.oracles.networks.initialize`.

        Deterministic in ``seed`` (a private :class:`torch.Generator`; the global torch
        RNG is untouched). ``player`` only determines the shapes.
        """
        if scheme not in SCHEMES:
            raise OracleError(f"unknown initialization scheme {scheme!r}; accepted: {', '.join(SCHEMES)}")
        return fresh_parameters(self.build_network(player), scheme, seed)

    def network(self, player: int, parameters: StateDict, *, what: str = "parameters") -> MLP:
        """``player``'s network holding ``parameters`` (on the CPU); :class:`OracleError` if they do not
        fit it or hold NaN or infinite values (``what`` names them in the message)."""
        network = self.build_network(player)
        try:
            network.load_state_dict(parameters)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise OracleError(f"{what} do not fit player {player}'s {self.network_kind}: {exc}") from None
        if not all(torch.isfinite(value).all() for value in network.state_dict().values()):
            raise OracleError(f"{what} for player {player}'s {self.network_kind} hold NaN or infinite values")
        return network

    def initial_network(self, request: BestResponseRequest) -> MLP:
        """The network a best response starts from (CPU): ``request.initial_parameters``, else scratch ``normal``
        drawn from ``request.seed``."""
        parameters = request.initial_parameters
        if parameters is None:
            parameters = self.scratch_parameters(request.player, "normal", request.seed)
        return self.network(request.player, parameters, what="initial_parameters")

    def output_layer_names(self, player: int) -> tuple[str, ...]:
        return output_layer_names(self.build_network(player).state_dict())

    def compiled_game(self, purpose: str) -> CompiledGame:
        """The compiled game; :class:`OracleError` naming ``purpose`` where the oracle plays sampled games."""
        if self.compiled is None:
            raise OracleError(f"{purpose} needs the compiled game; this {self.name or type(self).__name__} oracle "
                              "plays sampled games")
        return self.compiled

    def diagnostics(self, player: int, parameters: StateDict | None) -> dict[str, Any]:
        """Plasticity of the network with ``parameters`` over every information state
        (:func:`~fusion_psro.oracles.networks.network_diagnostics`; the gap is in the network's outputs)."""
        if parameters is None:
            return {}
        info = self.compiled_game("diagnostics over every information state").players[player]
        return network_diagnostics(self.network(player, parameters), info.tensors, info.legal_mask)


__all__ = ["NetworkOracle"]
