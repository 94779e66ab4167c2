"""Finding the participant's model class: ``models.user_config.UserModel`` or a ``module:Class`` path.

``load_model_class`` imports the module and returns the class, never an instance: the grader calls
``UserModel()`` itself. Every mistake gets its own message in the participant's terms: a file path
instead of a module path, a module without ``:Class``, a class name typo (with "did you mean" and the
classes the module defines), an instance instead of a class. A module that raises while it is imported
is the participant's code failing (``ModelImportError``): its traceback is shown from the participant's
own frames down (``participant_traceback``). ``check_model_settings`` runs a class's optional
``check_settings()`` hook (``interface.ShopBenchBaseModel``) before a run.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from .errors import ConfigError, KitError, suggest

DEFAULT_MODEL = "models.user_config:UserModel"
KIT_PACKAGE = str(Path(__file__).resolve().parent)


class ModelImportError(KitError):
    """The model's module raised while it was imported; ``traceback`` is the participant's part of it."""

    def __init__(self, message: str, traceback_text: str):
        super().__init__(message)
        self.traceback = traceback_text


def participant_traceback(exc: BaseException, full: bool = False) -> str:
    """The traceback of ``exc`` from the first frame outside the kit and importlib, down (all of it when
    ``full`` or when every frame is the kit's)."""
    tb = exc.__traceback__
    if not full:
        while tb is not None and (tb.tb_frame.f_code.co_filename.startswith((KIT_PACKAGE, "<frozen importlib"))):
            tb = tb.tb_next
    tb = tb or exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _module_and_class(spec: str) -> tuple[str, str]:
    module_name, sep, class_name = spec.partition(":")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        dotted = module_name.removesuffix(".py").replace("\\", "/").strip("/").removeprefix("./").replace("/", ".")
        raise ConfigError(f"--model '{spec}': give the module's import path, not a file: "
                          f"'{dotted}:{class_name or 'YourClass'}'")
    if sep:
        if not module_name or not class_name:
            raise ConfigError(f"--model '{spec}': expected 'module:Class', e.g. models.dummy_model:DummyModel")
        return module_name, class_name
    if _find(spec) is not None:
        raise ConfigError(f"--model '{spec}' names a module; write 'module:Class', e.g. '{spec}:"
                          f"{_first_class(spec) or 'YourClass'}'{_classes_hint(spec)}")
    module_name, _, class_name = spec.rpartition(".")  # the dotted form: models.dummy_model.DummyModel
    if not module_name:
        raise ConfigError(f"--model '{spec}': expected 'module:Class', e.g. models.dummy_model:DummyModel")
    return module_name, class_name


def _find(dotted: str) -> importlib.machinery.ModuleSpec | None:
    """``importlib.util.find_spec``, or None when the module (or a package above it) does not exist."""
    try:
        return importlib.util.find_spec(dotted)
    except (ImportError, ValueError, AttributeError):
        return None


def _import(module_name: str, spec: str, repo: str) -> ModuleType:
    if _find(module_name) is None:
        raise ConfigError(f"cannot import '{module_name}' (for model '{spec}'): no such module under {repo}. The "
                          "module path is relative to the repository root, e.g. models.my_model for "
                          "models/my_model.py")
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # the participant's module failed while being imported
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ModelImportError(f"importing {spec} raised {type(exc).__name__}: {first}".rstrip(": "),
                               participant_traceback(exc)) from exc


def defined_classes(module: ModuleType) -> list[str]:
    """The classes ``module`` defines itself (not the ones it imports)."""
    return [name for name, value in vars(module).items()
            if isinstance(value, type) and value.__module__ == module.__name__ and not name.startswith("_")]


def _first_class(module_name: str) -> str | None:
    try:
        classes = defined_classes(importlib.import_module(module_name))
    except Exception:  # noqa: BLE001 - only a hint
        return None
    return classes[0] if classes else None


def _classes_hint(module_name: str) -> str:
    try:
        classes = defined_classes(importlib.import_module(module_name))
    except Exception:  # noqa: BLE001 - only a hint
        return ""
    return f"; it defines {', '.join(classes)}" if classes else ""


def _resolve(module: ModuleType, class_name: str, spec: str) -> type:
    where = module.__file__ or module.__name__
    if not hasattr(module, class_name):
        classes = defined_classes(module)
        if class_name == "UserModel":
            raise ConfigError(f"{where} defines no UserModel; add `UserModel = YourModelClass` (the class, not an "
                              "instance)")
        listed = f"classes it defines: {', '.join(classes)}" if classes else "it defines no class"
        raise ConfigError(f"{where} defines no '{class_name}' (for model '{spec}'); {suggest(class_name, classes)}"
                          f"{listed}")
    value = getattr(module, class_name)
    if not isinstance(value, type):
        kind = type(value).__name__
        fix = (f"write `{class_name} = {kind}`, not `{class_name} = {kind}()`" if kind not in ("module", "function")
               else "name a class")
        raise ConfigError(f"{where}: {class_name} must be a class (the grader calls {class_name}() itself), not "
                          f"a {kind}{' instance' if fix.startswith('write') else ''}; {fix}")
    return value


def load_model_class(spec: str | None = None, repo: str | Path = ".") -> type:
    """Import the class named by ``spec`` ('module:Class'; default: models.user_config:UserModel).

    Raises ConfigError for a mistake in naming the model, ModelImportError when its module raises.
    """
    spec = spec or DEFAULT_MODEL
    repo = str(Path(repo).resolve())
    if repo not in sys.path:
        sys.path.insert(0, repo)
    module_name, class_name = _module_and_class(spec)
    return _resolve(_import(module_name, spec, repo), class_name, spec)


def check_model_settings(model_class: type, spec: str | None = None) -> None:
    """Call ``model_class.check_settings()`` when the class has one (the kit's backends read and check their
    YAML file and the folders it names, loading nothing): a KitError passes through as bad input; any other
    exception becomes a ConfigError naming the hook."""
    hook = getattr(model_class, "check_settings", None)
    if not callable(hook):
        return
    try:
        hook()
    except KitError:
        raise
    except Exception as exc:  # the participant's own check: its message, as bad input
        first = (str(exc).strip().splitlines() or [""])[0][:500]
        raise ConfigError(f"{spec or model_class.__name__}: {model_class.__name__}.check_settings() raised "
                          f"{type(exc).__name__}: {first}".rstrip(": ")) from exc
