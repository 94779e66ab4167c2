"""One base for every model's settings, and one loader: YAML file, keyword overrides, validation.

``ModelSettings`` holds what every backend shares (weights, device, dtype, batch size, the generation
budget per task type, the chat template and the system prompt) and checks it; ``TransformersSettings``
and ``ServedSettings`` extend it. ``load_settings(cls, path, **overrides)`` reads a YAML file with
``submission.yamlio`` (file, line and "did you mean" for every mistake), applies keyword overrides and
builds ``cls``; without a file the dataclass defaults apply, which equal the shipped YAML files'
(``models/baseline.yaml``, ``models/served.yaml``; a test keeps them equal).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError
from ..yamlio import (
    is_int,
    locate,
    read_mapping,
    reject_unknown,
    require,
    require_choice,
    with_overrides,
)

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "float16", "bfloat16")
MAX_BATCH_SIZE = 16
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful online shopping assistant. Answer the question and follow the given instructions "
    "exactly. Be brief."
)
ARGUMENTS = "<arguments>"  # the source named in errors when the settings come from keyword arguments


@dataclass(frozen=True)
class GenerationBudget:
    """``max_new_tokens`` per inferred task type; multiple choice never generates."""

    retrieval: int = 10
    ranking: int = 14
    ner: int = 16
    generation: int = 64

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            require(is_int(value) and 1 <= value <= 4096, f"max_new_tokens.{name}", value, "an int from 1 to 4096")


BUDGET_KEYS = tuple(f.name for f in dataclasses.fields(GenerationBudget))


@dataclass(frozen=True)
class ModelSettings:
    """The settings every backend shares. ``base_dir`` is where relative paths resolve (the YAML file's
    folder; the current folder for settings built without a file); it is not a YAML key."""

    weights: str = "smollm2"
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 16
    max_new_tokens: GenerationBudget = field(default_factory=GenerationBudget)
    use_chat_template: bool = True
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    base_dir: Path = field(default_factory=Path.cwd, repr=False)

    # what the file is, for messages ("the transformers settings")
    WHAT = "model settings"

    def __post_init__(self) -> None:
        require(isinstance(self.weights, str) and self.weights, "weights", self.weights,
                "'smollm2' or a model folder path")
        require_choice("device", self.device, DEVICES)
        require_choice("dtype", self.dtype, DTYPES)
        require(is_int(self.batch_size) and 1 <= self.batch_size <= MAX_BATCH_SIZE, "batch_size", self.batch_size,
                f"an int from 1 to {MAX_BATCH_SIZE}")
        require(isinstance(self.max_new_tokens, GenerationBudget), "max_new_tokens", self.max_new_tokens,
                "a mapping of retrieval, ranking, ner, generation to ints")
        require(isinstance(self.use_chat_template, bool), "use_chat_template", self.use_chat_template,
                "true or false")
        require(isinstance(self.system_prompt, str), "system_prompt", self.system_prompt, "a string")

    @classmethod
    def keys(cls) -> list[str]:
        """The YAML keys, in the dataclass's order."""
        return [f.name for f in dataclasses.fields(cls) if f.name != "base_dir"]

    @classmethod
    def normalise(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Plain data as YAML gives it -> the dataclass's field values (a subclass adds its own shapes)."""
        return values

    def relative(self, path: str) -> Path:
        """``path`` with ``~`` expanded, relative to ``base_dir``."""
        resolved = Path(path).expanduser()
        return resolved if resolved.is_absolute() else self.base_dir / resolved


S = TypeVar("S", bound=ModelSettings)


def merge_budget(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` with a ``max_new_tokens`` mapping merged key by key into the one of ``data``."""
    budget = overrides.get("max_new_tokens")
    if isinstance(budget, Mapping) and isinstance(data.get("max_new_tokens"), Mapping):
        return {**overrides, "max_new_tokens": {**data["max_new_tokens"], **budget}}
    return dict(overrides)


def load_settings(cls: type[S], path: str | Path | None = None, base_dir: Path | None = None,
                  **overrides: Any) -> S:
    """``cls`` from the YAML file ``path`` with keyword ``overrides`` on top; without a file, from the
    dataclass defaults and the overrides (relative paths then resolve from ``base_dir``, default the
    current folder)."""
    if path is None:
        return settings_from_mapping(cls, overrides, base_dir=base_dir)
    document = read_mapping(path, cls.WHAT)
    data, source, lines = with_overrides(document, merge_budget(document.data, overrides))
    return settings_from_mapping(cls, data, source, lines, Path(path).resolve().parent)


def settings_from_mapping(cls: type[S], data: Mapping[str, Any], source: str = ARGUMENTS,
                          lines: Mapping[str, int] | None = None, base_dir: Path | None = None) -> S:
    """Build ``cls`` from plain data, refusing unknown keys; every error names ``source`` and the key's line."""
    lines = lines or {}
    values = cls.normalise(dict(data))
    reject_unknown(values, cls.keys(), source, lines)
    budget = values.get("max_new_tokens")
    if isinstance(budget, Mapping):
        reject_unknown(budget, BUDGET_KEYS, source, lines, prefix="max_new_tokens.")
    try:
        if isinstance(budget, Mapping):
            values["max_new_tokens"] = GenerationBudget(**budget)
        return cls(**values, base_dir=base_dir if base_dir is not None else Path.cwd())
    except ConfigError as error:
        raise locate(error, source, lines) from None
