"""Errors the kit raises for bad input. Each message names the file, line or field and the fix."""

from __future__ import annotations

import difflib


class KitError(Exception):
    """Base class: bad input or configuration that the user can fix."""


class DataError(KitError):
    """A data file (questions or predictions) is malformed."""


class ModelOutputError(KitError):
    """A model broke the interface contract (wrong count, non-string answer, bad batch size)."""


class ConfigError(KitError):
    """A configuration value (metric, embedding model, profile) is unknown or unusable."""


def suggest(name: str, known: list[str] | tuple[str, ...]) -> str:
    """A 'did you mean' hint for an unknown name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""
