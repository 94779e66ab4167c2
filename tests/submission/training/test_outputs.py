"""What a fine-tuning run writes beside the adapter: the snippet, the baseline settings, the loss chart."""

from __future__ import annotations

from pathlib import Path

from submission.backends.transformers_settings import TransformersSettings, load_transformers_settings
from submission.training.outputs import baseline_settings, loss_chart, snippet, write_settings


def test_the_snippet_names_the_adapter_relative_to_the_baselines_folder(tmp_path):
    base = TransformersSettings(base_dir=tmp_path / "repo" / "models")
    adapter = tmp_path / "repo" / "adapters" / "try1"
    assert snippet(base, adapter, "none", None) == "  lora_adapter: ../adapters/try1"
    elsewhere = Path("/srv/adapters/try1")
    assert snippet(base, elsewhere, "none", None) == "  lora_adapter: /srv/adapters/try1"


def test_a_qlora_snippet_keeps_the_4bit_base_and_a_merge_offers_the_weights(tmp_path):
    base = TransformersSettings(base_dir=tmp_path / "models")
    text = snippet(base, tmp_path / "adapters" / "q", "4bit", tmp_path / "adapters" / "q" / "merged")
    assert "lora_adapter: ../adapters/q\n  quantization: 4bit" in text
    assert "weights: ../adapters/q/merged\n  lora_adapter: null" in text


def test_the_written_settings_load_as_the_baselines_with_absolute_paths(tmp_path):
    weights = tmp_path / "models" / "my-model"
    base = TransformersSettings(weights="my-model", batch_size=4, base_dir=tmp_path / "models")
    path = write_settings(tmp_path / "out" / "baseline.yaml", baseline_settings(base, tmp_path / "out", "4bit"), "x")
    loaded = load_transformers_settings(path)
    assert (loaded.weights, loaded.lora_adapter) == (str(weights), str(tmp_path / "out"))
    assert (loaded.quantization, loaded.batch_size) == ("4bit", 4)
    plain = load_transformers_settings(
        write_settings(tmp_path / "b.yaml", baseline_settings(base, None, "4bit"), "base"))
    assert (plain.lora_adapter, plain.quantization) == (None, "none")


def test_the_loss_chart_is_a_png():
    png = loss_chart([{"step": 1, "loss": 3.0}, {"step": 2, "loss": 1.5}], "fine-tuning try1")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
