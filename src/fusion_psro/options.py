"""Validators of settings: one call per field, one message per kind of bad value.

Every settings class (an oracle's, an init's, a variant's, a meta-solver's keyword
options) checks its fields with these, and so can a plug-in's::

    from fusion_psro import options

    @dataclasses.dataclass(frozen=True)
    class MySettings:
        width: int = 64
        temperature: float = 1.0

        def __post_init__(self):
            options.positive_int(self.width, "my-oracle: width")
            options.positive_float(self.temperature, "my-oracle: temperature")

A validator returns the value (``int``/``float``/``tuple``, or None where ``optional``)
and raises :class:`~fusion_psro.errors.ConfigError` (or the ``error`` class given) with a
one-line message naming the setting, what it accepts and what it got, e.g.
``my-oracle: width must be an integer >= 1, got 0``; at the command line that is an exit
status of 2 with that line. ``name`` is the setting as the user should read it: with its
owner (``"DQNConfig.batch_size"``, ``"pg oracle: steps"``) or alone (``"shrink"``).

bool is neither an integer nor a number here (``True`` is not a width), and NaN and the
infinities are not finite numbers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from fusion_psro.errors import ConfigError


def is_integer(value: object) -> bool:
    """An integer (Python or NumPy) that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A real number (Python or NumPy) that is not a bool; NaN and the infinities included."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fail(error: type[Exception], name: str, accepted: str, value: Any, optional: bool) -> Exception:
    return error(f"{name} must be {accepted}{' or None' if optional else ''}, got {value!r}")


def integer(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None,
            optional: bool = False, error: type[Exception] = ConfigError) -> int | None:
    """``value`` as an ``int``, if it is an integer within ``[minimum, maximum]`` (either bound may be open-ended)."""
    if optional and value is None:
        return None
    if minimum is not None and maximum is not None:
        accepted = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        accepted = f"an integer >= {minimum}"
    else:
        accepted = f"an integer <= {maximum}" if maximum is not None else "an integer"
    if not is_integer(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(error, name, accepted, value, optional)
    return int(value)


def positive_int(value: Any, name: str, *, optional: bool = False, error: type[Exception] = ConfigError) -> int | None:
    """An integer >= 1."""
    return integer(value, name, minimum=1, optional=optional, error=error)


def non_negative_int(value: Any, name: str, *, optional: bool = False,
                     error: type[Exception] = ConfigError) -> int | None:
    """An integer >= 0."""
    return integer(value, name, minimum=0, optional=optional, error=error)


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low == 0 and low_open:
        return "a positive finite number"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def number(value: Any, name: str, *, low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False, optional: bool = False, error: type[Exception] = ConfigError) -> float | None:
    """``value`` as a ``float``, if it is a finite number within the bounds (``low_open``: ``> low``)."""
    if optional and value is None:
        return None
    ok = is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise _fail(error, name, _interval(low, high, low_open, high_open), value, optional)
    return float(value)


def positive_float(value: Any, name: str, *, optional: bool = False,
                   error: type[Exception] = ConfigError) -> float | None:
    """A finite number > 0."""
    return number(value, name, low=0.0, low_open=True, optional=optional, error=error)


def non_negative_float(value: Any, name: str, *, optional: bool = False,
                       error: type[Exception] = ConfigError) -> float | None:
    """A finite number >= 0."""
    return number(value, name, low=0.0, optional=optional, error=error)


def probability(value: Any, name: str, *, error: type[Exception] = ConfigError) -> float:
    """A number in [0, 1]."""
    return number(value, name, low=0.0, high=1.0, error=error)


def int_tuple(value: Any, name: str, *, minimum: int = 1, example: str = "[64,64]",
              error: type[Exception] = ConfigError) -> tuple[int, ...]:
    """A list of integers >= ``minimum`` (``hidden_sizes``), as a tuple."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or not all(
            is_integer(v) and v >= minimum for v in value):
        raise error(f"{name} must be a list of integers >= {minimum}, e.g. {example}; got {value!r}")
    return tuple(int(v) for v in value)


def choice(value: Any, name: str, choices: Iterable[str], *, error: type[Exception] = ConfigError) -> str:
    """One of ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise error(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def flag(value: Any, name: str, *, error: type[Exception] = ConfigError) -> bool:
    """``True`` or ``False`` (not 0 or 1)."""
    if not isinstance(value, bool):
        raise error(f"{name} must be true or false, got {value!r}")
    return value


__all__ = [
    "choice", "flag", "int_tuple", "integer", "is_integer", "is_number", "non_negative_float", "non_negative_int",
    "number", "positive_float", "positive_int", "probability",
]
