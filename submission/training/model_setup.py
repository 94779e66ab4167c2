"""The base model for training: device, dtype and QLoRA decided by the baseline's hardware rules, then LoRA.

``plan_precision`` is pure (tested without a GPU): it calls ``backends/hardware.py``, the rules the
baseline applies at inference, so training and inference agree on every card: float16 on T4-class
GPUs, bfloat16 refused below compute capability 8.0, float32 on CPU. QLoRA (a bitsandbytes NF4 base
prepared for k-bit training) is CUDA only and refused on CPU before anything loads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.hardware import check_attention, cuda_capability, resolve_device, resolve_dtype
from ..backends.quiet import peft_quietly
from ..backends.transformers_settings import TransformersSettings
from ..errors import ConfigError
from .config import FinetuneConfig, LoraSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrecisionPlan:
    """Where and how the base model trains."""

    device: str  # "cpu" or "cuda"
    dtype: str  # "float32", "float16" or "bfloat16": the base weights' dtype
    quantization: str  # "none" or "4bit"
    capability: tuple[int, int] | None

    @property
    def mixed_precision(self) -> str | None:
        """The trainer's autocast: "fp16" or "bf16" on CUDA half-precision weights, else None."""
        if self.device != "cuda" or self.dtype == "float32":
            return None
        return "fp16" if self.dtype == "float16" else "bf16"


def plan_precision(config: FinetuneConfig, base: TransformersSettings, cuda_available: bool,
                   capability: tuple[int, int] | None) -> PrecisionPlan:
    """Device, dtype and quantisation for training, or ConfigError saying why not and what to change."""
    try:
        device = resolve_device(base.device, cuda_available)
        capability = capability if device == "cuda" else None
        dtype = resolve_dtype(base.dtype, device, capability)
        check_attention(base.attn_implementation, device, capability)
    except ConfigError as error:
        raise ConfigError(f"{config.base_config_path}: {error}", key=error.key) from None
    if config.quantization == "4bit" and device != "cuda":
        reason = "torch sees no GPU" if not cuda_available else f"the base config asks for device: {base.device}"
        raise ConfigError("quantization: 4bit (QLoRA) trains a bitsandbytes NF4 base on a CUDA GPU, and "
                          f"{reason}; use quantization: none on CPU (LoRA on the float32 base)")
    return PrecisionPlan(device, str(dtype).removeprefix("torch."), config.quantization, capability)


def current_plan(config: FinetuneConfig, base: TransformersSettings) -> PrecisionPlan:
    """``plan_precision`` for this machine."""
    import torch

    available = torch.cuda.is_available()
    return plan_precision(config, base, available, cuda_capability() if available else None)


def load_base(folder: Path, plan: PrecisionPlan, base: TransformersSettings, gradient_checkpointing: bool) -> Any:
    """The base model as the plan says; a 4-bit base is prepared for k-bit training."""
    import torch
    from transformers import AutoModelForCausalLM

    from ..backends.transformers import quantization_config

    dtype = getattr(torch, plan.dtype)
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": base.attn_implementation,
                              "device_map": {"": plan.device}}
    if plan.quantization == "4bit":
        kwargs["quantization_config"] = quantization_config("4bit", dtype)
    log.info("loading %s on %s as %s (quantization %s)", folder, plan.device, plan.dtype, plan.quantization)
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    model.config.use_cache = False  # no generation while training; the cache only costs memory
    if plan.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    return model


def linear_layer_names(model: Any) -> list[str]:
    """The last name part of every linear layer (what LoRA's target_modules match), sorted."""
    import torch

    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt")}
    return sorted(names)


def add_lora(model: Any, lora: LoraSettings, config_source: str) -> Any:
    """Wrap ``model`` with fresh LoRA adapters; unknown target modules are refused with the known ones."""
    with peft_quietly():
        from peft import LoraConfig, get_peft_model

    known = linear_layer_names(model)
    missing = [name for name in lora.target_modules if name not in known]
    if missing:
        raise ConfigError(f"{config_source}: lora.target_modules: {', '.join(missing)} is not a linear layer of "
                          f"this model; its linear layers are: {', '.join(known)}")
    settings = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                          target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")
    with peft_quietly():  # peft 0.21 asks transformers 5 for a renamed attribute; nothing to act on
        return get_peft_model(model, settings)
