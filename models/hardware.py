"""Hardware rules every model path applies: which device, which dtype, which attention kernel, how much
GPU memory.

The grader's cards are T4s (compute capability 7.5): no bfloat16, no FlashAttention-2, about 14.6 GiB
each. On any other card the harness exports the profile's card to the model's process, and every rule
here applies the stricter of that card and the real one, so a model refused on a T4 is refused on an
H100 too:

    SHOPBENCH_GPU_MEMORY_BYTES    the per-card cap on the process's GPU memory, in bytes
    SHOPBENCH_COMPUTE_CAPABILITY  e.g. "7.5": nothing a higher capability allows
    SHOPBENCH_BFLOAT16            "0": no bfloat16 on CUDA
    SHOPBENCH_FLASH_ATTENTION_2   "0": no FlashAttention-2

Absent (``--no-limits``, a profile without GPUs, or outside the harness), only the real card counts.
These functions are shared by the transformers baseline, fine-tuning and the served model's launcher,
so the three cannot disagree; they are tested without a GPU. torch is imported only where a rule needs
it: a served model's image (its server holds the weights) reads the card without torch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.baseline_config import ConfigError

if TYPE_CHECKING:
    import torch

AMPERE = (8, 0)  # bfloat16 and FlashAttention-2 need compute capability 8.0 (T4 is 7.5)
# What a CUDA process holds outside torch's allocator (context, cuBLAS workspace): kept free of weights.
CONTEXT_RESERVE_BYTES = 600 * 1024**2


@dataclass(frozen=True)
class ProfileCard:
    """The grader's card as the harness exported it; None where the profile says nothing."""

    memory_bytes: int | None = None
    capability: tuple[int, int] | None = None
    bfloat16: bool | None = None
    flash_attention_2: bool | None = None


def _flag(environ: Mapping[str, str], name: str) -> bool | None:
    value = environ.get(name)
    if value is None or value == "":
        return None
    if value not in ("0", "1"):
        raise ConfigError(f"{name}={value!r}: expected 0 or 1 (the harness sets it from the profile's card)")
    return value == "1"


def profile_card(environ: Mapping[str, str] | None = None) -> ProfileCard:
    """The card the harness exported (``os.environ`` by default); a malformed value is refused."""
    environ = os.environ if environ is None else environ
    memory = environ.get("SHOPBENCH_GPU_MEMORY_BYTES") or None
    if memory is not None and not memory.isdigit():
        raise ConfigError(f"SHOPBENCH_GPU_MEMORY_BYTES={memory!r}: expected a whole number of bytes")
    capability = environ.get("SHOPBENCH_COMPUTE_CAPABILITY") or None
    if capability is not None and not re.fullmatch(r"\d+\.\d+", capability):
        raise ConfigError(f"SHOPBENCH_COMPUTE_CAPABILITY={capability!r}: expected MAJOR.MINOR such as 7.5")
    return ProfileCard(
        memory_bytes=None if memory is None else int(memory),
        capability=None if capability is None else tuple(int(part) for part in capability.split(".")),
        bfloat16=_flag(environ, "SHOPBENCH_BFLOAT16"),
        flash_attention_2=_flag(environ, "SHOPBENCH_FLASH_ATTENTION_2"),
    )


def _stricter(capability: tuple[int, int] | None, card: ProfileCard) -> tuple[int, int] | None:
    """The lower of a real GPU's capability and the profile's (None: no GPU)."""
    if capability is None or card.capability is None:
        return capability
    return min(tuple(capability), card.capability)


def _whose(capability: tuple[int, int], card: ProfileCard) -> str:
    text = f"{capability[0]}.{capability[1]}"
    if card.capability is not None and card.capability == capability:
        return f"the grader's card (the profile's compute capability, SHOPBENCH_COMPUTE_CAPABILITY) has {text}"
    return f"this GPU has {text}"


# --- hardware rules (pure functions of their arguments and the exported card) ----------------------

def resolve_device(requested: str, cuda_available: bool) -> str:
    """``auto`` means cuda when a GPU is visible, else cpu; asking for cuda without one is refused."""
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise ConfigError("device: cuda was requested but torch sees no GPU (torch.cuda.is_available() is "
                          "False); use device: auto or cpu, or install a CUDA build of torch")
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
                              "SHOPBENCH_BFLOAT16=0; a T4 has none), even if this GPU has it; use dtype: "
                              "float16 or auto")
        effective = _stricter(capability, card)
        if effective is not None and effective < AMPERE:
            raise ConfigError(f"dtype: bfloat16 needs a GPU of compute capability 8.0 or more; "
                              f"{_whose(effective, card)} (a T4 is 7.5); use dtype: float16 or auto")
    if requested == "float16" and device == "cpu":
        raise ConfigError("dtype: float16 is not supported on CPU; use dtype: float32 (or auto) or bfloat16")
    return getattr(torch, requested)


def check_attention(requested: str, device: str, capability: tuple[int, int] | None) -> None:
    """FlashAttention-2 needs CUDA and compute capability 8.0 or more (the real card's and the
    profile's), and a profile whose card allows it; refuse it elsewhere."""
    if requested != "flash_attention_2":
        return
    if device != "cuda":
        raise ConfigError("attn_implementation: flash_attention_2 needs a CUDA GPU; use sdpa on CPU")
    card = profile_card()
    if card.flash_attention_2 is False:
        raise ConfigError("attn_implementation: flash_attention_2 is not available on the grader's card (the "
                          "profile's SHOPBENCH_FLASH_ATTENTION_2=0; a T4 cannot run it), even if this GPU "
                          "can; use sdpa")
    effective = _stricter(capability, card)
    if effective is not None and effective < AMPERE:
        raise ConfigError(f"attn_implementation: flash_attention_2 needs compute capability 8.0 or more; "
                          f"{_whose(effective, card)} (a T4 is 7.5); use sdpa")


def cuda_capability() -> tuple[int, int] | None:
    """The compute capability every rule must fit: the lowest among the visible GPUs, or the profile's
    card if that is lower (a T4's 7.5 on an H100); None without a GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    real = min(torch.cuda.get_device_capability(index) for index in range(torch.cuda.device_count()))
    return _stricter(tuple(real), profile_card())


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
    import psutil

    memory["cpu"] = int(psutil.virtual_memory().available * 0.9)  # transformers' default share of RAM
    return memory
