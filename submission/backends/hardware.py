"""Hardware rules every backend applies: which device, which dtype, which attention kernel, how much GPU
memory.

Each rule applies the stricter of the grader's card (exported by the harness, read with
``submission.card.profile_card``: a T4's compute capability 7.5, no bfloat16, no FlashAttention-2, its
memory cap) and the real card, so a model refused on a T4 is refused on an H100 too; without an exported
card only the real one counts. These functions are shared by the transformers backend, fine-tuning and
the served model's launcher, so the three cannot disagree; they are tested without a GPU. torch is
imported only where a rule needs it: a served model's image (its server holds the weights) reads the
card without torch.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from ..card import BFLOAT16, COMPUTE_CAPABILITY, CONTEXT_RESERVE_BYTES, FLASH_ATTENTION_2, ProfileCard, profile_card
from ..cuda import driver_status, nvidia_gpu_present
from ..errors import ConfigError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

AMPERE = (8, 0)  # bfloat16 and FlashAttention-2 need compute capability 8.0 (T4 is 7.5)


def _stricter(capability: tuple[int, int] | None, card: ProfileCard) -> tuple[int, int] | None:
    """The lower of a real GPU's capability and the profile's (None: no GPU)."""
    if capability is None or card.capability is None:
        return capability
    return min((capability[0], capability[1]), card.capability)


def _whose(capability: tuple[int, int], card: ProfileCard) -> str:
    text = f"{capability[0]}.{capability[1]}"
    if card.capability is not None and card.capability == capability:
        return f"the grader's card (the profile's compute capability, {COMPUTE_CAPABILITY}) has {text}"
    return f"this GPU has {text}"


# --- hardware rules (pure functions of their arguments and the exported card) ----------------------

def resolve_device(requested: str, cuda_available: bool) -> str:
    """``auto`` means cuda when a GPU is visible, else cpu; asking for cuda without one is refused. Falling
    back to the CPU on a host that has an NVIDIA GPU (not hidden on purpose) is said loudly, with the
    driver and what torch needs: the usual cause is a driver older than torch's CUDA build."""
    if requested == "auto":
        if not cuda_available and nvidia_gpu_present() and os.environ.get("CUDA_VISIBLE_DEVICES") != "":
            log.warning("device: auto runs on the CPU although this host has an NVIDIA GPU: %s (set device: cpu "
                        "to run on the CPU on purpose)", driver_status().text)
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        why = f" ({driver_status().text})" if nvidia_gpu_present() else ""
        raise ConfigError("device: cuda was requested but torch sees no GPU (torch.cuda.is_available() is "
                          f"False){why}; use device: auto or cpu, or install a CUDA build of torch",
                          key="device")
    return requested


def resolve_dtype(requested: str, device: str, capability: tuple[int, int] | None) -> torch.dtype:
    """The weights' dtype (also bitsandbytes' 4-bit compute dtype): float16 on CUDA and float32 on CPU
    by default.

    bfloat16 on CUDA is refused below compute capability 8.0 (T4: 7.5), on the real card or the
    profile's, and wherever the profile's card has none; float16 on CPU is refused (kernels missing or
    slow).
    """
    import torch

    if requested == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    if requested == "bfloat16" and device == "cuda":
        card = profile_card()
        if card.bfloat16 is False:
            raise ConfigError("dtype: bfloat16 is not available on the grader's card (the profile's "
                              f"{BFLOAT16}=0; a T4 has none), even if this GPU has it; use dtype: "
                              "float16 or auto", key="dtype")
        effective = _stricter(capability, card)
        if effective is not None and effective < AMPERE:
            raise ConfigError(f"dtype: bfloat16 needs a GPU of compute capability 8.0 or more; "
                              f"{_whose(effective, card)} (a T4 is 7.5); use dtype: float16 or auto", key="dtype")
    if requested == "float16" and device == "cpu":
        raise ConfigError("dtype: float16 is not supported on CPU; use dtype: float32 (or auto) or bfloat16",
                          key="dtype")
    return getattr(torch, requested)


def check_attention(requested: str, device: str, capability: tuple[int, int] | None) -> None:
    """FlashAttention-2 needs CUDA and compute capability 8.0 or more (the real card's and the
    profile's), and a profile whose card allows it; refuse it elsewhere."""
    if requested != "flash_attention_2":
        return
    if device != "cuda":
        raise ConfigError("attn_implementation: flash_attention_2 needs a CUDA GPU; use sdpa on CPU",
                          key="attn_implementation")
    card = profile_card()
    if card.flash_attention_2 is False:
        raise ConfigError("attn_implementation: flash_attention_2 is not available on the grader's card (the "
                          f"profile's {FLASH_ATTENTION_2}=0; a T4 cannot run it), even if this GPU "
                          "can; use sdpa", key="attn_implementation")
    effective = _stricter(capability, card)
    if effective is not None and effective < AMPERE:
        raise ConfigError(f"attn_implementation: flash_attention_2 needs compute capability 8.0 or more; "
                          f"{_whose(effective, card)} (a T4 is 7.5); use sdpa", key="attn_implementation")


def cuda_capability() -> tuple[int, int] | None:
    """The compute capability every rule must fit: the lowest among the visible GPUs, or the profile's
    card if that is lower (a T4's 7.5 on an H100); None without a GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    real = min(torch.cuda.get_device_capability(index) for index in range(torch.cuda.device_count()))
    return _stricter((real[0], real[1]), profile_card())


def max_memory(n_gpus: int | None = None) -> dict[int | str, int] | None:
    """accelerate's ``max_memory`` for ``device_map: auto`` under the profile's cap: each GPU holds
    weights up to the cap less what CUDA keeps outside torch; the rest goes to the CPU, as on the grader
    (accelerate's own default balances over the free memory of this card instead). None without a cap."""
    card = profile_card()
    if card.memory_bytes is None:
        return None
    if n_gpus is None:
        import torch

        n_gpus = torch.cuda.device_count()
    budget = max(0, card.memory_bytes - CONTEXT_RESERVE_BYTES)
    memory: dict[int | str, int] = {index: budget for index in range(n_gpus)}
    memory["cpu"] = int(available_ram() * 0.9)  # transformers' default share of RAM
    return memory


def available_ram() -> int:
    """RAM available for new allocations: psutil's figure, else /proc/meminfo's (an image without psutil)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        raise
