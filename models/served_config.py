"""The served model's settings: a frozen dataclass loaded from ``models/served.yaml``, unknown keys refused.

Loaded the way the baseline's settings are (``models/baseline_config.py``): ``yaml.safe_load``, keyword
overrides on top, and every error naming the file, the key and its line, with a "did you mean".
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.baseline_config import (
    DEFAULT_SYSTEM_PROMPT,
    MAX_BATCH_SIZE,
    ConfigError,
    GenerationBudget,
    _reject_unknown,
    apply_overrides,
    read_yaml_mapping,
)

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_SERVED_CONFIG = MODELS_DIR / "served.yaml"

APIS = ("chat", "completions")
MC_METHODS = ("structured_outputs", "top_logprobs", "logit_bias", "generate")
PLACEHOLDERS = ("host", "port", "weights", "python", "device", "dtype", "gpu_memory_utilization")
REQUIRED_PLACEHOLDERS = ("host", "port")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class ServedConfig:
    """Everything ``ServedModel`` reads; see models/served.yaml for each key's meaning."""

    launch: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    model: str = "auto"
    api: str = "chat"
    weights: str = "smollm2"
    tokenizer: str | None = "auto"
    device: str = "auto"
    dtype: str = "auto"
    env: Mapping[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 300.0
    shutdown_grace_s: float = 30.0
    request_timeout_s: float = 600.0
    max_retries: int = 3
    retry_backoff_s: float = 0.5
    batch_size: int = 16
    max_concurrency: int = 16
    multiple_choice: tuple[str, ...] = MC_METHODS
    mc_max_new_tokens: int = 8
    max_new_tokens: GenerationBudget = field(default_factory=GenerationBudget)
    use_chat_template: bool = True
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    gpu_memory_utilization: float | str = "auto"
    gpu_memory_margin_gib: float = 1.0
    log_file: str | None = None
    base_dir: Path = field(default=MODELS_DIR, repr=False)  # where relative paths resolve; not a YAML key

    def __post_init__(self) -> None:
        if (self.launch is None) == (self.base_url is None):
            raise ConfigError("launch, base_url: expected exactly one of them (launch: a command that starts a "
                              f"server; base_url: a running server), found launch={self.launch!r}, "
                              f"base_url={self.base_url!r}")
        if self.launch is not None:
            check_launch(self.launch)
        if self.base_url is not None:
            _require(isinstance(self.base_url, str) and re.match(r"https?://[^/\s]+", self.base_url) is not None,
                     "base_url", self.base_url, "an http:// or https:// URL, e.g. http://127.0.0.1:8000")
        _require(self.api_key_env is None or (isinstance(self.api_key_env, str) and self.api_key_env.isidentifier()),
                 "api_key_env", self.api_key_env, "null or the name of an environment variable")
        for name in ("model", "weights"):
            _require(isinstance(getattr(self, name), str) and getattr(self, name), name, getattr(self, name),
                     "a non-empty string")
        _require(self.tokenizer is None or (isinstance(self.tokenizer, str) and self.tokenizer), "tokenizer",
                 self.tokenizer, "auto, null or a tokenizer folder")
        _require(self.api in APIS, "api", self.api, f"one of {', '.join(APIS)}")
        _require(self.device in ("auto", "cpu", "cuda"), "device", self.device, "one of auto, cpu, cuda")
        _require(self.dtype in ("auto", "float32", "float16", "bfloat16"), "dtype", self.dtype,
                 "one of auto, float32, float16, bfloat16")
        _require(isinstance(self.env, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in self.env.items()),
                 "env", self.env, 'a mapping of names to strings (quote numbers: HF_HUB_OFFLINE: "1")')
        self._check_numbers()
        _require(isinstance(self.multiple_choice, tuple) and self.multiple_choice
                 and all(m in MC_METHODS for m in self.multiple_choice), "multiple_choice", self.multiple_choice,
                 f"a list of methods to try in order, from {', '.join(MC_METHODS)}")
        _require(isinstance(self.max_new_tokens, GenerationBudget), "max_new_tokens", self.max_new_tokens,
                 "a mapping of retrieval, ranking, ner, generation to ints")
        for name in ("use_chat_template",):
            _require(isinstance(getattr(self, name), bool), name, getattr(self, name), "true or false")
        _require(isinstance(self.system_prompt, str), "system_prompt", self.system_prompt, "a string")
        _require(self.log_file is None or isinstance(self.log_file, str), "log_file", self.log_file,
                 "null or a file path")

    def _check_numbers(self) -> None:
        for name in ("startup_timeout_s", "shutdown_grace_s", "request_timeout_s"):
            _require(_number(getattr(self, name)) and getattr(self, name) > 0, name, getattr(self, name),
                     "a positive number of seconds")
        _require(_number(self.retry_backoff_s) and self.retry_backoff_s >= 0, "retry_backoff_s",
                 self.retry_backoff_s, "a number of seconds >= 0")
        _require(_int(self.max_retries) and 0 <= self.max_retries <= 10, "max_retries", self.max_retries,
                 "an int from 0 to 10")
        _require(_int(self.batch_size) and 1 <= self.batch_size <= MAX_BATCH_SIZE, "batch_size", self.batch_size,
                 f"an int from 1 to {MAX_BATCH_SIZE}")
        _require(_int(self.max_concurrency) and 1 <= self.max_concurrency <= 256, "max_concurrency",
                 self.max_concurrency, "an int from 1 to 256")
        _require(_int(self.mc_max_new_tokens) and 1 <= self.mc_max_new_tokens <= 256, "mc_max_new_tokens",
                 self.mc_max_new_tokens, "an int from 1 to 256")
        fraction = self.gpu_memory_utilization
        _require(fraction == "auto" or (_number(fraction) and 0 < fraction <= 1), "gpu_memory_utilization",
                 fraction, "auto or a fraction in (0, 1]")
        _require(_number(self.gpu_memory_margin_gib) and self.gpu_memory_margin_gib >= 0, "gpu_memory_margin_gib",
                 self.gpu_memory_margin_gib, "a number of GiB >= 0")

    def relative(self, path: str) -> Path:
        """``path`` with ``~`` expanded, relative to the YAML file's folder."""
        resolved = Path(path).expanduser()
        return resolved if resolved.is_absolute() else self.base_dir / resolved


def check_launch(command: Any) -> None:
    """A launch command: a string that splits into words, with only known placeholders, {host} and {port}
    among them (the launcher chooses both: 127.0.0.1 and a reserved free port)."""
    _require(isinstance(command, str) and command.strip(), "launch", command, "a command line string")
    try:
        shlex.split(command)
    except ValueError as error:
        raise ConfigError(f"launch: cannot split {command!r} into words ({error}); check its quotes") from None
    found = _PLACEHOLDER.findall(command)
    unknown = sorted(set(found) - set(PLACEHOLDERS))
    if unknown:
        raise ConfigError(f"launch: unknown placeholder {{{unknown[0]}}}; known: "
                          + ", ".join("{" + name + "}" for name in PLACEHOLDERS))
    missing = [name for name in REQUIRED_PLACEHOLDERS if name not in found]
    if missing:
        raise ConfigError(f"launch: expected the placeholders {{host}} and {{port}} (the launcher binds the server "
                          f"to 127.0.0.1 on a port it reserves), found no {{{missing[0]}}} in {command!r}")


def load_served_config(path: str | Path | None = None, **overrides: Any) -> ServedConfig:
    """Read a served-model YAML file (default ``models/served.yaml``) and apply keyword overrides.

    ``launch=`` or ``base_url=`` as an override replaces the other one from the file.
    """
    path = Path(path) if path is not None else DEFAULT_SERVED_CONFIG
    text, data = read_yaml_mapping(path, "served-model config")
    if overrides.get("base_url") is not None and "launch" not in overrides:
        overrides = {**overrides, "launch": None}
    if overrides.get("launch") is not None and "base_url" not in overrides:
        overrides = {**overrides, "base_url": None}
    data, source, lines = apply_overrides(path, text, data, overrides)
    return served_config_from_mapping(data, source, lines, path.resolve().parent)


def served_config_from_mapping(data: Mapping[str, Any], source: str = "<arguments>",
                               lines: Mapping[str, int] | None = None, base_dir: Path = MODELS_DIR) -> ServedConfig:
    """Build a ``ServedConfig`` from plain data, refusing unknown keys with a "did you mean" hint."""
    lines = lines or {}
    known = [f.name for f in dataclasses.fields(ServedConfig) if f.name != "base_dir"]
    values = dict(data)
    _reject_unknown(values, known, source, lines)
    try:
        budget = values.get("max_new_tokens")
        if isinstance(budget, Mapping):
            _reject_unknown(budget, [f.name for f in dataclasses.fields(GenerationBudget)], source, lines,
                            prefix="max_new_tokens.")
            values["max_new_tokens"] = GenerationBudget(**budget)
        if isinstance(values.get("multiple_choice"), (list, str)):
            methods = values["multiple_choice"]
            values["multiple_choice"] = tuple([methods] if isinstance(methods, str) else methods)
        if values.get("env") is None and "env" in values:
            values["env"] = {}
        return ServedConfig(**values, base_dir=base_dir)
    except ConfigError as error:
        key = str(error).split(":", 1)[0].split(",")[0].split(".")[0]
        where = f"{source}, line {lines[key]}" if key in lines else source
        raise ConfigError(f"{where}: {error}") from None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, found {value!r}")
