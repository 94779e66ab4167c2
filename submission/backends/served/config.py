"""The served backend's settings: ``ModelSettings`` plus the server (launch or base URL), requests and memory.

``models/served.yaml`` documents every key; ``load_served_settings(path, **overrides)`` reads such a file
the way every model's settings are read (``settings.load_settings``: file, key, line, "did you mean").
The dataclass defaults equal the shipped file's: ``transformers serve`` launched on the default weights.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...yamlio import is_int, is_number, require
from ..settings import ModelSettings, load_settings

APIS = ("chat", "completions")
MC_METHODS = ("structured_outputs", "top_logprobs", "logit_bias", "generate")
PLACEHOLDERS = ("host", "port", "weights", "python", "device", "dtype", "gpu_memory_utilization", "fit_target_mib")
REQUIRED_PLACEHOLDERS = ("host", "port")
DEFAULT_LAUNCH = "transformers serve {weights} --host {host} --port {port} --device {device} --dtype {dtype}"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class ServedSettings(ModelSettings):
    """Everything ``ServedModel`` reads; see models/served.yaml for each key's meaning."""

    launch: str | None = DEFAULT_LAUNCH
    base_url: str | None = None
    api_key_env: str | None = None
    model: str = "auto"
    api: str = "chat"
    tokenizer: str | None = "auto"
    env: Mapping[str, str] = field(default_factory=lambda: dict(OFFLINE_ENV))
    startup_timeout_s: float = 300.0
    shutdown_grace_s: float = 30.0
    request_timeout_s: float = 600.0
    max_retries: int = 3
    retry_backoff_s: float = 0.5
    max_concurrency: int = 16
    multiple_choice: tuple[str, ...] = MC_METHODS
    mc_max_new_tokens: int = 8
    gpu_memory_utilization: float | str = "auto"
    gpu_memory_margin_gib: float | str = "auto"
    log_file: str | None = None

    WHAT = "served-model settings"

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.launch is None) == (self.base_url is None):
            raise ConfigError("launch, base_url: expected exactly one of them (launch: a command that starts a "
                              f"server; base_url: a running server), found launch={self.launch!r}, "
                              f"base_url={self.base_url!r}", key="launch")
        if self.launch is not None:
            check_launch(self.launch)
        if self.base_url is not None:
            require(isinstance(self.base_url, str) and re.match(r"https?://[^/\s]+", self.base_url) is not None,
                    "base_url", self.base_url, "an http:// or https:// URL, e.g. http://127.0.0.1:8000")
        require(self.api_key_env is None or (isinstance(self.api_key_env, str) and self.api_key_env.isidentifier()),
                "api_key_env", self.api_key_env, "null or the name of an environment variable")
        require(isinstance(self.model, str) and self.model, "model", self.model, "a non-empty string")
        require(self.tokenizer is None or (isinstance(self.tokenizer, str) and self.tokenizer), "tokenizer",
                self.tokenizer, "auto, null or a tokenizer folder")
        require(self.api in APIS, "api", self.api, f"one of {', '.join(APIS)}")
        require(isinstance(self.env, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in self.env.items()),
                "env", self.env, 'a mapping of names to strings (quote numbers: HF_HUB_OFFLINE: "1")')
        self._check_numbers()
        require(isinstance(self.multiple_choice, tuple) and self.multiple_choice
                and all(m in MC_METHODS for m in self.multiple_choice), "multiple_choice", self.multiple_choice,
                f"a list of methods to try in order, from {', '.join(MC_METHODS)}")
        require(self.log_file is None or isinstance(self.log_file, str), "log_file", self.log_file,
                "null or a file path")

    def _check_numbers(self) -> None:
        for name in ("startup_timeout_s", "shutdown_grace_s", "request_timeout_s"):
            require(is_number(getattr(self, name)) and getattr(self, name) > 0, name, getattr(self, name),
                    "a positive number of seconds")
        require(is_number(self.retry_backoff_s) and self.retry_backoff_s >= 0, "retry_backoff_s",
                self.retry_backoff_s, "a number of seconds >= 0")
        require(is_int(self.max_retries) and 0 <= self.max_retries <= 10, "max_retries", self.max_retries,
                "an int from 0 to 10")
        require(is_int(self.max_concurrency) and 1 <= self.max_concurrency <= 256, "max_concurrency",
                self.max_concurrency, "an int from 1 to 256")
        require(is_int(self.mc_max_new_tokens) and 1 <= self.mc_max_new_tokens <= 256, "mc_max_new_tokens",
                self.mc_max_new_tokens, "an int from 1 to 256")
        fraction = self.gpu_memory_utilization
        require(fraction == "auto" or (is_number(fraction) and 0 < fraction <= 1), "gpu_memory_utilization",
                fraction, "auto or a fraction in (0, 1]")
        margin = self.gpu_memory_margin_gib
        require(margin == "auto" or (is_number(margin) and margin >= 0), "gpu_memory_margin_gib", margin,
                "auto (the engine's own: vLLM 1, SGLang 3, llama.cpp 1) or a number of GiB >= 0")

    @classmethod
    def normalise(cls, values: dict[str, Any]) -> dict[str, Any]:
        """YAML's shapes -> the fields': a list of methods becomes a tuple, ``env: null`` no variables, and a
        ``base_url`` given without ``launch`` replaces the default launch command (and the other way round)."""
        methods = values.get("multiple_choice")
        if isinstance(methods, (list, str)):
            values["multiple_choice"] = tuple([methods] if isinstance(methods, str) else methods)
        if "env" in values and values["env"] is None:
            values["env"] = {}
        if values.get("base_url") is not None and "launch" not in values:
            values["launch"] = None
        return values


def check_launch(command: Any) -> None:
    """A launch command: a string that splits into words, with only known placeholders, {host} and {port}
    among them (the launcher chooses both: 127.0.0.1 and a reserved free port)."""
    require(isinstance(command, str) and command.strip(), "launch", command, "a command line string")
    try:
        shlex.split(command)
    except ValueError as error:
        raise ConfigError(f"launch: cannot split {command!r} into words ({error}); check its quotes",
                          key="launch") from None
    found = _PLACEHOLDER.findall(command)
    unknown = sorted(set(found) - set(PLACEHOLDERS))
    if unknown:
        raise ConfigError(f"launch: unknown placeholder {{{unknown[0]}}}; known: "
                          + ", ".join("{" + name + "}" for name in PLACEHOLDERS), key="launch")
    missing = [name for name in REQUIRED_PLACEHOLDERS if name not in found]
    if missing:
        raise ConfigError(f"launch: expected the placeholders {{host}} and {{port}} (the launcher binds the server "
                          f"to 127.0.0.1 on a port it reserves), found no {{{missing[0]}}} in {command!r}",
                          key="launch")


def load_served_settings(path: str | Path | None = None, base_dir: Path | None = None,
                         **overrides: Any) -> ServedSettings:
    """Read served-model settings from a YAML file (None: the defaults) and apply keyword overrides.

    ``launch=`` or ``base_url=`` as an override replaces the other one from the file.
    """
    if overrides.get("base_url") is not None and "launch" not in overrides:
        overrides = {**overrides, "launch": None}
    if overrides.get("launch") is not None and "base_url" not in overrides:
        overrides = {**overrides, "base_url": None}
    return load_settings(ServedSettings, path, base_dir=base_dir, **overrides)
