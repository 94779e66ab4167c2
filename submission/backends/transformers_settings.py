"""The transformers backend's settings: ``ModelSettings`` plus quantisation, LoRA, attention and batching.

``models/baseline.yaml`` documents every key; ``load_transformers_settings(path, **overrides)`` reads such
a file (``settings.load_settings``: unknown keys refused with file, line and a "did you mean").
``check_weights_path`` and ``check_adapter_path`` check the folders the settings name, loading nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, suggest_path
from ..yamlio import is_int, is_number, require, require_choice
from .settings import ModelSettings, load_settings
from .weights import SMOLLM2

QUANTIZATIONS = ("none", "8bit", "4bit")
ADAPTER_CONFIG = "adapter_config.json"  # what peft's save_pretrained writes into an adapter folder
DEVICE_MAPS = (None, "auto")
ATTENTIONS = ("eager", "sdpa", "flash_attention_2")


@dataclass(frozen=True)
class TransformersSettings(ModelSettings):
    """Everything ``TransformersModel`` reads. The defaults are those of models/baseline.yaml."""

    quantization: str = "none"
    lora_adapter: str | None = None
    merge_lora: bool = False
    device_map: str | None = None
    attn_implementation: str = "sdpa"
    max_batch_tokens: int = 4096
    mc_length_ratio: float = 1.25
    seed: int = 2024

    WHAT = "transformers settings"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("quantization", self.quantization, QUANTIZATIONS)
        require_choice("device_map", self.device_map, DEVICE_MAPS)
        require_choice("attn_implementation", self.attn_implementation, ATTENTIONS)
        require(self.lora_adapter is None or (isinstance(self.lora_adapter, str) and self.lora_adapter),
                "lora_adapter", self.lora_adapter, "null or an adapter folder path")
        require(isinstance(self.merge_lora, bool), "merge_lora", self.merge_lora, "true or false")
        require(is_int(self.max_batch_tokens) and self.max_batch_tokens >= 1, "max_batch_tokens",
                self.max_batch_tokens, "a positive int")
        require(is_number(self.mc_length_ratio) and self.mc_length_ratio >= 1, "mc_length_ratio",
                self.mc_length_ratio, "a number >= 1")
        require(is_int(self.seed), "seed", self.seed, "an int")
        if self.device_map == "auto" and self.device == "cpu":
            raise ConfigError("device_map: auto splits a model across GPUs; it needs device: cuda or auto",
                              key="device_map")


def load_transformers_settings(path: str | Path | None = None, **overrides: Any) -> TransformersSettings:
    """Read transformers settings from a YAML file (None: the defaults) and apply keyword overrides."""
    return load_settings(TransformersSettings, path, **overrides)


def _missing(key: str, value: str, path: Path, base_dir: Path, what: str) -> ConfigError:
    hint = suggest_path(value, base_dir)
    shown = os.path.normpath(path)
    return ConfigError(f"{key}: {value} does not exist{f' ({shown})' if shown != value else ''}; {hint}"
                       f"expected {what}", key=key)


def check_weights_path(settings: TransformersSettings) -> None:
    """``weights`` names a model folder that exists and holds config.json (``smollm2`` is converted on first
    use: nothing to check); ConfigError naming the key, the path and the nearest existing one."""
    if settings.weights == SMOLLM2:
        return
    path = settings.relative(settings.weights)
    what = f"a Hugging Face model folder (config.json, *.safetensors, tokenizer files), or weights: {SMOLLM2}"
    if not path.is_dir():
        raise _missing("weights", settings.weights, path, settings.base_dir, what)
    if not (path / "config.json").is_file():
        raise ConfigError(f"weights: {path} has no config.json; expected {what}", key="weights")


def check_adapter_path(settings: TransformersSettings) -> Path | None:
    """The ``lora_adapter`` folder (None without one): it must exist and hold adapter_config.json; ConfigError
    naming the key, the path and the nearest existing one."""
    if settings.lora_adapter is None:
        return None
    path = settings.relative(settings.lora_adapter)
    what = f"a folder written by peft's save_pretrained ({ADAPTER_CONFIG}, adapter_model.safetensors)"
    if not path.is_dir():
        raise _missing("lora_adapter", settings.lora_adapter, path, settings.base_dir, what)
    if not (path / ADAPTER_CONFIG).is_file():
        raise ConfigError(f"lora_adapter: {path} has no {ADAPTER_CONFIG}; expected {what}", key="lora_adapter")
    return path
