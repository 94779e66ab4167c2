"""One error family: every exception the kit defines derives from KitError, so a command catches it once."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import submission
from submission.errors import (
    ConfigError,
    DataError,
    KitError,
    LimitsError,
    ModelOutputError,
    ServerError,
    WeightsError,
)


def kit_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(submission.__path__, "submission.")
                  if not info.name.endswith("__main__"))


@pytest.mark.parametrize("module", kit_modules())
def test_every_exception_the_kit_defines_is_a_kit_error(module):
    for name, value in vars(importlib.import_module(module)).items():
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module:
            assert issubclass(value, KitError), f"{module}.{name} derives from {value.__mro__[1].__name__}, " \
                                                "not KitError"


def test_the_family_and_the_key_a_config_error_carries():
    for error in (ConfigError, DataError, ModelOutputError, WeightsError, ServerError, LimitsError):
        assert issubclass(error, KitError) and not issubclass(error, (ValueError, RuntimeError))
    assert ConfigError("batch_size: expected an int", key="batch_size").key == "batch_size"
    assert ConfigError("no key").key is None and str(ConfigError("no key")) == "no key"
