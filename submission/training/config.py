"""Fine-tuning settings: ``models/finetune.yaml`` loaded into frozen dataclasses, unknown keys refused.

The base model and the prompt format are not repeated here: ``base_config`` names a baseline YAML
(default ``models/baseline.yaml``) whose ``weights``, ``device``, ``dtype``, ``attn_implementation``,
``use_chat_template`` and ``system_prompt`` training uses, so the adapter is trained on the prompts the
baseline will show it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from models.baseline_config import (  # the baseline's YAML helpers, one copy
    _is_int,
    _key_lines,
    read_yaml_mapping,
)

from ..environment import KIT_ROOT
from ..errors import ConfigError, suggest

DEFAULT_FINETUNE_CONFIG = KIT_ROOT / "models" / "finetune.yaml"
QUANTIZATIONS = ("none", "4bit")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """peft LoRA: rank, scaling numerator, dropout, and the names of the linear layers it wraps."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        _check(_is_int(self.r) and self.r >= 1, "lora.r", self.r, "a positive int")
        _check(_is_number(self.alpha) and self.alpha > 0, "lora.alpha", self.alpha, "a positive number")
        _check(_is_number(self.dropout) and 0 <= self.dropout < 1, "lora.dropout", self.dropout, "a number in [0, 1)")
        names = self.target_modules
        _check(isinstance(names, (list, tuple)) and names and all(isinstance(n, str) and n for n in names),
               "lora.target_modules", names, "a non-empty list of module names, e.g. [q_proj, v_proj]")
        object.__setattr__(self, "target_modules", tuple(names))


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything ``python -m submission finetune`` reads from YAML; see models/finetune.yaml."""

    base_config: str = "baseline.yaml"
    quantization: str = "none"
    lora: LoraSettings = field(default_factory=LoraSettings)
    learning_rate: float = 2e-4
    epochs: float = 3
    max_steps: int | None = None
    batch_size: int = 4
    gradient_accumulation_steps: int = 4
    max_seq_length: int = 1024
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    save_steps: int = 50
    save_total_limit: int | None = 2
    seed: int = 2024
    base_dir: Path = field(default=DEFAULT_FINETUNE_CONFIG.parent, repr=False)  # not a key: relative paths' folder

    def __post_init__(self) -> None:
        _check(isinstance(self.base_config, str) and self.base_config, "base_config", self.base_config,
               "a baseline YAML path (relative to this file's folder)")
        _check(self.quantization in QUANTIZATIONS, "quantization", self.quantization, "none or 4bit (QLoRA)")
        _check(self.lr_scheduler in SCHEDULERS, "lr_scheduler", self.lr_scheduler, f"one of {', '.join(SCHEDULERS)}")
        _check(isinstance(self.lora, LoraSettings), "lora", self.lora, "a mapping of r, alpha, dropout, target_modules")
        for name in ("learning_rate", "epochs", "max_grad_norm"):
            value = getattr(self, name)
            _check(_is_number(value) and value > 0 and math.isfinite(value), name, value, "a positive number")
        for name in ("batch_size", "gradient_accumulation_steps", "save_steps", "seed"):
            _check(_is_int(getattr(self, name)) and getattr(self, name) >= (0 if name == "seed" else 1), name,
                   getattr(self, name), "a positive int" if name != "seed" else "an int >= 0")
        _check(_is_int(self.max_seq_length) and self.max_seq_length >= 8, "max_seq_length", self.max_seq_length,
               "an int >= 8 (tokens of prompt and answer together)")
        _check(self.max_steps is None or (_is_int(self.max_steps) and self.max_steps >= 1), "max_steps",
               self.max_steps, "null (train for `epochs`) or a positive int")
        _check(self.save_total_limit is None or (_is_int(self.save_total_limit) and self.save_total_limit >= 1),
               "save_total_limit", self.save_total_limit, "null (keep all) or a positive int")
        _check(_is_number(self.warmup_ratio) and 0 <= self.warmup_ratio < 1, "warmup_ratio", self.warmup_ratio,
               "a number in [0, 1)")
        _check(_is_number(self.weight_decay) and self.weight_decay >= 0, "weight_decay", self.weight_decay,
               "a number >= 0")
        _check(isinstance(self.gradient_checkpointing, bool), "gradient_checkpointing",
               self.gradient_checkpointing, "true or false")

    @property
    def base_config_path(self) -> Path:
        path = Path(self.base_config).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def as_dict(self) -> dict[str, Any]:
        """The settings as YAML would write them (for training.json)."""
        values = dataclasses.asdict(self)
        values.pop("base_dir")
        values["lora"]["target_modules"] = list(self.lora.target_modules)
        return values


def load_finetune_config(path: str | Path | None = None, **overrides: Any) -> FinetuneConfig:
    """Read a fine-tuning YAML file (default ``models/finetune.yaml``); keyword overrides win (None: ignored)."""
    path = Path(path) if path is not None else DEFAULT_FINETUNE_CONFIG
    text, data = read_yaml_mapping(path, "the fine-tuning config", ConfigError)
    overrides = {key: value for key, value in overrides.items() if value is not None}
    lines = {key: line for key, line in _key_lines(text).items() if key not in overrides}
    return config_from_mapping({**data, **overrides}, str(path), lines, path.resolve().parent)


def config_from_mapping(data: Mapping[str, Any], source: str = "<arguments>", lines: Mapping[str, int] | None = None,
                        base_dir: Path = DEFAULT_FINETUNE_CONFIG.parent) -> FinetuneConfig:
    """A ``FinetuneConfig`` from plain data; errors name ``source``, the key and its line."""
    lines = lines or {}
    values = dict(data)
    _reject_unknown(values, [f.name for f in dataclasses.fields(FinetuneConfig) if f.name != "base_dir"], source, lines)
    lora = values.get("lora")
    if isinstance(lora, Mapping):
        lora_lines = {key: lines["lora"] for key in lora} if "lora" in lines else {}
        _reject_unknown(lora, [f.name for f in dataclasses.fields(LoraSettings)], source, lora_lines, "lora.")
    try:
        if isinstance(lora, Mapping):
            values["lora"] = LoraSettings(**lora)
        return FinetuneConfig(**values, base_dir=base_dir)
    except ConfigError as error:
        key = str(error).split(":", 1)[0].split(".")[0]
        where = f"{source}, line {lines[key]}" if key in lines else source
        raise ConfigError(f"{where}: {error}") from None


def _reject_unknown(values: Mapping[str, Any], known: list[str], source: str, lines: Mapping[str, int],
                    prefix: str = "") -> None:
    for key in values:
        if key not in known:
            where = f"{source}, line {lines[key]}" if key in lines else source
            raise ConfigError(f"{where}: unknown key '{prefix}{key}'; {suggest(str(key), known)}"
                              f"known keys: {', '.join(prefix + k for k in known)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, found {value!r}")
