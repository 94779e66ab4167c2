"""The layout shows the architecture: seven parts, imports pointing one way, no cycle, small modules.

Read from the source with ``ast`` (nothing is imported), so a forbidden import fails here even when no
test happens to execute it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from kit_paths import ROOT

PACKAGE = ROOT / "submission"
PARTS = ("scoring", "harness", "grading", "reports", "evaluate", "training", "cli")
SHARED = {"submission", "submission._lazy", "submission.errors", "submission.environment", "submission.loading",
          "submission.jsonio", "submission.__main__"}
# What each part may import besides the shared top-level modules and itself.
ALLOWED = {
    "scoring": set(),
    "harness": {"submission.scoring.data"},
    "reports": {"scoring", "harness"},
    "evaluate": {"scoring", "harness", "reports"},  # the one pipeline: questions -> model run -> scores -> folder
    "grading": {"scoring", "harness", "reports", "evaluate"},
    "training": {"scoring", "harness", "reports", "evaluate"},
    "cli": {"scoring", "harness", "reports", "evaluate", "grading", "training"},  # the commands: anything
}
MAX_LINES = 400


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
    for target in kit_imports(MODULES[module]):
        if target in SHARED or part_of(target) == part:
            continue
        allowed = ALLOWED[part]
        assert part_of(target) in allowed or target in allowed, (
            f"{module} imports {target}: {part} may import only {sorted(allowed) or 'nothing of the other parts'}")


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
    for module, path in MODULES.items():
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
    for part in PARTS:
        doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "Owns:" in doc and "May import:" in doc and "Public names" in doc, part
        for path in (PACKAGE / part).glob("*.py"):
            if path.name != "__init__.py":
                assert path.name in doc, f"submission/{part}/__init__.py does not list {path.name}"


def test_the_public_names_resolve():
    import importlib

    for part in PARTS:
        package = importlib.import_module(f"submission.{part}")
        for name in dir(package):
            assert getattr(package, name) is not None, f"submission.{part}.{name}"
