"""Fine-tuning settings: ``models/finetune.yaml`` loaded into frozen dataclasses with ``submission.yamlio``
(unknown keys refused with file, line and a "did you mean", as every settings file of the kit).

The base model and the prompt format are not repeated here: ``base_config`` names a transformers
settings YAML (default ``models/baseline.yaml``) whose ``weights``, ``device``, ``dtype``, ``attn_implementation``,
``use_chat_template`` and ``system_prompt`` training uses, so the adapter is trained on the prompts the
baseline will show it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..environment import KIT_ROOT
from ..errors import ConfigError
from ..yamlio import is_int, is_number, locate, read_mapping, reject_unknown, require, with_overrides

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
        require(is_int(self.r) and self.r >= 1, "lora.r", self.r, "a positive int")
        require(is_number(self.alpha) and self.alpha > 0, "lora.alpha", self.alpha, "a positive number")
        require(is_number(self.dropout) and 0 <= self.dropout < 1, "lora.dropout", self.dropout, "a number in [0, 1)")
        names = self.target_modules
        require(isinstance(names, (list, tuple)) and names and all(isinstance(n, str) and n for n in names),
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
        require(isinstance(self.base_config, str) and self.base_config, "base_config", self.base_config,
               "a baseline YAML path (relative to this file's folder)")
        require(self.quantization in QUANTIZATIONS, "quantization", self.quantization, "none or 4bit (QLoRA)")
        require(self.lr_scheduler in SCHEDULERS, "lr_scheduler", self.lr_scheduler,
                f"one of {', '.join(SCHEDULERS)}")
        require(isinstance(self.lora, LoraSettings), "lora", self.lora,
                "a mapping of r, alpha, dropout, target_modules")
        for name in ("learning_rate", "epochs", "max_grad_norm"):
            value = getattr(self, name)
            require(is_number(value) and value > 0 and math.isfinite(value), name, value, "a positive number")
        for name in ("batch_size", "gradient_accumulation_steps", "save_steps", "seed"):
            require(is_int(getattr(self, name)) and getattr(self, name) >= (0 if name == "seed" else 1), name,
                   getattr(self, name), "a positive int" if name != "seed" else "an int >= 0")
        require(is_int(self.max_seq_length) and self.max_seq_length >= 8, "max_seq_length", self.max_seq_length,
               "an int >= 8 (tokens of prompt and answer together)")
        require(self.max_steps is None or (is_int(self.max_steps) and self.max_steps >= 1), "max_steps",
               self.max_steps, "null (train for `epochs`) or a positive int")
        require(self.save_total_limit is None or (is_int(self.save_total_limit) and self.save_total_limit >= 1),
               "save_total_limit", self.save_total_limit, "null (keep all) or a positive int")
        require(is_number(self.warmup_ratio) and 0 <= self.warmup_ratio < 1, "warmup_ratio", self.warmup_ratio,
               "a number in [0, 1)")
        require(is_number(self.weight_decay) and self.weight_decay >= 0, "weight_decay", self.weight_decay,
               "a number >= 0")
        require(isinstance(self.gradient_checkpointing, bool), "gradient_checkpointing",
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
    document = read_mapping(path, "the fine-tuning config")
    given = {key: value for key, value in overrides.items() if value is not None}
    data, source, lines = with_overrides(document, given)
    return config_from_mapping(data, source, lines, path.resolve().parent)


def config_from_mapping(data: Mapping[str, Any], source: str = "<arguments>", lines: Mapping[str, int] | None = None,
                        base_dir: Path = DEFAULT_FINETUNE_CONFIG.parent) -> FinetuneConfig:
    """A ``FinetuneConfig`` from plain data; errors name ``source``, the key and its line."""
    lines = lines or {}
    values = dict(data)
    reject_unknown(values, [f.name for f in dataclasses.fields(FinetuneConfig) if f.name != "base_dir"], source, lines)
    lora = values.get("lora")
    if isinstance(lora, Mapping):
        reject_unknown(lora, [f.name for f in dataclasses.fields(LoraSettings)], source, lines, "lora.")
    try:
        if isinstance(lora, Mapping):
            values["lora"] = LoraSettings(**lora)
        return FinetuneConfig(**values, base_dir=base_dir)
    except ConfigError as error:
        raise locate(error, source, lines) from None
