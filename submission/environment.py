"""Where the kit is, and what a run records about where it ran: kit version, git revision, packages, device."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

from . import __version__

KIT_ROOT = Path(__file__).resolve().parent.parent  # the kit's repository: submission/, models/, docker/, data/

PACKAGES = (
    "torch", "transformers", "sentence-transformers", "sacrebleu", "rouge-score", "numpy",
    "accelerate", "peft", "bitsandbytes", "mecab-python3", "ipadic",
)


def git_revision(repo: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "-uno"], capture_output=True, text=True)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "processor": platform.machine()}
    torch = sys.modules.get("torch")  # only if the run already imported it: importing costs seconds
    if torch is not None and torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def describe(repo: str | Path = ".") -> dict:
    return {
        "kit_version": __version__,
        "git_revision": git_revision(repo),
        "packages": package_versions(),
        "device": device_info(),
    }
