"""The precision plan follows the baseline's hardware rules: float32 on CPU, float16 on a T4, no bfloat16
below compute capability 8.0, QLoRA on CUDA only. Pure functions: the GPU cases run without a GPU."""

from __future__ import annotations

import pytest

from submission.backends.transformers_settings import TransformersSettings
from submission.errors import ConfigError
from submission.training.config import FinetuneConfig, LoraSettings
from submission.training.model_setup import PrecisionPlan, add_lora, linear_layer_names, plan_precision

T4, A100 = (7, 5), (8, 0)
QLORA = FinetuneConfig(quantization="4bit")


def plan(config=None, cuda=False, capability=None, **base) -> PrecisionPlan:
    return plan_precision(config or FinetuneConfig(), TransformersSettings(**base), cuda, capability)


def test_cpu_trains_in_float32_without_autocast():
    assert plan() == PrecisionPlan("cpu", "float32", "none", None)
    assert plan().mixed_precision is None
    assert plan(cuda=True, capability=T4, device="cpu").device == "cpu"


def test_a_t4_trains_in_float16_with_fp16_autocast():
    p = plan(cuda=True, capability=T4)
    assert (p.device, p.dtype, p.mixed_precision) == ("cuda", "float16", "fp16")


def test_bfloat16_is_refused_below_compute_capability_8():
    with pytest.raises(ConfigError, match=r"baseline\.yaml: dtype: bfloat16 needs a GPU of compute capability 8\.0"
                                          r".*7\.5"):
        plan(cuda=True, capability=T4, dtype="bfloat16")
    assert plan(cuda=True, capability=A100, dtype="bfloat16").mixed_precision == "bf16"


def test_qlora_is_refused_on_cpu_before_anything_loads():
    with pytest.raises(ConfigError, match=r"quantization: 4bit \(QLoRA\).*CUDA GPU, and torch sees no GPU; use "
                                          r"quantization: none on CPU"):
        plan(QLORA)
    with pytest.raises(ConfigError, match="the base config asks for device: cpu"):
        plan(QLORA, cuda=True, capability=T4, device="cpu")


def test_qlora_on_a_t4_is_a_float16_nf4_plan():
    assert plan(QLORA, cuda=True, capability=T4) == PrecisionPlan("cuda", "float16", "4bit", T4)


def test_cuda_without_a_gpu_and_flash_attention_on_a_t4_are_refused():
    with pytest.raises(ConfigError, match="device: cuda was requested but torch sees no GPU"):
        plan(device="cuda")
    with pytest.raises(ConfigError, match="flash_attention_2 needs compute capability 8.0"):
        plan(cuda=True, capability=T4, attn_implementation="flash_attention_2")


def test_unknown_lora_target_modules_are_refused_with_the_models_linear_layers(tiny_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    llama = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert llama <= set(linear_layer_names(model))
    with pytest.raises(ConfigError, match=r"ft\.yaml: lora\.target_modules: c_attn is not a linear layer of this "
                                          r"model; its linear layers are: .*q_proj"):
        add_lora(model, LoraSettings(target_modules=("q_proj", "c_attn")), "ft.yaml")
    wrapped = add_lora(model, LoraSettings(r=4, target_modules=("q_proj",)), "ft.yaml")
    trainable = {name for name, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name and "q_proj" in name for name in trainable)
