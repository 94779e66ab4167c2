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
    near_path,
    suggest_path,
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


@pytest.mark.parametrize("given, base, near", [
    ("../adapter/try1", "models", "../adapters/try1"),  # the folder a config names, from its own folder
    ("adapters/try2", None, "adapters/try1"),  # the last part
    ("data/develpment.json", None, "data/development.json"),  # a file
    ("adapters/try1", None, None),  # it exists: nothing to suggest
    ("elsewhere/try1", None, None),  # no part is close
    ("adapters/zzzzzzzz", None, None),
])
def test_near_path_fixes_each_missing_part_and_keeps_the_spelling(tmp_path, monkeypatch, given, base, near):
    for folder in ("models", "adapters/try1", "data"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "data" / "development.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert near_path(given, tmp_path / base if base else None) == near
    assert suggest_path(given, tmp_path / base if base else None) == (f"did you mean '{near}'? " if near else "")


def test_near_path_of_an_absolute_path_is_absolute(tmp_path):
    (tmp_path / "adapters" / "try1").mkdir(parents=True)
    assert near_path(tmp_path / "adapter" / "try1") == str(tmp_path / "adapters" / "try1")
