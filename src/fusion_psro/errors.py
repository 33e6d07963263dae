"""Exceptions raised by fusion-psro.

Every error the library raises on bad input derives from :class:`FusionPSROError` and
also from the built-in exception a caller would naturally catch (``ValueError`` or
``TypeError``), so ``except ValueError`` keeps working for code that does not know
about this package.
"""

from __future__ import annotations


class FusionPSROError(Exception):
    """Base class of every error raised by fusion-psro on bad input."""


class GameNotSupportedError(FusionPSROError, ValueError):
    """The game cannot be handled (unknown, not two-player zero-sum, imperfect recall, ...)."""


class GameTooLargeError(FusionPSROError, ValueError):
    """The game tree is too large to enumerate into arrays."""


class InvalidPolicyError(FusionPSROError, ValueError):
    """A policy has the wrong shape, invalid probabilities, or mass on illegal actions."""


class InvalidMetaStrategyError(FusionPSROError, ValueError):
    """A meta-strategy (weights over a population) is not a probability vector."""


class PolicyTypeError(FusionPSROError, TypeError):
    """An object was passed where a policy was expected, but it is not one."""


class ConfigError(FusionPSROError, ValueError):
    """A setting is invalid or does not fit the others; the message names it and what is accepted."""


class UnknownComponentError(ConfigError):
    """A component name (oracle, variant, init, meta-solver, diversity term, game kind) is not registered."""


class OracleError(FusionPSROError, ValueError):
    """A best-response request an oracle cannot serve (bad player, parameters of another shape, ...)."""


class NumericalError(FusionPSROError, RuntimeError):
    """A numerical method failed (a linear program without solution, an optimizer that diverged)."""


class InvalidPlayerError(FusionPSROError, ValueError):
    """A player index is not 0 or 1 (every game here has two players)."""


class OutputPathError(FusionPSROError, ValueError):
    """An output path that cannot hold what would be written there (under /dev, a name too long, a device)."""
