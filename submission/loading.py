"""Finding the participant's model class: ``models.user_config.UserModel`` or a ``module:Class`` path."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from .errors import ConfigError

DEFAULT_MODEL = "models.user_config:UserModel"


def load_model_class(spec: str | None = None, repo: str | Path = "."):
    """Import the class named by ``spec`` ('module:Class'; default: models.user_config:UserModel)."""
    spec = spec or DEFAULT_MODEL
    module_name, sep, class_name = spec.partition(":")
    if not sep:
        module_name, _, class_name = spec.rpartition(".")
    if not module_name or not class_name:
        raise ConfigError(f"--model '{spec}': expected 'module:Class', e.g. models.dummy_model:DummyModel")
    repo = str(Path(repo).resolve())
    if repo not in sys.path:
        sys.path.insert(0, repo)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"cannot import '{module_name}' (for model '{spec}'): {exc}. Check the module path, "
            "relative to the repository root, and that its dependencies are installed"
        ) from exc
    if not hasattr(module, class_name):
        hint = "assign your model class to UserModel in models/user_config.py" if class_name == "UserModel" else ""
        raise ConfigError(f"{module.__file__}: defines no '{class_name}'. {hint}".strip())
    return getattr(module, class_name)
