"""The profile's card in the model's own process: libraries that ask see a T4, and bfloat16 weights end the run.

The kit's own code refuses bfloat16 and FlashAttention-2 under a T4 profile (``backends/hardware.py``), but
a participant's ``from_pretrained(dtype=torch.bfloat16, attn_implementation="flash_attention_2")`` would
run on an H200 and end ``ok``. Under a profile whose card lacks them (``submission/card.py``), the model's
process (``child.py``) therefore gets, before the model is imported (``install``):

- ``torch.cuda.get_device_capability()`` at most the profile's (7.5 on a T4) and
  ``torch.cuda.is_bf16_supported()`` False, so libraries that ask choose as on a T4;
- torch's flash and cuDNN attention kernels for ``scaled_dot_product_attention`` disabled (both need
  compute capability 8.0; the memory-efficient and math kernels, which a T4 runs, stay);
- ``import flash_attn`` failing with an ImportError that names the card, where the package is installed.

torch is not imported for this: an import hook patches it when the model first imports it (and at once
if it already has). After the model is built and after its first batch, ``bfloat16_weights`` looks
through the model object's attributes for torch modules and tensors on CUDA: a floating-point parameter
or buffer in bfloat16 ends the run with the verdict ``unsupported``, naming it and the card.

What cannot be emulated: ``torch.cuda.get_device_properties()`` and kernels that query the device
themselves (Triton, cuBLAS, autotuning) still see the real card, and the real card's speed is not a T4's
(``--time-scale`` stretches the clock instead).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

from ..card import ProfileCard, profile_card
from ..errors import ConfigError

MAX_DEPTH = 4  # how deep the scan follows attributes from the model object
MAX_OBJECTS = 10_000  # and how many objects it looks at


def lacks_flash_attention(card: ProfileCard) -> bool:
    return card.lacks_flash_attention_2()


def lacks_bfloat16(card: ProfileCard) -> bool:
    return card.lacks_bfloat16()


def emulated(card: ProfileCard) -> bool:
    return card.capability is not None or lacks_bfloat16(card) or lacks_flash_attention(card)


# ---------------------------------------------------------------- torch as the profile's card


def patch_torch(torch: Any, card: ProfileCard) -> None:
    """Make ``torch`` (the module) report and choose as ``card`` would; idempotent."""
    cuda = torch.cuda
    if getattr(cuda, "_shopbench_card", None) is not None:
        return
    real_capability, real_bf16 = cuda.get_device_capability, cuda.is_bf16_supported

    def get_device_capability(device: Any = None) -> tuple[int, ...]:
        real = tuple(real_capability(device))  # initialises CUDA, as the real one does
        return min(real, card.capability) if card.capability is not None else real

    def is_bf16_supported(*args: Any, **kwargs: Any) -> bool:
        return False if lacks_bfloat16(card) else real_bf16(*args, **kwargs)

    get_device_capability.__doc__ = f"torch's, at most {card.described()}'s (the kit's T4 emulation)."
    is_bf16_supported.__doc__ = f"torch's, False where {card.described()} has no bfloat16 (the kit's emulation)."
    cuda.get_device_capability, cuda.is_bf16_supported = get_device_capability, is_bf16_supported
    cuda._shopbench_card = card
    if lacks_flash_attention(card):
        torch.backends.cuda.enable_flash_sdp(False)  # a global flag: no CUDA call
        if hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
            torch.backends.cuda.enable_cudnn_sdp(False)


class _AfterExec(importlib.abc.Loader):
    """Runs the real loader, then ``after(module)``; the module keeps the real loader as its own."""

    def __init__(self, loader: importlib.abc.Loader, after: Callable[[ModuleType], None]) -> None:
        self.loader, self.after = loader, after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.after(module)


class _Refused(importlib.abc.Loader):
    def __init__(self, message: str) -> None:
        self.message = message

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        raise ImportError(self.message, name=spec.name)

    def exec_module(self, module: ModuleType) -> None:  # pragma: no cover - create_module raised
        raise ImportError(self.message, name=module.__name__)


class CardFinder(importlib.abc.MetaPathFinder):
    """On the model's first ``import torch``, patch it; ``import flash_attn`` fails where the card lacks it."""

    def __init__(self, card: ProfileCard) -> None:
        self.card = card

    def _real_spec(self, name: str, path: Sequence[str] | None,
                   target: ModuleType | None) -> importlib.machinery.ModuleSpec | None:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                return spec
        return None

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        top = name.partition(".")[0]
        if top == "flash_attn" and lacks_flash_attention(self.card):
            if self._real_spec(name, path, target) is None:
                return None  # not installed: the usual ModuleNotFoundError
            return importlib.machinery.ModuleSpec(name, _Refused(flash_attention_refusal(self.card)))
        if name != "torch" or "torch" in sys.modules:
            return None
        spec = self._real_spec(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _AfterExec(spec.loader, lambda module: patch_torch(module, self.card))
        return spec


def flash_attention_refusal(card: ProfileCard) -> str:
    return (f"flash_attn cannot be used: {card.described()} cannot run FlashAttention-2 (it needs compute "
            "capability 8.0); use attn_implementation='sdpa' or 'eager' (the kit's T4 emulation)")


def install(environ: Mapping[str, str] | None = None) -> list[str]:
    """In the model's process, before the model is imported: behave as the exported card. Returns notes."""
    try:
        card = profile_card(environ)
    except ConfigError as exc:  # a variable the model's settings overrode: the kit's rules still refuse it
        return [f"the card is not emulated in the model's process: {exc}"]
    if not emulated(card) or any(isinstance(f, CardFinder) for f in sys.meta_path):
        return []
    sys.meta_path.insert(0, CardFinder(card))
    if "torch" in sys.modules:
        patch_torch(sys.modules["torch"], card)
    what = [f"compute capability {card.capability[0]}.{card.capability[1]}" if card.capability else None,
            "no bfloat16" if lacks_bfloat16(card) else None,
            "no FlashAttention-2" if lacks_flash_attention(card) else None]
    return [f"torch in the model's process behaves as {card.described()}: " + ", ".join(w for w in what if w)]


# ---------------------------------------------------------------- bfloat16 weights


def _on_gpu(tensor: Any) -> bool:
    return bool(getattr(tensor, "is_cuda", False))


def _is_bf16(tensor: Any, torch: Any) -> bool:
    return tensor.dtype == torch.bfloat16 and tensor.is_floating_point() and _on_gpu(tensor)


def _tensors(value: Any, prefix: str, torch: Any, seen: set[int], depth: int) -> Iterator[tuple[str, Any]]:
    """(name, tensor) of every parameter, buffer and tensor reachable from ``value`` through attributes,
    lists, tuples and dicts, at most MAX_DEPTH deep."""
    if id(value) in seen or depth > MAX_DEPTH or len(seen) > MAX_OBJECTS:
        return
    seen.add(id(value))
    if isinstance(value, torch.nn.Module):
        for name, tensor in (*value.named_parameters(), *value.named_buffers()):
            yield f"{prefix}.{name}", tensor
        return
    if isinstance(value, torch.Tensor):
        yield prefix, value
        return
    if isinstance(value, dict):
        items = [(f"{prefix}[{k!r}]", v) for k, v in list(value.items())[:1000]]
    elif isinstance(value, (list, tuple)):
        items = [(f"{prefix}[{i}]", v) for i, v in enumerate(value[:1000])]
    elif hasattr(value, "__dict__") and not isinstance(value, type) and type(value).__module__ != "builtins":
        items = [(f"{prefix}.{k}", v) for k, v in list(vars(value).items())]
    else:
        return
    for name, item in items:
        yield from _tensors(item, name, torch, seen, depth + 1)


def bfloat16_weights(model: Any, environ: Mapping[str, str] | None = None) -> str | None:
    """The ``unsupported`` verdict's detail when the model holds a bfloat16 parameter or buffer on CUDA
    under a card without bfloat16 (e.g. "lm_head.weight is bfloat16; ..."), else None."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "nn"):
        return None
    try:
        card = profile_card(environ)
        if not lacks_bfloat16(card):
            return None
        for name, tensor in _tensors(model, "self", torch, set(), 0):
            if _is_bf16(tensor, torch):
                return (f"{name.removeprefix('self.')} is bfloat16 on {tensor.device}; {card.described()} has no "
                        "bfloat16: load the model in float16 (dtype=torch.float16)")
    except Exception:  # noqa: BLE001 - an object the scan cannot read: the kit's own rules still apply
        return None
    return None
