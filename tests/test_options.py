"""The settings validators of :mod:`fusion_psro.options`: what each accepts, returns and says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusion_psro import options
from fusion_psro.errors import ConfigError, OracleError


@pytest.mark.parametrize(
    "check, value, expected",
    [
        (options.positive_int, 3, 3),
        (options.positive_int, np.int64(2), 2),
        (options.non_negative_int, 0, 0),
        (options.positive_float, 0.5, 0.5),
        (options.positive_float, 2, 2.0),
        (options.non_negative_float, 0, 0.0),
        (options.probability, 1, 1.0),
        (options.probability, np.float32(0.25), 0.25),
    ],
)
def test_valid_values_come_back_as_plain_numbers(check, value, expected):
    result = check(value, "x")
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "check, value, message",
    [
        (options.positive_int, 0, "width must be an integer >= 1, got 0"),
        (options.positive_int, 2.0, "width must be an integer >= 1, got 2.0"),
        (options.positive_int, True, "width must be an integer >= 1, got True"),
        (options.positive_int, "3", "width must be an integer >= 1, got '3'"),
        (options.non_negative_int, -1, "width must be an integer >= 0, got -1"),
        (options.positive_float, 0.0, "width must be a positive finite number, got 0.0"),
        (options.positive_float, math.nan, "width must be a positive finite number, got nan"),
        (options.positive_float, math.inf, "width must be a positive finite number, got inf"),
        (options.non_negative_float, -0.5, "width must be a finite number >= 0, got -0.5"),
        (options.probability, 1.5, r"width must be a number in \[0, 1\], got 1.5"),
        (options.probability, False, r"width must be a number in \[0, 1\], got False"),
    ],
)
def test_bad_values_are_named_with_what_is_accepted(check, value, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        check(value, "width")


def test_bounds_optional_values_and_error_classes():
    assert options.integer(5, "k", minimum=2, maximum=5) == 5
    with pytest.raises(ConfigError, match=r"^k must be an integer in \[2, 5\], got 6$"):
        options.integer(6, "k", minimum=2, maximum=5)
    assert options.number(1.0, "f", low=0.0, high=1.0, low_open=True) == 1.0
    with pytest.raises(ConfigError, match=r"^f must be a number in \(0, 1\], got 0.0$"):
        options.number(0.0, "f", low=0.0, high=1.0, low_open=True)
    assert options.positive_int(None, "threads", optional=True) is None
    with pytest.raises(ConfigError, match="^threads must be an integer >= 1 or None, got 0$"):
        options.positive_int(0, "threads", optional=True)
    with pytest.raises(ConfigError):
        options.positive_int(None, "threads")
    with pytest.raises(OracleError, match="^steps must be an integer >= 1"):
        options.positive_int(0, "steps", error=OracleError)


def test_lists_choices_and_flags():
    assert options.int_tuple([64, np.int64(32)], "hidden_sizes") == (64, 32)
    for bad in ("64", [64, 0], 64, [1.5]):
        with pytest.raises(ConfigError, match=r"hidden_sizes must be a list of integers >= 1, e.g. \[64,64\]; got"):
            options.int_tuple(bad, "hidden_sizes")
    assert options.choice("mse", "loss", ("mse", "huber")) == "mse"
    with pytest.raises(ConfigError, match="^loss must be one of mse, huber, got 'l1'$"):
        options.choice("l1", "loss", ("mse", "huber"))
    assert options.flag(False, "parallel") is False
    with pytest.raises(ConfigError, match="^parallel must be true or false, got 1$"):
        options.flag(1, "parallel")


def test_every_settings_class_speaks_the_same_language():
    """The built-in settings classes use the validators: the same bad value gets the same words."""
    from fusion_psro.oracles.dqn import DQNConfig
    from fusion_psro.oracles.pg import PGConfig
    from fusion_psro.oracles.point_gradient import GradientConfig
    from fusion_psro.psro.initialization import DistillSettings

    for make, name in ((lambda: DQNConfig(batch_size=0), "DQNConfig.batch_size"),
                       (lambda: PGConfig(steps=0), "pg oracle: steps"),
                       (lambda: GradientConfig(steps=0), "gradient oracle: steps"),
                       (lambda: DistillSettings(steps=0), "steps")):
        with pytest.raises(ConfigError, match=f"^{name} must be an integer >= 1, got 0$"):
            make()
