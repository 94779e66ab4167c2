"""The one YAML reader for the kit's configuration files: model settings, fine-tuning, hardware profiles.

Every file is read the same way and every mistake is told the same way:

- ``read_mapping``: UTF-8, ``yaml.safe_load`` only (no tag that builds objects), the document must be a
  mapping; an unreadable file, a syntax error (with its line and column) or another shape is a
  ``ConfigError`` naming the file;
- ``YamlMapping.lines``: the line of every key, nested keys as dotted paths (``max_new_tokens.ner``),
  so that an error about a setting names the line it is on;
- ``reject_unknown``: the one unknown-key rule: file and line, a "did you mean", the known keys;
- ``locate``: a ``ConfigError`` raised about a setting (its ``key``) gets "file, line N" in front;
- ``require``, ``is_int``, ``is_number``: the value checks the settings classes share, each error
  naming its key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from .errors import ConfigError, suggest


@dataclass(frozen=True)
class YamlMapping:
    """A configuration file's top-level mapping and the line of each key (dotted paths for nested keys)."""

    path: Path
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)


def read_mapping(path: str | Path, what: str) -> YamlMapping:
    """Read ``path`` (``what`` it is, for messages: "the fine-tuning config") as a YAML mapping."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{_syntax_where(path, exc)}: not valid YAML ({_syntax_reason(exc)})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, found {type(data).__name__}")
    return YamlMapping(path, data, key_lines(text))


def _syntax_where(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)


def _syntax_reason(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    if problem is None:
        return str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    reason = f"{context}: {problem}" if context else problem
    if isinstance(exc, yaml.constructor.ConstructorError):
        reason += "; only plain YAML is read, no tag that builds objects"
    return reason


def key_lines(text: str) -> dict[str, int]:
    """The line (1-based) of every key of a YAML mapping, nested keys as dotted paths; {} if it is not one."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if node is None:
        return {}
    lines: dict[str, int] = {}

    def walk(mapping: yaml.Node, prefix: str) -> None:
        if not isinstance(mapping, yaml.MappingNode):
            return
        for key, value in mapping.value:
            if isinstance(key, yaml.ScalarNode):
                lines[prefix + key.value] = key.start_mark.line + 1
                walk(value, f"{prefix}{key.value}.")

    walk(node, "")
    return lines


def with_overrides(document: YamlMapping, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], str, dict[str, int]]:
    """The file's values with ``overrides`` on top, the source to name in errors, and the lines of the keys
    that still come from the file."""
    lines = {key: line for key, line in document.lines.items() if key.split(".")[0] not in overrides}
    source = f"{document.path} (keyword overrides: {', '.join(sorted(overrides))})" if overrides else str(document.path)
    return {**document.data, **overrides}, source, lines


def where(source: str, lines: Mapping[str, int], key: str | None) -> str:
    """``source, line N`` for ``key`` (or the nearest key above it that has a line), else ``source``."""
    parts = str(key).split(".") if key else []
    while parts:
        line = lines.get(".".join(parts))
        if line is not None:
            return f"{source}, line {line}"
        parts.pop()
    return source


def locate(error: ConfigError, source: str, lines: Mapping[str, int]) -> ConfigError:
    """``error`` with "source, line N: " in front, the line being that of the setting it names (``error.key``)."""
    return ConfigError(f"{where(source, lines, error.key)}: {error}", key=error.key)


def reject_unknown(values: Mapping[Any, Any], known: Sequence[str], source: str, lines: Mapping[str, int],
                   prefix: str = "", at: str | None = None, context: str = "") -> None:
    """The one unknown-key rule: the first key of ``values`` not in ``known`` is refused with its file and
    line, the closest known key and the list of known keys.

    ``prefix`` is the dotted name of a nested mapping as the message shows it (``lora.``); ``at`` its path
    in the file, for the line (default ``prefix``); ``context`` follows the file and line (": profile 'x'").
    """
    named = [prefix + name for name in known]
    at = prefix if at is None else at
    for key in values:
        if key in known:
            continue
        dotted = f"{prefix}{key}"
        raise ConfigError(f"{where(source, lines, f'{at}{key}')}{context}: unknown key '{dotted}'; "
                          f"{suggest(dotted, named)}known keys: {', '.join(named)}", key=f"{at}{key}")


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require(ok: object, key: str, value: Any, expected: str) -> None:
    """Refuse ``value`` of setting ``key`` unless ``ok`` (its truth value): "key: expected ..., found ..."."""
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, found {value!r}", key=key)


def require_choice(key: str, value: Any, choices: Sequence[Any]) -> None:
    shown = ", ".join("null" if choice is None else str(choice) for choice in choices)
    require(value in choices, key, value, f"one of {shown}")
