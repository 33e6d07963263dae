"""Best-response oracles: exact (tabular, from the engine) and learned (DQN)."""

from fusion_psro.oracles.base import BestResponseRequest, BestResponseResult, Oracle
from fusion_psro.oracles.dqn import DQNConfig, DQNOracle
from fusion_psro.oracles.exact import ExactOracle

__all__ = ["BestResponseRequest", "BestResponseResult", "DQNConfig", "DQNOracle", "ExactOracle", "Oracle"]
