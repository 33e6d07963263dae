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
