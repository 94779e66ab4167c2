"""Hardware rules every model path applies: which device, which dtype, which attention kernel.

The grader's cards are T4s (compute capability 7.5): no bfloat16, no FlashAttention-2. These functions
are pure (tested without a GPU) and shared by the transformers baseline, fine-tuning and the served
model's launcher, so the three cannot disagree.
"""

from __future__ import annotations

import torch

from models.baseline_config import ConfigError

AMPERE = (8, 0)  # bfloat16 and FlashAttention-2 need compute capability 8.0 (T4 is 7.5)
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


# --- hardware rules (pure functions; tested without a GPU) -----------------------------------------

def resolve_device(requested: str, cuda_available: bool) -> str:
    """``auto`` means cuda when a GPU is visible, else cpu; asking for cuda without one is refused."""
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise ConfigError("device: cuda was requested but torch sees no GPU (torch.cuda.is_available() is "
                          "False); use device: auto or cpu, or install a CUDA build of torch")
    return requested


def resolve_dtype(requested: str, device: str, capability: tuple[int, int] | None) -> torch.dtype:
    """The weights' dtype: float16 on CUDA and float32 on CPU by default.

    bfloat16 on a GPU below compute capability 8.0 (T4: 7.5) is refused, as is float16 on CPU,
    where several kernels are missing or slow.
    """
    if requested == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    if requested == "bfloat16" and device == "cuda" and capability is not None and capability < AMPERE:
        raise ConfigError(f"dtype: bfloat16 needs a GPU of compute capability 8.0 or more; this GPU has "
                          f"{capability[0]}.{capability[1]} (a T4 is 7.5); use dtype: float16 or auto")
    if requested == "float16" and device == "cpu":
        raise ConfigError("dtype: float16 is not supported on CPU; use dtype: float32 (or auto) or bfloat16")
    return TORCH_DTYPES[requested]


def check_attention(requested: str, device: str, capability: tuple[int, int] | None) -> None:
    """FlashAttention-2 needs CUDA and compute capability 8.0 or more; refuse it elsewhere."""
    if requested != "flash_attention_2":
        return
    if device != "cuda":
        raise ConfigError("attn_implementation: flash_attention_2 needs a CUDA GPU; use sdpa on CPU")
    if capability is not None and capability < AMPERE:
        raise ConfigError(f"attn_implementation: flash_attention_2 needs compute capability 8.0 or more; "
                          f"this GPU has {capability[0]}.{capability[1]} (a T4 is 7.5); use sdpa")


def cuda_capability() -> tuple[int, int] | None:
    """The lowest compute capability among the visible GPUs (the one every rule must fit), or None."""
    if not torch.cuda.is_available():
        return None
    return min(torch.cuda.get_device_capability(index) for index in range(torch.cuda.device_count()))
