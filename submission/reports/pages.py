"""The Jinja2 environment of the HTML pages, and the formatting both pages share.

Templates live in ``templates/`` as ``.html`` files (``base.html`` holds the page frame and inlines
``style.css``); autoescaping is on, so every value a template prints is escaped unless it is already
markup. A page is one self-contained file: inline CSS, charts as base64 PNG, no scripts, no URLs.
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

from ..jsonio import dumps, printable

TEMPLATES = Path(__file__).with_name("templates")
PROMPT_HEAD, PROMPT_TAIL = 400, 300


def fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:,.1f} s" if value < 600 else f"{value / 60:,.1f} min"


def excerpt(text: str, head: int = PROMPT_HEAD, tail: int = PROMPT_TAIL) -> str:
    """The start and end of a long text (prompts end with the actual question), joined by an ellipsis."""
    if len(text) <= head + tail + 20:
        return text
    end = f"\n{text[-tail:]}" if tail else ""
    return f"{text[:head]}\n[... {len(text) - head - tail:,} characters left out ...]{end}"


def as_json(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value)


def png_base64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(fmt=fmt, seconds=fmt_seconds, excerpt=excerpt, as_json=as_json,
                       pct=lambda value: f"{value:.1%}")
    return env


def render(template: str, **context: Any) -> str:
    """The page as text that UTF-8 can encode (a lone surrogate in a model's output is shown escaped)."""
    return printable(environment().get_template(template).render(**context))
