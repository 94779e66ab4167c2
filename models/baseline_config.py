"""The transformers baseline's settings: a frozen dataclass loaded from YAML, unknown keys refused.

``load_config(path, **overrides)`` reads ``models/baseline.yaml`` (or your copy) with
``yaml.safe_load``, applies keyword overrides, and validates every value, naming the file, the key
and its line when something is wrong.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG_PATH = MODELS_DIR / "baseline.yaml"

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "float16", "bfloat16")
QUANTIZATIONS = ("none", "8bit", "4bit")
DEVICE_MAPS = (None, "auto")
ATTENTIONS = ("eager", "sdpa", "flash_attention_2")
MAX_BATCH_SIZE = 16
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful online shopping assistant. Answer the question and follow the given instructions "
    "exactly. Be brief."
)


class ConfigError(ValueError):
    """A baseline setting is unknown or invalid; the message names the file, key and line."""


@dataclass(frozen=True)
class GenerationBudget:
    """``max_new_tokens`` per inferred task type; multiple choice never generates."""

    retrieval: int = 10
    ranking: int = 14
    ner: int = 16
    generation: int = 64

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            _require(isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096,
                     f"max_new_tokens.{name}", value, "an int from 1 to 4096")


@dataclass(frozen=True)
class BaselineConfig:
    """Everything the baseline reads from YAML. See models/baseline.yaml for each key's meaning.

    The defaults here are those of models/baseline.yaml (a test keeps the two equal).
    """

    weights: str = "smollm2"
    device: str = "auto"
    dtype: str = "auto"
    quantization: str = "none"
    lora_adapter: str | None = None
    merge_lora: bool = False
    device_map: str | None = None
    attn_implementation: str = "sdpa"
    batch_size: int = 16
    max_batch_tokens: int = 4096
    mc_length_ratio: float = 1.25
    max_new_tokens: GenerationBudget = field(default_factory=GenerationBudget)
    use_chat_template: bool = True
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    seed: int = 2024
    base_dir: Path = field(default=MODELS_DIR, repr=False)  # where relative paths resolve; not a YAML key

    def __post_init__(self) -> None:
        _require(isinstance(self.weights, str) and self.weights, "weights", self.weights,
                 "'smollm2' or a model folder path")
        _require_choice("device", self.device, DEVICES)
        _require_choice("dtype", self.dtype, DTYPES)
        _require_choice("quantization", self.quantization, QUANTIZATIONS)
        _require_choice("device_map", self.device_map, DEVICE_MAPS)
        _require_choice("attn_implementation", self.attn_implementation, ATTENTIONS)
        _require(self.lora_adapter is None or (isinstance(self.lora_adapter, str) and self.lora_adapter),
                 "lora_adapter", self.lora_adapter, "null or an adapter folder path")
        for name in ("merge_lora", "use_chat_template"):
            _require(isinstance(getattr(self, name), bool), name, getattr(self, name), "true or false")
        _require(_is_int(self.batch_size) and 1 <= self.batch_size <= MAX_BATCH_SIZE, "batch_size",
                 self.batch_size, f"an int from 1 to {MAX_BATCH_SIZE}")
        _require(_is_int(self.max_batch_tokens) and self.max_batch_tokens >= 1, "max_batch_tokens",
                 self.max_batch_tokens, "a positive int")
        _require(isinstance(self.mc_length_ratio, (int, float)) and not isinstance(self.mc_length_ratio, bool)
                 and self.mc_length_ratio >= 1, "mc_length_ratio", self.mc_length_ratio, "a number >= 1")
        _require(isinstance(self.max_new_tokens, GenerationBudget), "max_new_tokens", self.max_new_tokens,
                 "a mapping of retrieval, ranking, ner, generation to ints")
        _require(isinstance(self.system_prompt, str), "system_prompt", self.system_prompt, "a string")
        _require(_is_int(self.seed), "seed", self.seed, "an int")
        if self.device_map == "auto" and self.device == "cpu":
            raise ConfigError("device_map: auto splits a model across GPUs; it needs device: cuda or auto")


def load_config(path: str | Path | None = None, **overrides: Any) -> BaselineConfig:
    """Read a baseline YAML file (default ``models/baseline.yaml``) and apply keyword overrides."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    text, data = read_yaml_mapping(path, "baseline config")
    data, source, lines = apply_overrides(path, text, data, overrides)
    return config_from_mapping(data, source=source, lines=lines, base_dir=path.resolve().parent)


def read_yaml_mapping(path: Path, what: str, error: type[Exception] = ConfigError) -> tuple[str, dict[str, Any]]:
    """A YAML config file's text and its top-level mapping; an unreadable file, malformed YAML or
    anything but a mapping is refused with the file's path (as ``error``: the caller's ConfigError)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of keys to values, found {type(data).__name__}")
    return text, data


def apply_overrides(path: Path, text: str, data: dict[str, Any],
                    overrides: Mapping[str, Any]) -> tuple[dict[str, Any], str, dict[str, int]]:
    """The file's values with keyword overrides on top (a ``max_new_tokens`` mapping merged key by key),
    the source to name in errors, and the line of each key that still comes from the file."""
    budget = overrides.get("max_new_tokens")
    if isinstance(budget, Mapping) and isinstance(data.get("max_new_tokens"), Mapping):
        overrides = {**overrides, "max_new_tokens": {**data["max_new_tokens"], **budget}}
    lines = {key: line for key, line in _key_lines(text).items() if key not in overrides}
    source = f"{path} (keyword overrides: {', '.join(sorted(overrides))})" if overrides else str(path)
    return {**data, **overrides}, source, lines


def config_from_mapping(data: Mapping[str, Any], source: str = "<arguments>",
                        lines: Mapping[str, int] | None = None, base_dir: Path = MODELS_DIR) -> BaselineConfig:
    """Build a ``BaselineConfig`` from plain data, refusing unknown keys with a "did you mean" hint."""
    lines = lines or {}
    known = [f.name for f in dataclasses.fields(BaselineConfig) if f.name != "base_dir"]
    values = dict(data)
    _reject_unknown(values, known, source, lines)
    budget = values.get("max_new_tokens")
    try:
        if isinstance(budget, Mapping):
            known_budget = [f.name for f in dataclasses.fields(GenerationBudget)]
            _reject_unknown(budget, known_budget, source, lines, prefix="max_new_tokens.")
            values["max_new_tokens"] = GenerationBudget(**budget)
        return BaselineConfig(**values, base_dir=base_dir)
    except ConfigError as error:
        key = str(error).split(":", 1)[0]
        where = f"{source}, line {lines[key.split('.')[0]]}" if key.split(".")[0] in lines else source
        raise ConfigError(f"{where}: {error}") from None


def _reject_unknown(values: Mapping[str, Any], known: list[str], source: str,
                    lines: Mapping[str, int], prefix: str = "") -> None:
    for key in values:
        if key in known:
            continue
        where = f"{source}, line {lines[key]}" if key in lines else source
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
        raise ConfigError(f"{where}: unknown key '{prefix}{key}'{hint} known keys: {', '.join(known)}")


def _key_lines(text: str) -> dict[str, int]:
    """Line numbers (1-based) of the top-level keys of a YAML mapping, for error messages."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, found {value!r}")


def _require_choice(key: str, value: Any, choices: tuple) -> None:
    shown = ", ".join("null" if choice is None else str(choice) for choice in choices)
    _require(value in choices, key, value, f"one of {shown}")
