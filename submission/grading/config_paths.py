"""The paths that the model configs name, as ``check`` sees them: what the grader's image will hold.

A weights folder, a LoRA adapter or a tokenizer named in ``models/baseline.yaml`` or ``models/served.yaml``
reaches the grader only if it is inside the repository, tracked by git (the grader clones the pushed
repository; Git LFS files are tracked too) and in the build context (not excluded by .dockerignore).
``path_problems`` names each one that is not, with the fix.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..yamlio import read_mapping

# The model configs and the keys in each that name a path (relative paths: from the YAML's folder).
MODEL_CONFIGS = (("models/baseline.yaml", ("weights", "lora_adapter", "tokenizer")),
                 ("models/served.yaml", ("weights", "tokenizer")))
NOT_PATHS = {"smollm2", "auto"}  # named values: the default weights; the weights folder's tokenizer
MARKERS = {"weights": "config.json", "lora_adapter": "adapter_config.json"}  # what the loader opens first


@dataclass(frozen=True)
class NamedPath:
    config: str  # the YAML, relative to the repository (models/baseline.yaml)
    key: str
    value: str  # as written
    path: Path  # resolved, absolute


def named_paths(repo: Path) -> tuple[list[NamedPath], list[str]]:
    """Every path the model configs name, and a problem for each config that cannot be read."""
    found, problems = [], []
    for config, keys in MODEL_CONFIGS:
        path = repo / config
        if not path.is_file():
            continue
        try:
            data = read_mapping(path, "model config").data
        except ConfigError as exc:
            problems.append(f"{exc}; the model would not start")
            continue
        for key in keys:
            value = data.get(key)
            if isinstance(value, str) and value.strip() and value.strip() not in NOT_PATHS:
                resolved = Path(os.path.normpath(path.parent / Path(value.strip()).expanduser()))
                found.append(NamedPath(config, key, value.strip(), resolved))
    return found, problems


def tracked_files(repo: Path) -> set[str] | None:
    """The files git tracks in ``repo`` (posix, relative), or None when it is not a git repository."""
    if not (repo / ".git").exists():
        return None
    out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached"], capture_output=True, timeout=120)
    if out.returncode != 0:
        return None
    return {name for name in out.stdout.decode("utf-8", "replace").split("\0") if name}


def git_ignores(repo: Path, rel: str) -> bool:
    out = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", "--no-index", rel], capture_output=True,
                         timeout=60)
    return out.returncode == 0


def _files_under(path: Path, repo: Path) -> list[str]:
    if path.is_file():
        return [path.relative_to(repo).as_posix()]
    return sorted((Path(folder) / name).relative_to(repo).as_posix()
                  for folder, _, names in os.walk(path) for name in names)


def path_problems(repo: Path, context: Collection[str], tracked: set[str] | None) -> list[str]:
    """What keeps a path that a model config names out of the grader's image, with the fix; [] if nothing.
    ``context``: the build context's files; ``tracked``: git's (None: not a git repository, not checked)."""
    repo = repo.resolve()
    entries, problems = named_paths(repo)
    for entry in entries:
        problem = _problem(repo, entry, context, tracked)
        if problem:
            problems.append(f"{entry.config} names ({entry.key}) {problem}")
    return problems


def _problem(repo: Path, entry: NamedPath, context: Collection[str], tracked: set[str] | None) -> str | None:
    try:
        rel = entry.path.relative_to(repo).as_posix()
    except ValueError:
        return (f"{entry.value} ({entry.path}), outside the repository: the image holds the repository only. "
                f"Move it inside (e.g. weights/{entry.path.name}) and name it relative to "
                f"{Path(entry.config).parent}/ (../weights/{entry.path.name})")
    if not entry.path.exists():
        return f"{rel}, which does not exist; put it there, or fix the path (relative to {Path(entry.config).parent}/)"
    files = _files_under(entry.path, repo)
    marker = MARKERS.get(entry.key)
    needed = [f"{rel}/{marker}"] if marker and entry.path.is_dir() and f"{rel}/{marker}" in files else files
    left_out = [f for f in needed if f not in context]
    if not files:
        return f"{rel}, an empty folder; put the files there, or fix the path"
    if len(left_out) == len(needed):
        return (f"{rel}, which .dockerignore excludes from the build context: the image will not have it; remove the "
                ".dockerignore line that matches it")
    if left_out:
        return f"{rel}, but .dockerignore excludes {left_out[0]}: the image will not have it; remove that exclusion"
    if tracked is None:
        return None
    untracked = [f for f in files if f in context and f not in tracked]
    if not untracked:
        return None
    shown = ", ".join(untracked[:3]) + (f" (and {len(untracked) - 3} more)" if len(untracked) > 3 else "")
    force = "-f " if git_ignores(repo, rel) else ""
    why = " (.gitignore ignores it)" if force else ""
    return (f"{rel}, whose files are not tracked by git{why}: {shown}; the grader clones the pushed repository, "
            f"which will lack them: `git add {force}{rel}` and commit (large files with Git LFS: "
            "`git lfs track '*.safetensors'`), or move it under weights/")
