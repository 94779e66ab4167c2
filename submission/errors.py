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
input derives from anything else.
"""

from __future__ import annotations

import difflib


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
