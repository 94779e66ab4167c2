"""Where the model's compile and model caches go: the writable, size-capped scratch space.

The grader's container has a read-only root: only ``/tmp`` and ``~/.cache`` are writable (each a tmpfs of
the profile's ``disk_gb``). Several engines write elsewhere by default and fail there: Triton compiles
into ``~/.triton/cache`` (every Triton kernel of vLLM or ``torch.compile`` on a GPU), CUDA's JIT cache
goes to ``~/.nv/ComputeCache``. So every cache the common engines use is pointed at the scratch space:

- in the container (``container_cache_environment``): under ``~/.cache``;
- in a local run under a disk cap (``cache_environment``): under the run's own scratch folder (its
  TMPDIR), where the disk watch measures it against the same cap, as the container's tmpfs would; the
  user's own caches (``~/.cache/huggingface`` and the like) stay out of reach, as on the grader, whose
  caches start empty. Without a cap (``--no-limits``) nothing is changed.

A variable the model's settings set (``ModelSpec.env``) still wins: it is applied afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

# Variable -> folder under the cache root. TRITON_HOME is Triton's base (its cache, dumps and overrides:
# ~/.triton by default); TRITON_CACHE_DIR its compiled kernels; TORCHINDUCTOR_CACHE_DIR torch.compile's
# (default /tmp/torchinductor_USER); XDG_CACHE_HOME every library that follows the XDG rule (~/.cache);
# HF_HOME the Hugging Face hub, datasets and remote code (~/.cache/huggingface); VLLM_CACHE_ROOT vLLM's
# compile and model caches (~/.cache/vllm); CUDA_CACHE_PATH the driver's PTX JIT cache (~/.nv/ComputeCache).
CACHE_FOLDERS = {
    "TRITON_HOME": "triton-home",
    "TRITON_CACHE_DIR": "triton",
    "TORCHINDUCTOR_CACHE_DIR": "torchinductor",
    "XDG_CACHE_HOME": "",
    "HF_HOME": "huggingface",
    "VLLM_CACHE_ROOT": "vllm",
    "CUDA_CACHE_PATH": "nv-compute",
}


def cache_paths(root: str) -> dict[str, str]:
    """Every cache variable pointed under ``root`` (a POSIX path: the container's or this machine's)."""
    root = root.rstrip("/")
    return {name: f"{root}/{folder}" if folder else root for name, folder in CACHE_FOLDERS.items()}


def container_cache_environment(home: str) -> dict[str, str]:
    """The caches of a container whose writable places are /tmp and ``home``/.cache."""
    return cache_paths(f"{home}/.cache")


def cache_environment(disk_bytes: int | None, scratch: Path | None) -> dict[str, str]:
    """For a local run: the caches inside the run's scratch folder, created, when a disk cap applies."""
    if disk_bytes is None or scratch is None:
        return {}
    paths = cache_paths(str(scratch / "cache"))
    for path in paths.values():
        os.makedirs(path, exist_ok=True)
    return paths
