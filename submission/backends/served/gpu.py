"""Keeping a launched server within the grader's GPU memory cap: the ``{gpu_memory_utilization}`` arithmetic.

vLLM reserves ``--gpu-memory-utilization`` x the card's total memory (SGLang: ``--mem-fraction-static``)
on every card it uses, whatever the card. The grader's cards are T4s (15 GiB usable): on a larger card
the same fraction would take far more than a T4 holds, so the launcher derives it from the cap:

    fraction = min(ceiling, (cap - margin) / card total)        e.g. (15 - 1) GiB / 139.8 GiB = 0.100

The cap comes from ``SHOPBENCH_GPU_MEMORY_BYTES`` (per card, exported by the harness when it enforces
one), the card's total from NVML (``pynvml``) or else torch. The margin covers what the engine holds
outside its budget (CUDA context, NCCL buffers). A fraction given in the config is checked against the
same bound, and a command that starts vLLM or SGLang without its fraction flag is refused when a cap
applies: a launched server may never be left to size itself past the cap.

Everything but ``visible_card_totals`` is a pure function, tested with injected numbers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ...card import GPU_MEMORY_BYTES, profile_card
from ...errors import LimitsError

GIB = 1024 ** 3
DEFAULT_CEILING = 0.9  # vLLM's own default fraction; never more, even when the cap allows it
# Engines that reserve a fixed fraction of every card, and the flag that sets it.
FRACTION_FLAGS = {"vllm": "--gpu-memory-utilization", "sglang": "--mem-fraction-static"}


class GpuMemoryError(LimitsError):
    """The launcher cannot keep the server within the GPU memory cap; the message says how to fix it."""


@dataclass(frozen=True)
class GpuBudget:
    """What the arithmetic needs: the cap per card (None: not enforced), the smallest visible card's
    total memory (None: no GPU, or unknown), the margin, and the ceiling."""

    cap_bytes: int | None
    card_bytes: int | None
    margin_bytes: int = GIB
    ceiling: float = DEFAULT_CEILING
    gpu_visible: bool = False


def gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def utilization(budget: GpuBudget, requested: float | None) -> float:
    """The fraction to give the engine: ``requested`` (checked) or, for None (``auto``), the largest one
    that keeps ``fraction x card + margin`` within the cap, at most the ceiling."""
    if budget.cap_bytes is None or not budget.gpu_visible:
        return budget.ceiling if requested is None else requested
    if budget.card_bytes is None:
        raise GpuMemoryError(
            f"{GPU_MEMORY_BYTES} caps GPU memory at {gib(budget.cap_bytes)} per card, but the card's total memory cannot "
            f"be read (neither pynvml nor torch.cuda could), so no --gpu-memory-utilization can be derived; "
            f"install nvidia-ml-py, or run without a cap (--no-limits)")
    usable = budget.cap_bytes - budget.margin_bytes
    if usable <= 0:
        raise GpuMemoryError(
            f"the cap {gib(budget.cap_bytes)} per card leaves nothing after the margin {gib(budget.margin_bytes)}; "
            f"lower gpu_memory_margin_gib")
    bound = usable / budget.card_bytes
    if requested is None:
        return math.floor(min(budget.ceiling, bound) * 1000) / 1000
    if requested > bound:
        raise GpuMemoryError(
            f"gpu_memory_utilization {requested:g} of this card's {gib(budget.card_bytes)} is "
            f"{gib(requested * budget.card_bytes)}, over the cap {gib(budget.cap_bytes)} per card less the margin "
            f"{gib(budget.margin_bytes)}; use gpu_memory_utilization: auto (here {math.floor(bound * 1000) / 1000:g})")
    return requested


def engine_of(argv: list[str]) -> str | None:
    """``vllm`` or ``sglang`` when the command starts one of them (``vllm serve``, ``python -m vllm...``,
    ``python -m sglang.launch_server``), else None."""
    head = [os.path.basename(a) for a in argv[:1]] + argv[1:3]
    for engine in FRACTION_FLAGS:
        if any(part == engine or part.startswith(engine + ".") for part in head):
            return engine
    return None


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of ``--flag VALUE`` or ``--flag=VALUE`` in ``argv``, or None."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def check_command(argv: list[str], budget: GpuBudget) -> str | None:
    """Refuse a vLLM or SGLang command that could reserve past the cap; returns a note or None.

    Checked on the final command line (placeholders filled in), so a literal fraction is checked too.
    """
    engine = engine_of(argv)
    if engine is None or budget.cap_bytes is None or not budget.gpu_visible:
        return None
    flag = FRACTION_FLAGS[engine]
    value = flag_value(argv, flag)
    if value is None:
        raise GpuMemoryError(
            f"the launch command starts {engine} without {flag}, so {engine} would reserve its default share of "
            f"each card ({gib(budget.card_bytes) if budget.card_bytes else 'unknown size'}), over the cap "
            f"{gib(budget.cap_bytes)}; add `{flag} {{gpu_memory_utilization}}` to launch")
    try:
        fraction = float(value)
    except ValueError:
        raise GpuMemoryError(f"{flag} {value!r} in the launch command is not a number") from None
    utilization(budget, fraction)
    return f"{engine} {flag} {fraction:g} of {gib(budget.card_bytes)} per card (cap {gib(budget.cap_bytes)})"


def visible(devices: list[tuple[int, str, int]], cuda_visible_devices: str | None) -> list[int]:
    """Totals of the cards CUDA would show: ``devices`` are NVML's ``(index, uuid, total bytes)``;
    ``CUDA_VISIBLE_DEVICES`` lists indices or UUIDs (unset: all; empty or -1: none)."""
    if cuda_visible_devices is None:
        return [total for _, _, total in devices]
    chosen = []
    for item in (part.strip() for part in cuda_visible_devices.split(",")):
        if not item or item.startswith("-"):
            break  # CUDA stops at the first invalid entry
        match = [total for index, uuid, total in devices if item == str(index) or uuid.startswith(item)]
        if not match:
            break
        chosen.append(match[0])
    return chosen


def visible_card_totals() -> list[int] | None:
    """Total memory of each GPU this process may use (NVML, else torch); None when neither can tell."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            devices = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                uuid = pynvml.nvmlDeviceGetUUID(handle)
                uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
                devices.append((index, uuid, int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)))
        finally:
            pynvml.nvmlShutdown()
        return visible(devices, os.environ.get("CUDA_VISIBLE_DEVICES"))
    except Exception:  # noqa: BLE001 - no pynvml, no driver: try torch
        pass
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no torch either
        return None


def budget_from_environment(margin_gib: float) -> GpuBudget:
    """The budget of this process: the cap from the harness, the smallest visible card."""
    cap = profile_card().memory_bytes  # SHOPBENCH_GPU_MEMORY_BYTES, checked by submission/card.py
    totals = visible_card_totals() if cap is not None else None
    gpu_visible = bool(totals) or (totals is None and os.path.exists("/dev/nvidiactl")
                                   and os.environ.get("CUDA_VISIBLE_DEVICES") != "")
    return GpuBudget(cap_bytes=cap, card_bytes=min(totals) if totals else None,
                     margin_bytes=int(margin_gib * GIB), gpu_visible=gpu_visible)
