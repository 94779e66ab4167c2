"""The packaging habits: one version (pyproject.toml's, which submission.__version__ reads and CHANGELOG.md
opens with), every third-party import of the kit declared in pyproject.toml, and the pinned lock
(requirements*.txt) inside the declared ranges."""

import ast
import re
import sys

import pytest
from kit_paths import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import submission

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
LOCKS = ("requirements.txt", "requirements-models.txt", "requirements-grading.txt", "requirements-dev.txt")


def declared() -> dict[str, Requirement]:
    """Every requirement of pyproject.toml (dependencies and extras; the kit's own extras aside), by name."""
    lines = [*PROJECT["dependencies"], *(r for extra in PROJECT["optional-dependencies"].values() for r in extra)]
    found = {}
    for line in lines:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) != canonicalize_name(PROJECT["name"]):
            found.setdefault(canonicalize_name(requirement.name), requirement)
    return found


def pinned() -> dict[str, tuple[str, str]]:
    """name -> (version, file) of every pin in the lock files."""
    pins = {}
    for name in LOCKS:
        for number, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            requirement = Requirement(text)
            versions = [spec.version for spec in requirement.specifier if spec.operator == "=="]
            assert versions, f"{name}:{number}: {text!r} is not pinned with =="
            pins[canonicalize_name(requirement.name)] = (versions[0], f"{name}:{number}")
    return pins


def test_the_version_is_pyprojects_and_the_changelog_opens_with_it():
    assert submission.__version__ == PROJECT["version"]
    first = re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.MULTILINE)
    assert first is not None and first.group(1) == PROJECT["version"], "CHANGELOG.md's first entry is not this version"


def test_the_version_is_read_only_from_the_kits_own_pyproject(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "shopbench-kit"\nversion = "9.8.7"\n\n[tool.x]\nversion = "1"\n')
    assert submission._checkout_version(path) == "9.8.7"
    path.write_text('[tool.x]\nname = "shopbench-kit"\nversion = "1"\n\n[project]\nname = "shopbench-kit"\n')
    assert submission._checkout_version(path) is None  # no version in [project]: another table's is not taken
    path.write_text('[project]\nname = "someone-elses"\nversion = "3.0"\n')
    assert submission._checkout_version(path) is None
    assert submission._checkout_version(tmp_path / "absent.toml") is None


def third_party_imports() -> dict[str, str]:
    """Top-level module -> a file importing it, for every module outside the standard library that the kit's
    engine, local_evaluation.py and models/ import."""
    files = [*sorted((ROOT / "submission").rglob("*.py")), ROOT / "local_evaluation.py",
             *sorted((ROOT / "models").glob("*.py"))]
    found = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("submission", "models", "local_evaluation"):
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_package_the_kit_imports_is_declared_in_pyproject():
    import importlib.metadata

    owners = importlib.metadata.packages_distributions()
    names = declared()
    missing = []
    for module, where in sorted(third_party_imports().items()):
        distributions = owners.get(module)
        assert distributions, f"{where} imports {module}, which no installed distribution provides"
        if not any(canonicalize_name(d) in names for d in distributions):
            missing.append(f"{module} ({', '.join(distributions)}, imported by {where})")
    assert not missing, f"imported but not in pyproject.toml's dependencies or extras: {'; '.join(missing)}"


def test_the_pinned_lock_is_inside_the_declared_ranges():
    pins, ranges = pinned(), declared()
    outside = [f"{pins[name][1]} pins {name}=={pins[name][0]}, outside pyproject.toml's {requirement}"
               for name, requirement in ranges.items()
               if name in pins and not requirement.specifier.contains(pins[name][0], prereleases=True)]
    assert not outside, "; ".join(outside)
    unpinned = sorted(name for name in ranges if name not in pins)
    assert not unpinned, f"declared in pyproject.toml but pinned in none of {', '.join(LOCKS)}: {unpinned}"


def test_torch_stays_below_2_14():
    torch = declared()["torch"]
    assert torch.specifier.contains("2.13.0") and not torch.specifier.contains("2.14.0")
