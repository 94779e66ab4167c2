"""Baseline settings: the shipped YAML loads, unknown keys and bad values are refused with their line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from models.baseline_config import (
    DEFAULT_CONFIG_PATH,
    BaselineConfig,
    ConfigError,
    GenerationBudget,
    config_from_mapping,
    load_config,
)
from models.hardware import check_attention, resolve_device, resolve_dtype

T4, A100 = (7, 5), (8, 0)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "baseline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_yaml_loads_the_smollm2_defaults():
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.weights == "smollm2"
    assert (config.device, config.dtype, config.quantization) == ("auto", "auto", "none")
    assert config.lora_adapter is None and config.device_map is None
    assert 1 <= config.batch_size <= 16
    assert config.use_chat_template and config.system_prompt
    assert config.base_dir == DEFAULT_CONFIG_PATH.parent


def test_dataclass_defaults_equal_the_shipped_yaml():
    assert config_from_mapping({}) == load_config(DEFAULT_CONFIG_PATH)


def test_overrides_replace_yaml_values_and_merge_the_token_budget():
    config = load_config(DEFAULT_CONFIG_PATH, batch_size=2, max_new_tokens={"generation": 5})
    assert config.batch_size == 2
    assert config.max_new_tokens.generation == 5
    assert config.max_new_tokens.retrieval == load_config().max_new_tokens.retrieval


def test_unknown_key_names_the_file_the_line_and_a_close_match(tmp_path):
    path = write(tmp_path, "weights: smollm2\nquantisation: 4bit\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and "line 2" in message
    assert "unknown key 'quantisation'" in message and "did you mean 'quantization'" in message


def test_unknown_budget_key_is_refused(tmp_path):
    path = write(tmp_path, "max_new_tokens:\n  generaton: 10\n")
    with pytest.raises(ConfigError, match=r"unknown key 'max_new_tokens.generaton'; did you mean 'max_new_tokens.generation'"):
        load_config(path)


def test_unknown_keyword_override_is_refused():
    with pytest.raises(ConfigError, match="unknown key 'batchsize'; did you mean 'batch_size'"):
        load_config(DEFAULT_CONFIG_PATH, batchsize=4)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("batch_size: 17\n", "batch_size: expected an int from 1 to 16, found 17"),
        ("batch_size: true\n", "batch_size: expected an int from 1 to 16"),
        ("quantization: 3bit\n", "quantization: expected one of none, 8bit, 4bit"),
        ("device: tpu\n", "device: expected one of auto, cpu, cuda"),
        ("dtype: half\n", "dtype: expected one of auto, float32, float16, bfloat16"),
        ("merge_lora: 'yes'\n", "merge_lora: expected true or false"),
        ("device_map: balanced\n", "device_map: expected one of null, auto"),
        ("max_new_tokens:\n  ner: 0\n", "max_new_tokens.ner: expected an int from 1 to 4096"),
        ("device: cpu\ndevice_map: auto\n", "device_map: auto splits a model across GPUs"),
    ],
)
def test_bad_values_are_refused_with_the_file_and_line(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert fragment in str(error.value)
    assert str(error.value).startswith(f"{path}, line ")


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- weights\n"))


def test_malformed_yaml_is_a_config_error_naming_the_file(tmp_path):
    path = write(tmp_path, "weights: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: not valid YAML"):
        load_config(path)


def test_yaml_code_tags_are_refused_by_safe_load(tmp_path):
    with pytest.raises(Exception, match="python/object"):
        load_config(write(tmp_path, "weights: !!python/object/apply:os.getcwd []\n"))


def test_relative_paths_resolve_from_the_yaml_folder(tmp_path):
    config = load_config(write(tmp_path, "weights: my-model\n"))
    assert config.base_dir == tmp_path.resolve()


def test_config_is_frozen_and_built_from_plain_data():
    config = config_from_mapping({"batch_size": 4, "max_new_tokens": {"ranking": 9}})
    assert config == BaselineConfig(batch_size=4, max_new_tokens=GenerationBudget(ranking=9))
    with pytest.raises(Exception):
        config.batch_size = 5  # type: ignore[misc]


# T4 rules: pure functions, checked with the compute capability a GPU would report.

def test_auto_device_and_dtype_are_float16_on_cuda_and_float32_on_cpu():
    assert resolve_device("auto", cuda_available=False) == "cpu"
    assert resolve_device("auto", cuda_available=True) == "cuda"
    assert resolve_dtype("auto", "cuda", T4) is torch.float16
    assert resolve_dtype("auto", "cpu", None) is torch.float32


def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(ConfigError, match="no GPU"):
        resolve_device("cuda", cuda_available=False)


def test_bfloat16_is_refused_below_compute_capability_8():
    with pytest.raises(ConfigError, match="bfloat16 needs a GPU of compute capability 8.0.*7.5"):
        resolve_dtype("bfloat16", "cuda", T4)
    assert resolve_dtype("bfloat16", "cuda", A100) is torch.bfloat16
    assert resolve_dtype("float16", "cuda", T4) is torch.float16


def test_float16_on_cpu_is_refused_and_bfloat16_allowed():
    with pytest.raises(ConfigError, match="float16 is not supported on CPU"):
        resolve_dtype("float16", "cpu", None)
    assert resolve_dtype("bfloat16", "cpu", None) is torch.bfloat16


def test_flash_attention_2_is_refused_below_compute_capability_8_and_on_cpu():
    with pytest.raises(ConfigError, match="flash_attention_2 needs compute capability 8.0.*7.5"):
        check_attention("flash_attention_2", "cuda", T4)
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        check_attention("flash_attention_2", "cpu", None)
    check_attention("flash_attention_2", "cuda", A100)
    check_attention("sdpa", "cuda", T4)
