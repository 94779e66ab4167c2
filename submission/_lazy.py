"""Public names of a subpackage, imported from their module on first use (PEP 562).

``from submission.harness import run_model`` then costs only the import of ``harness.runner``: a
subpackage's ``__init__`` imports none of its modules up front, so the model's child process and the
container's entry point load what they use and nothing more.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name of ``modules[m]`` comes from ``package.m``."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
