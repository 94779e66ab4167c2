"""The layout shows the architecture: eight parts, imports pointing one way, no cycle, small modules, and
a models/ folder that stays the participant's.

Read from the source with ``ast`` (nothing is imported), so a forbidden import fails here even when no
test happens to execute it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from kit_paths import ROOT

PACKAGE = ROOT / "submission"
PARTS = ("scoring", "backends", "harness", "grading", "reports", "evaluate", "training", "cli")
# The shared top-level modules every part may use (the interface, the card, the YAML reader, errors...).
BASE = {"submission", "submission._lazy", "submission.errors", "submission.interface", "submission.card",
        "submission.cuda", "submission.environment", "submission.yamlio", "submission.jsonio", "submission.fileio"}
SHARED = BASE | {"submission.loading", "submission.__main__"}
# What each part may import besides the shared top-level modules and itself.
ALLOWED = {
    "scoring": set(),
    "backends": set(),
    "harness": {"submission.scoring.data"},
    "reports": {"scoring", "harness"},
    "evaluate": {"scoring", "harness", "reports"},  # the one pipeline: questions -> model run -> scores -> folder
    "grading": {"scoring", "harness", "reports", "evaluate"},
    "training": {"scoring", "harness", "reports", "evaluate", "backends"},
    "cli": {"scoring", "backends", "harness", "reports", "evaluate", "grading", "training"},  # the commands: anything
}
# A part that may use only BASE of the shared modules: the backends run in a model's image, and need no
# model loader nor command table.
BASE_ONLY = {"backends"}
MAX_LINES = 400
# models/: the participant's folder, the files the kit ships there and the kit modules they may import.
PARTICIPANT_FILES = {"__init__.py", "base_model.py", "user_config.py", "dummy_model.py", "README.md", "baseline.yaml",
                     "served.yaml", "finetune.yaml", "transformers_model.py", "served_model.py"}
PARTICIPANT_IMPORTS = {"submission.interface", "submission.backends"}
PARTICIPANT_MAX_CODE_LINES = 60


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def kit_imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module of the kit that ``path`` imports, at any depth of the file (lazy imports included)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "submission"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "submission":
                continue
            for alias in node.names:  # `from . import verdict` imports a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if (root / (candidate.replace(".", "/") + ".py")).is_file() else target)
    return found


def modules_under(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / "submission").rglob("*.py"))}


def find_cycle(root: Path) -> list[str] | None:
    """One import cycle among the modules of ``root``/submission, or None."""
    modules = modules_under(root)
    graph = {m: {t for t in kit_imports(p, root) if t in modules and t != m} for m, p in modules.items()}
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> list[str] | None:
        if module in stack:
            return stack[stack.index(module):] + [module]
        if module in done:
            return None
        for target in sorted(graph[module]):
            cycle = visit(target, stack + [module])
            if cycle:
                return cycle
        done.add(module)
        return None

    return next((c for m in sorted(graph) if (c := visit(m, []))), None)


MODULES = modules_under(ROOT)


def part_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in PARTS else None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if part_of(m)))
def test_each_part_imports_only_what_lies_below_it(module):
    part = part_of(module)
    shared = BASE if part in BASE_ONLY else SHARED
    for target in kit_imports(MODULES[module]):
        if target in shared or part_of(target) == part:
            continue
        allowed = ALLOWED[part]
        assert part_of(target) in allowed or target in allowed, (
            f"{module} imports {target}: {part} may import only {sorted(allowed) or 'nothing of the other parts'}"
            f" and {sorted(shared)}")


@pytest.mark.parametrize("module", sorted(BASE - {"submission"}))
def test_the_shared_base_modules_import_no_part(module):
    for target in kit_imports(MODULES[module]):
        assert target in BASE, f"{module} imports {target}: the shared modules sit below every part"


def test_the_harness_never_imports_the_backends():
    """The harness runs any model; the backends are models. (The card it hands them is submission/card.py.)"""
    for module, path in MODULES.items():
        if part_of(module) == "harness":
            assert not [t for t in kit_imports(path) if t.startswith("submission.backends")], module


def top_level_imports(path: Path) -> set[str]:
    """The top-level names of every absolute import in ``path`` (at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_nothing_in_the_kit_imports_the_participants_models_folder():
    """The participant's class is loaded by name (submission.loading); the interface is submission.interface."""
    importing = sorted(module for module, path in MODULES.items() if "models" in top_level_imports(path))
    assert not importing, f"{importing} import models: the kit must not depend on the participant's folder"


def test_the_served_guard_needs_only_the_standard_library():
    """The guard runs as a standalone script (python -I guard.py) in any image, whatever the server needs."""
    path = PACKAGE / "backends" / "served" / "guard.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level], "guard.py imports relatively"
    outside = top_level_imports(path) - set(sys.stdlib_module_names) - {"__future__"}
    assert not outside, f"guard.py imports {sorted(outside)}: it must need the standard library only"


def code_lines(path: Path) -> int:
    """Lines of code: not blank, not a comment, not part of a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            docstrings |= set(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and number not in docstrings)


def test_models_stays_the_participants_folder():
    """Only the files the kit ships there, each short, importing of the kit only the interface and backends."""
    shipped = {p.name for p in (ROOT / "models").iterdir() if p.name != "__pycache__"}
    assert shipped == PARTICIPANT_FILES, f"models/ should hold only {sorted(PARTICIPANT_FILES)}; " \
        f"extra: {sorted(shipped - PARTICIPANT_FILES)}, missing: {sorted(PARTICIPANT_FILES - shipped)}"
    for path in sorted((ROOT / "models").glob("*.py")):
        assert code_lines(path) <= PARTICIPANT_MAX_CODE_LINES, f"{path.name}: the kit's engine belongs in submission/"
        kit = kit_imports(path)
        assert kit <= PARTICIPANT_IMPORTS, f"models/{path.name} imports {sorted(kit - PARTICIPANT_IMPORTS)}"


def test_the_code_line_counter_skips_docstrings_comments_and_blank_lines(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('"""Doc\n\nmore."""\n\n# note\nimport os\n\n\ndef f():\n    """Doc."""\n    return os\n')
    assert code_lines(path) == 3


def part_or_package(module: str) -> str | None:
    """The part a module belongs to, its package's ``__init__`` included."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PARTS else None


@pytest.mark.parametrize("top", ["training", "cli"])
def test_nothing_imports_training_or_cli_but_cli(top):
    """Training and the commands sit on top: only the command line imports training, and nothing imports the
    command line (``python -m submission`` aside)."""
    for module, path in MODULES.items():
        if part_or_package(module) in (top, "cli") or module == "submission.__main__":
            continue
        importing = [t for t in kit_imports(path) if t.startswith(f"submission.{top}")]
        assert not importing, f"{module} imports {importing}: nothing but submission.cli may import submission.{top}"


def test_every_import_of_the_kit_names_a_module_that_exists():
    """Relative imports inside functions too: a module moved without its lazy imports fails here."""
    for path in MODULES.values():
        for target in kit_imports(path):
            assert target in MODULES, f"{path.relative_to(ROOT)} imports {target}, which does not exist"


def test_no_import_cycle():
    cycle = find_cycle(ROOT)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle_through_relative_and_lazy_imports(tmp_path):
    (tmp_path / "submission" / "grading").mkdir(parents=True)
    (tmp_path / "submission" / "__init__.py").write_text("")
    (tmp_path / "submission" / "grading" / "__init__.py").write_text("")
    (tmp_path / "submission" / "grading" / "grader.py").write_text("from .runner import go\n")
    (tmp_path / "submission" / "grading" / "runner.py").write_text("def go():\n    from . import grader\n")
    assert find_cycle(tmp_path) == ["submission.grading.grader", "submission.grading.runner",
                                    "submission.grading.grader"]
    (tmp_path / "submission" / "grading" / "runner.py").write_text("from ..errors import KitError\n")
    assert find_cycle(tmp_path) is None


def test_no_module_over_400_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def test_each_part_says_what_it_owns_and_may_import():
    packages = [init.parent for part in PARTS for init in sorted((PACKAGE / part).rglob("__init__.py"))]
    assert PACKAGE / "backends" / "served" in packages
    for package in packages:
        where = package.relative_to(ROOT)
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "Owns:" in doc and "May import:" in doc and "Public names" in doc, where
        for path in package.glob("*.py"):
            if path.name != "__init__.py":
                assert path.name in doc, f"{where}/__init__.py does not list {path.name}"
        for sub in package.iterdir():
            if (sub / "__init__.py").is_file():
                assert f"{sub.name}/" in doc, f"{where}/__init__.py does not list {sub.name}/"


def test_the_backends_state_the_surface_a_participant_may_subclass():
    doc = ast.get_docstring(ast.parse((PACKAGE / "backends" / "__init__.py").read_text(encoding="utf-8"))) or ""
    assert "stable surface" in doc and "TransformersModel" in doc and "ServedModel" in doc
    import submission.backends as backends

    assert {"TransformersModel", "ServedModel", "TransformersSettings", "ServedSettings"} <= set(dir(backends))


def test_the_public_names_resolve():
    import importlib

    for part in PARTS:
        package = importlib.import_module(f"submission.{part}")
        for name in dir(package):
            assert getattr(package, name) is not None, f"submission.{part}.{name}"
