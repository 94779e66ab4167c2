"""Keeping a launched server within the grader's GPU memory cap: the ``{gpu_memory_utilization}`` arithmetic.

vLLM reserves ``--gpu-memory-utilization`` x the card's total memory (SGLang: ``--mem-fraction-static``)
on every card it uses, whatever the card. The grader's cards are T4s (14.56 GiB as CUDA sees them): on a
larger card the same fraction would take far more than a T4 holds, so the launcher derives it from the cap:

    fraction = min(ceiling, (cap - margin) / card total)   floored to 6 decimals (FRACTION_DECIMALS)

The cap comes from ``SHOPBENCH_GPU_MEMORY_BYTES`` (per card, exported by the harness when it enforces
one); the card's total is the one CUDA reports (``submission/cuda.py``, no context: the engine multiplies
by it too), else NVML's, else torch's. Six decimals keep the engine's budget within 1 MiB of the cap less
the margin on any card below 1 TiB (three decimals left 143 MiB unused on an H200).

The margin covers what the engine holds outside its budget, which differs per engine (``ENGINE_MARGINS``).
Everything but ``visible_cards`` is a pure function, tested with injected numbers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ...card import GPU_MEMORY_BYTES, profile_card
from ...cuda import cuda_totals, uuid_key
from ...errors import LimitsError

GIB = 1024 ** 3
MIB = 1024 ** 2
DEFAULT_CEILING = 0.9  # vLLM's own default fraction; never more, even when the cap allows it
FRACTION_DECIMALS = 6
# What each engine holds on a card beyond the share its flag sets, kept free under the cap:
# - vLLM: --gpu-memory-utilization bounds the whole instance (weights, activations, KV cache and, in
#   recent versions, CUDA graphs); outside it stay the CUDA context created before vLLM's first memory
#   snapshot (about 0.5 GiB) and the graphs older versions do not count: 1 GiB.
# - SGLang: --mem-fraction-static bounds the weights and the KV cache pool only; the activations (chunked
#   prefill), the CUDA graph buffers and the context come on top: 3 GiB, about a fifth of a T4's cap.
# - llama.cpp: --fit-target is measured against the free memory after its context exists, and its fit is
#   a projection: 1 GiB, its own default margin.
ENGINE_MARGINS = {"vllm": 1 * GIB, "sglang": 3 * GIB, "llama.cpp": 1 * GIB}
DEFAULT_MARGIN = 1 * GIB


class GpuMemoryError(LimitsError):
    """The launcher cannot keep the server within the GPU memory cap; the message says how to fix it."""


@dataclass(frozen=True)
class GpuBudget:
    """What the arithmetic needs: the cap per card (None: not enforced), the smallest visible card's
    total memory (None: no GPU, or unknown), the margin, the ceiling, and each visible card's free memory
    (llama.cpp's fit target)."""

    cap_bytes: int | None
    card_bytes: int | None
    margin_bytes: int = GIB
    ceiling: float = DEFAULT_CEILING
    gpu_visible: bool = False
    free_bytes: tuple[int, ...] = ()

    @property
    def enforced(self) -> bool:
        return self.cap_bytes is not None and self.gpu_visible


def gib(n: float | None) -> str:
    return "an unknown size" if n is None else f"{n / GIB:.2f} GiB"


def margin_for(engine: str | None, configured: float | str) -> int:
    """The margin in bytes: ``gpu_memory_margin_gib`` as configured, or (``auto``) the engine's own."""
    if configured == "auto":
        return ENGINE_MARGINS.get(engine or "", DEFAULT_MARGIN)
    return int(float(configured) * GIB)


def floor_fraction(value: float) -> float:
    scale = 10 ** FRACTION_DECIMALS
    return math.floor(value * scale) / scale


def fraction_text(value: float) -> str:
    """A fraction as the command line gets it: six decimals at most, no trailing zeros (0.097745, 0.9)."""
    return f"{value:.{FRACTION_DECIMALS}f}".rstrip("0").rstrip(".")


def utilization(budget: GpuBudget, requested: float | None) -> float:
    """The fraction to give the engine: ``requested`` (checked) or, for None (``auto``), the largest one
    that keeps ``fraction x card + margin`` within the cap, at most the ceiling."""
    cap = budget.cap_bytes
    if cap is None or not budget.enforced:
        return budget.ceiling if requested is None else requested
    if budget.card_bytes is None:
        raise GpuMemoryError(
            f"{GPU_MEMORY_BYTES} caps GPU memory at {gib(budget.cap_bytes)} per card, but the card's total memory "
            "cannot be read (neither libcuda, pynvml nor torch.cuda could), so no --gpu-memory-utilization can be "
            "derived; install nvidia-ml-py, or run without a cap (--no-limits)")
    usable = cap - budget.margin_bytes
    if usable <= 0:
        raise GpuMemoryError(
            f"the cap {gib(budget.cap_bytes)} per card leaves nothing after the margin {gib(budget.margin_bytes)}; "
            f"lower gpu_memory_margin_gib")
    bound = usable / budget.card_bytes
    if requested is None:
        return floor_fraction(min(budget.ceiling, bound))
    if requested > bound:
        raise GpuMemoryError(
            f"gpu_memory_utilization {requested:g} of this card's {gib(budget.card_bytes)} is "
            f"{gib(requested * budget.card_bytes)}, over the cap {gib(budget.cap_bytes)} per card less the margin "
            f"{gib(budget.margin_bytes)}; use gpu_memory_utilization: auto "
            f"(here {fraction_text(floor_fraction(bound))})")
    return requested


# ---------------------------------------------------------------- the cards this process may use


@dataclass(frozen=True)
class Card:
    total_bytes: int  # as CUDA reports it where it can be read, else NVML's
    free_bytes: int | None = None  # NVML's figure now; None: unknown


def visible_entries(devices: list[tuple], cuda_visible_devices: str | None) -> list[tuple]:
    """The ``(index, uuid, ...)`` entries CUDA would show, ``CUDA_VISIBLE_DEVICES`` listing indices or
    UUIDs (unset: all; empty or -1: none; CUDA stops at the first entry it cannot resolve)."""
    if cuda_visible_devices is None:
        return list(devices)
    chosen = []
    for item in (part.strip() for part in cuda_visible_devices.split(",")):
        if not item or item.startswith("-"):
            break
        match = [entry for entry in devices if item == str(entry[0]) or entry[1].startswith(item)]
        if not match:
            break
        chosen.append(match[0])
    return chosen


def visible(devices: list[tuple[int, str, int]], cuda_visible_devices: str | None) -> list[int]:
    """Totals of the cards CUDA would show, ``devices`` being NVML's ``(index, uuid, total bytes)``."""
    return [entry[2] for entry in visible_entries(devices, cuda_visible_devices)]


def _nvml_devices() -> list[tuple[int, str, int, int]] | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            devices = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                uuid = pynvml.nvmlDeviceGetUUID(handle)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                devices.append((index, uuid.decode() if isinstance(uuid, bytes) else uuid, int(memory.total),
                                int(memory.free)))
        finally:
            pynvml.nvmlShutdown()
        return devices
    except Exception:  # noqa: BLE001 - no pynvml, no driver
        return None


def visible_cards() -> list[Card] | None:
    """Each GPU this process may use: CUDA's total (NVML's where CUDA cannot say) and NVML's free memory;
    torch's totals where NVML is absent; None when nothing can tell."""
    cuda = cuda_totals()  # CUDA applies CUDA_VISIBLE_DEVICES itself; no context is created
    devices = _nvml_devices()
    if devices is not None:
        chosen = visible_entries(devices, os.environ.get("CUDA_VISIBLE_DEVICES"))
        return [Card(cuda.get(uuid_key(uuid), total), free) for _, uuid, total, free in chosen]
    if cuda:
        return [Card(total) for total in cuda.values()]
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [Card(torch.cuda.get_device_properties(i).total_memory) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no torch either
        return None


def budget_from_environment(margin_bytes: int) -> GpuBudget:
    """The budget of this process: the cap from the harness, the smallest visible card."""
    cap = profile_card().memory_bytes  # SHOPBENCH_GPU_MEMORY_BYTES, checked by submission/card.py
    cards = visible_cards() if cap is not None else None
    gpu_visible = bool(cards) or (cards is None and os.path.exists("/dev/nvidiactl")
                                  and os.environ.get("CUDA_VISIBLE_DEVICES") != "")
    return GpuBudget(cap_bytes=cap, card_bytes=min(c.total_bytes for c in cards) if cards else None,
                     margin_bytes=margin_bytes, gpu_visible=gpu_visible,
                     free_bytes=tuple(c.free_bytes for c in cards or () if c.free_bytes is not None))
