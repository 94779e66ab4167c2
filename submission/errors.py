"""Errors the kit raises for bad input. Each message names the file, line or field and the fix."""


class KitError(Exception):
    """Base class: bad input or configuration that the user can fix."""


class DataError(KitError):
    """A data file (questions or predictions) is malformed."""


class ModelOutputError(KitError):
    """A model broke the interface contract (wrong count, non-string answer, bad batch size)."""


class ConfigError(KitError):
    """A configuration value (metric, embedding model, profile) is unknown or unusable."""
