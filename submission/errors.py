"""The kit's errors: one family under ``KitError``, each message naming the file, line or field and the fix.

    KitError            bad input, configuration, weights or server that the user can fix
      ConfigError       a setting (YAML key, flag, environment variable) is unknown or unusable
      DataError         a data file (questions, predictions, a container's report) is malformed
      ModelOutputError  a model broke the interface contract (wrong count, non-string answer, bad batch size)
      WeightsError      model weights cannot be found or prepared
      ServerError       a served model's server failed, or answered what a ShopBench model cannot use
      LimitsError       a limit cannot be enforced here as asked (e.g. a server that would size itself
                        past the GPU memory cap)

A command catches ``KitError`` once and prints its one-line message; nothing the kit raises for bad
input derives from anything else. ``suggest`` and ``suggest_path`` give the "did you mean" of a message
(the closest known name; the closest existing path).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path


class KitError(Exception):
    """Base class: bad input or configuration that the user can fix."""


class ConfigError(KitError):
    """A configuration value (setting, metric, embedding model, profile) is unknown or unusable.

    ``key`` names the setting when there is one (``"batch_size"``, ``"max_new_tokens.ner"``), so that a
    reader of a YAML file can add "file, line N" without parsing the message.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DataError(KitError):
    """A data file (questions or predictions) is malformed."""


class ModelOutputError(KitError):
    """A model broke the interface contract (wrong count, non-string answer, bad batch size)."""


class WeightsError(KitError):
    """The weights could not be found or prepared; the message says what to install or where to put them."""


class ServerError(KitError):
    """A served model's server failed, or answered what a ShopBench model cannot use."""


class LimitsError(KitError):
    """A limit cannot be enforced as asked; the message says how to make it enforceable."""


def suggest(name: str, known: list[str] | tuple[str, ...]) -> str:
    """A 'did you mean' hint for an unknown name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def near_path(path: str | Path, base: str | Path | None = None) -> str | None:
    """The existing path nearest to ``path``, spelled as ``path`` is (relative stays relative), or None.

    A relative ``path`` is looked up from ``base`` (default: the current folder). Each part that does not
    exist is replaced by the closest name in its folder (``../adapter/try1`` -> ``../adapters/try1``,
    ``data/develpment.json`` -> ``data/development.json``); None when a part has no close name or the
    result does not exist either."""
    given = Path(path).expanduser()
    parts = list(given.parts)
    fixed = parts[:1] if given.is_absolute() else []
    probe = Path(parts[0]) if given.is_absolute() else Path(base) if base is not None else Path(".")
    for part in parts[len(fixed):]:
        candidate = probe / part
        if not os.path.lexists(candidate):
            try:
                names = [entry.name for entry in os.scandir(probe)]
            except OSError:
                return None
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
            if not close:
                return None
            part, candidate = close[0], probe / close[0]
        fixed.append(part)
        probe = candidate
    spelled = str(Path(*fixed)) if fixed else "."
    return spelled if spelled != str(given) and probe.exists() else None


def suggest_path(path: str | Path, base: str | Path | None = None) -> str:
    """A 'did you mean' hint for a path that does not exist (relative ones looked up from ``base``), or ''."""
    near = near_path(path, base)
    return f"did you mean '{near}'? " if near else ""
