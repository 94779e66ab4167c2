"""The transformers backend's settings: defaults, overrides, unknown keys and bad values refused with the
file and line (through ``backends.settings`` and ``submission.yamlio``), and the T4 rules they meet.

The shipped models/baseline.yaml is tested with the participant's folder (tests/models).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch

from submission.backends.hardware import check_attention, resolve_device, resolve_dtype
from submission.backends.settings import GenerationBudget, settings_from_mapping
from submission.backends.transformers_settings import TransformersSettings, load_transformers_settings
from submission.errors import ConfigError

T4, A100 = (7, 5), (8, 0)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "baseline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_config(path: Path | None = None, **overrides) -> TransformersSettings:
    return load_transformers_settings(path, **overrides)


def test_without_a_file_the_defaults_run_smollm2_and_paths_resolve_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.weights == "smollm2"
    assert (config.device, config.dtype, config.quantization) == ("auto", "auto", "none")
    assert config.lora_adapter is None and config.device_map is None
    assert 1 <= config.batch_size <= 16
    assert config.use_chat_template and config.system_prompt
    assert config.base_dir == tmp_path and config.relative("w") == tmp_path / "w"


def test_overrides_replace_yaml_values_and_merge_the_token_budget(tmp_path):
    path = write(tmp_path, "batch_size: 8\nmax_new_tokens:\n  retrieval: 7\n  generation: 50\n")
    config = load_config(path, batch_size=2, max_new_tokens={"generation": 5})
    assert config.batch_size == 2
    assert config.max_new_tokens == GenerationBudget(retrieval=7, generation=5)


def test_unknown_key_names_the_file_the_line_and_a_close_match(tmp_path):
    path = write(tmp_path, "weights: smollm2\nquantisation: 4bit\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and "line 2" in message
    assert "unknown key 'quantisation'" in message and "did you mean 'quantization'" in message


def test_unknown_budget_key_is_refused(tmp_path):
    path = write(tmp_path, "max_new_tokens:\n  generaton: 10\n")
    with pytest.raises(ConfigError,
                       match=r"unknown key 'max_new_tokens.generaton'; did you mean 'max_new_tokens.generation'"):
        load_config(path)


def test_unknown_keyword_override_is_refused(tmp_path):
    path = write(tmp_path, "batch_size: 8\n")
    with pytest.raises(ConfigError, match=r"\(keyword overrides: batchsize\): unknown key 'batchsize'; did you mean "
                                          r"'batch_size'"):
        load_config(path, batchsize=4)
    with pytest.raises(ConfigError, match=r"^<arguments>: unknown key 'batchsize'"):
        load_config(batchsize=4)


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


def test_malformed_yaml_is_a_config_error_naming_the_file_line_and_column(tmp_path):
    path = write(tmp_path, "device: cpu\nweights: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}, line 3, column 1: not valid YAML \(while "
                                          r"parsing a flow sequence: expected ',' or '\]'"):
        load_config(path)


def test_yaml_code_tags_are_refused_by_safe_load(tmp_path):
    path = write(tmp_path, "weights: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}, line 1, column 10: not valid YAML .*"
                                          r"python/object.*no tag that builds objects"):
        load_config(path)


def test_relative_paths_resolve_from_the_yaml_folder(tmp_path):
    config = load_config(write(tmp_path, "weights: my-model\n"))
    assert config.base_dir == tmp_path.resolve()


def test_config_is_frozen_and_built_from_plain_data(tmp_path):
    config = settings_from_mapping(TransformersSettings, {"batch_size": 4, "max_new_tokens": {"ranking": 9}},
                                   base_dir=tmp_path)
    assert config == TransformersSettings(batch_size=4, max_new_tokens=GenerationBudget(ranking=9), base_dir=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 5  # type: ignore[misc]


def test_an_error_carries_the_key_it_is_about(tmp_path):
    path = write(tmp_path, "device: cpu\nmax_new_tokens:\n  ner: 0\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "max_new_tokens.ner" and str(error.value).startswith(f"{path}, line 3: ")


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
