"""The grader's card as the harness hands it to the model's process, in four environment variables.

The grader's cards are T4s (compute capability 7.5): no bfloat16, no FlashAttention-2, about 14.6 GiB
each. On any other card the harness (``harness/gpu.py``, the writer) exports the profile's card to the
model's process, and the backends' hardware rules (``backends/hardware.py``, the reader) apply the
stricter of that card and the real one, so a model refused on a T4 is refused on an H100 too; the model's
process itself behaves as that card (``harness/gpu_emulation.py``):

    SHOPBENCH_GPU_MEMORY_BYTES    the per-card cap on the process's GPU memory, in bytes
    SHOPBENCH_COMPUTE_CAPABILITY  e.g. "7.5": nothing a higher capability allows
    SHOPBENCH_BFLOAT16            "0": no bfloat16 on CUDA
    SHOPBENCH_FLASH_ATTENTION_2   "0": no FlashAttention-2
    SHOPBENCH_GPU_NAME            e.g. "NVIDIA T4": the card the messages name

Absent (``--no-limits``, a profile without GPUs, or outside the harness), only the real card counts.
Standard library only: the model's process and a served model's image read it without torch or YAML.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError

GPU_MEMORY_BYTES = "SHOPBENCH_GPU_MEMORY_BYTES"
COMPUTE_CAPABILITY = "SHOPBENCH_COMPUTE_CAPABILITY"
BFLOAT16 = "SHOPBENCH_BFLOAT16"
FLASH_ATTENTION_2 = "SHOPBENCH_FLASH_ATTENTION_2"
GPU_NAME = "SHOPBENCH_GPU_NAME"
CARD_VARIABLES = (GPU_MEMORY_BYTES, COMPUTE_CAPABILITY, BFLOAT16, FLASH_ATTENTION_2, GPU_NAME)

# What a CUDA process holds outside torch's allocator (context, kernels, cuBLAS and NCCL workspaces: the
# upper end of the 0.3-0.6 GiB they take): kept free of weights under the cap, and torch's share of a
# card is the cap less this until the model's own process has measured it.
CONTEXT_RESERVE_BYTES = 600 * 1024**2
AMPERE = (8, 0)  # bfloat16, FlashAttention-2 and torch's flash attention kernels need compute capability 8.0


@dataclass(frozen=True)
class ProfileCard:
    """The grader's card as the harness exported it; None where the profile says nothing."""

    memory_bytes: int | None = None
    capability: tuple[int, int] | None = None
    bfloat16: bool | None = None
    flash_attention_2: bool | None = None
    name: str | None = None

    def lacks_bfloat16(self) -> bool:
        """The profile's card has no bfloat16 (said so, or below compute capability 8.0, as a T4)."""
        return self.bfloat16 is False or (self.capability is not None and self.capability < AMPERE)

    def lacks_flash_attention_2(self) -> bool:
        """The profile's card cannot run FlashAttention-2 (nor torch's flash and cuDNN attention kernels)."""
        return self.flash_attention_2 is False or (self.capability is not None and self.capability < AMPERE)

    def described(self) -> str:
        """How messages name it: "the grader's NVIDIA T4 (compute capability 7.5)"."""
        capability = f" (compute capability {self.capability[0]}.{self.capability[1]})" if self.capability else ""
        return f"the grader's {self.name or 'card'}{capability}"


def card_environment(memory_bytes: int | None, compute_capability: str | None, bfloat16: bool | None,
                     flash_attention_2: bool | None, name: str | None = None) -> dict[str, str | None]:
    """The variables for a card (None: the variable is left unset), as ``profile_card`` reads them."""
    flag = {True: "1", False: "0", None: None}
    return {GPU_MEMORY_BYTES: None if memory_bytes is None else str(memory_bytes),
            COMPUTE_CAPABILITY: compute_capability, BFLOAT16: flag[bfloat16],
            FLASH_ATTENTION_2: flag[flash_attention_2], GPU_NAME: name}


def _flag(environ: Mapping[str, str], name: str) -> bool | None:
    value = environ.get(name)
    if value is None or value == "":
        return None
    if value not in ("0", "1"):
        raise ConfigError(f"{name}={value!r}: expected 0 or 1 (the harness sets it from the profile's card)", key=name)
    return value == "1"


def _major_minor(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def profile_card(environ: Mapping[str, str] | None = None) -> ProfileCard:
    """The card the harness exported (``os.environ`` by default); a malformed value is refused."""
    environ = os.environ if environ is None else environ
    memory = environ.get(GPU_MEMORY_BYTES) or None
    if memory is not None and not memory.isdigit():
        raise ConfigError(f"{GPU_MEMORY_BYTES}={memory!r}: expected a whole number of bytes", key=GPU_MEMORY_BYTES)
    capability = environ.get(COMPUTE_CAPABILITY) or None
    if capability is not None and not re.fullmatch(r"\d+\.\d+", capability):
        raise ConfigError(f"{COMPUTE_CAPABILITY}={capability!r}: expected MAJOR.MINOR such as 7.5",
                          key=COMPUTE_CAPABILITY)
    return ProfileCard(
        memory_bytes=None if memory is None else int(memory),
        capability=None if capability is None else _major_minor(capability),
        bfloat16=_flag(environ, BFLOAT16),
        flash_attention_2=_flag(environ, FLASH_ATTENTION_2),
        name=environ.get(GPU_NAME) or None,
    )
