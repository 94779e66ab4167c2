"""JSON the kit writes: always valid UTF-8, always strict JSON, written atomically where it is a file
(through ``fileio.replace_file``: never through a symlink or a FIFO at the name).

A model may return any Python string, lone surrogates ("\\ud800") included, which UTF-8 cannot encode:
such a text is written with JSON escapes instead, so it reads back exactly as it was. Non-finite numbers
(NaN, Infinity) are not JSON: they are written as null, and ``allow_nan=False`` guards the rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .fileio import replace_file


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float inside it (dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text that encodes to UTF-8: readable characters as they are, lone surrogates escaped."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, allow_nan=False, **kwargs)
    return text


def lines_bytes(records: Iterable[Any]) -> bytes:
    """JSON Lines as UTF-8 bytes, one record per line (a lone surrogate escaped, in its own record only)."""
    lines = [json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n" for record in records]
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError:
        return "".join(line if printable(line) == line else dumps(json.loads(line)) + "\n"
                       for line in lines).encode("utf-8")


def printable(text: str) -> str:
    """``text`` safe to print or write as UTF-8: a lone surrogate becomes its escape (``\\ud800``)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def write_json(path: str | Path, content: Any) -> None:
    """Write ``content`` as indented strict JSON, atomically (a crash leaves the old file intact).

    Non-finite numbers become null; anything else json cannot encode is written as its ``str``.
    """
    replace_file(path, dumps(finite(content), indent=2, default=str) + "\n")
