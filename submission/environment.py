"""Where the kit is, its environment variables, and what a run records about where it ran: kit version, git
revision, packages, device.

Every ``SHOPBENCH_*`` variable the kit reads or sets is named once, here (the four that carry the grader's
card are in ``card.py``):

    SHOPBENCH_SEED                     the run's seed, set for the model's process (``--seed``)
    SHOPBENCH_PROFILE                  the hardware profile whose limits the run enforces
    SHOPBENCH_CACHE_DIR                the kit's cache folder (converted weights, embeddings); see ``cache_root``
    SHOPBENCH_EMBEDDING_CACHE          the truth-embedding cache (default: the cache folder's embeddings/)
    SHOPBENCH_SENT_TRANSFORMER_MODEL   a local all-MiniLM-L6-v2 folder for the sent-transformer metric
    SHOPBENCH_MULTILINGUAL_SENT_TRANSFORMER_MODEL   a local paraphrase-multilingual-MiniLM-L12-v2 folder
    SHOPBENCH_BASELINE_CONFIG          the transformers settings YAML the fine-tuning evaluation's model loads
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import __version__

KIT_ROOT = Path(__file__).resolve().parent.parent  # the kit's repository: submission/, models/, docker/, data/

SEED = "SHOPBENCH_SEED"
PROFILE = "SHOPBENCH_PROFILE"
CACHE_DIR = "SHOPBENCH_CACHE_DIR"
EMBEDDING_CACHE = "SHOPBENCH_EMBEDDING_CACHE"
SENT_TRANSFORMER_MODEL = "SHOPBENCH_SENT_TRANSFORMER_MODEL"
MULTILINGUAL_SENT_TRANSFORMER_MODEL = "SHOPBENCH_MULTILINGUAL_SENT_TRANSFORMER_MODEL"
EVALUATED_MODEL_CONFIG = "SHOPBENCH_BASELINE_CONFIG"

PACKAGES = (
    "torch", "transformers", "sentence-transformers", "sacrebleu", "rouge-score", "numpy",
    "accelerate", "peft", "bitsandbytes", "mecab-python3", "ipadic",
)


def cache_root() -> Path:
    """The kit's cache folder: ``$SHOPBENCH_CACHE_DIR`` if set, else ``~/.cache/shopbench-kit``."""
    configured = os.environ.get(CACHE_DIR)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "shopbench-kit"


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
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "processor": platform.machine()}
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
