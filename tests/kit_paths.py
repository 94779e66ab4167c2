"""Paths the tests share: the tests folder, the repository root, the kit's sample split, the official
development split; and the benchmark scripts, loaded as modules."""

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DEV_DATA = ROOT.parent / "shared" / "data" / "development.json"
SAMPLE_DATA = ROOT / "data" / "sample.json"
BENCHMARKS = ROOT / "benchmarks"


@contextmanager
def benchmark_module(name: str) -> Iterator[ModuleType]:
    """``benchmarks/<name>.py`` imported as the module ``name`` (benchmarks are scripts, not a package),
    registered in ``sys.modules`` while in use: dataclasses look their module up there."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]
