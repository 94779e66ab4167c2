"""models/finetune.yaml: loaded into FinetuneConfig, unknown keys and bad values refused with file and line."""

from __future__ import annotations

import pytest

from submission.errors import ConfigError
from submission.training.config import (
    DEFAULT_FINETUNE_CONFIG,
    FinetuneConfig,
    LoraSettings,
    config_from_mapping,
    load_finetune_config,
)


def test_the_shipped_yaml_holds_the_dataclass_defaults():
    assert load_finetune_config() == FinetuneConfig()
    assert load_finetune_config().base_config_path == DEFAULT_FINETUNE_CONFIG.parent / "baseline.yaml"


def test_overrides_win_and_none_is_ignored(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("max_steps: 7\nseed: 3\n")
    config = load_finetune_config(path, max_steps=20, seed=None)
    assert (config.max_steps, config.seed) == (20, 3)
    assert config.base_config_path == tmp_path / "baseline.yaml"  # relative to the YAML's folder


def test_an_unknown_key_is_refused_with_its_line_and_a_suggestion(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("epochs: 2\nlearning_rte: 0.1\n")
    with pytest.raises(ConfigError, match=r"ft\.yaml, line 2: unknown key 'learning_rte'; "
                                          r"did you mean 'learning_rate'"):
        load_finetune_config(path)


def test_an_unknown_lora_key_is_refused(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("lora:\n  rank: 8\n")
    with pytest.raises(ConfigError, match=r"line 2: unknown key 'lora\.rank'.*known keys: lora\.r, lora\.alpha"):
        load_finetune_config(path)


@pytest.mark.parametrize("text, message", [
    ("quantization: 8bit\n", "quantization: expected none or 4bit"),
    ("batch_size: 0\n", "batch_size: expected a positive int, found 0"),
    ("max_seq_length: 4\n", "max_seq_length: expected an int >= 8"),
    ("lr_scheduler: cosine_warm\n", "lr_scheduler: expected one of linear, cosine"),
    ("warmup_ratio: 1.5\n", r"warmup_ratio: expected a number in \[0, 1\)"),
    ("lora:\n  dropout: 1\n", r"lora\.dropout: expected a number in \[0, 1\)"),
    ("lora:\n  target_modules: []\n", "lora.target_modules: expected a non-empty list"),
    ("gradient_checkpointing: yes please\n", "gradient_checkpointing: expected true or false"),
    ("max_steps: 0\n", "max_steps: expected null"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "ft.yaml"
    path.write_text("seed: 1\n" + text)
    with pytest.raises(ConfigError, match=message) as error:
        load_finetune_config(path)
    assert str(path) in str(error.value)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of keys to values, found list"):
        load_finetune_config(path)


def test_a_bad_value_names_its_line(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("seed: 1\nepochs: 2\nbatch_size: -3\n")
    with pytest.raises(ConfigError, match=r"line 3: batch_size"):
        load_finetune_config(path)


def test_from_mapping_builds_the_lora_settings():
    config = config_from_mapping({"lora": {"r": 4, "target_modules": ["q_proj"]}})
    assert config.lora == LoraSettings(r=4, target_modules=("q_proj",))
    assert config.as_dict()["lora"]["target_modules"] == ["q_proj"]
