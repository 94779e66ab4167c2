"""The profile's card in the model's own process (submission/harness/gpu_emulation.py): torch reports and
chooses as a T4 would, flash_attn is refused, and bfloat16 weights on the GPU end the run `unsupported`.
No GPU here: torch's CUDA calls are replaced by a fake module's, and "on the GPU" is a parameter that says
so (tests/fake_models/gpu_models.py); the harness runs are real processes."""

import json
from types import SimpleNamespace

import pytest
import torch
from kit_paths import TESTS

from submission.card import ProfileCard
from submission.harness import gpu_emulation
from submission.harness.gpu_emulation import bfloat16_weights, patch_torch
from submission.harness.outcome import ModelSpec
from submission.harness.profiles import limits_for, load_profiles
from submission.harness.runner import run_model
from submission.scoring.data import ALL_AROUND, Question

PROFILES = load_profiles()
PHASE2 = limits_for(PROFILES["phase2"], ALL_AROUND)
T4 = ProfileCard(capability=(7, 5), bfloat16=False, flash_attention_2=False, name="NVIDIA T4")
T4_ENV = {"SHOPBENCH_COMPUTE_CAPABILITY": "7.5", "SHOPBENCH_BFLOAT16": "0", "SHOPBENCH_FLASH_ATTENTION_2": "0",
          "SHOPBENCH_GPU_NAME": "NVIDIA T4"}


def fake_torch(capability=(9, 0)):
    """The parts of torch the emulation changes, as an H200 would answer."""
    flags = {"flash": True, "cudnn": True}
    backends = SimpleNamespace(cuda=SimpleNamespace(enable_flash_sdp=lambda on: flags.update(flash=on),
                                                    enable_cudnn_sdp=lambda on: flags.update(cudnn=on)))
    cuda = SimpleNamespace(get_device_capability=lambda device=None: capability,
                           is_bf16_supported=lambda including_emulation=True: True)
    return SimpleNamespace(cuda=cuda, backends=backends), flags


def test_torch_reports_the_profiles_card_and_drops_the_kernels_it_lacks():
    torch_, flags = fake_torch()
    patch_torch(torch_, T4)
    assert torch_.cuda.get_device_capability() == (7, 5) and torch_.cuda.get_device_capability(0) == (7, 5)
    assert torch_.cuda.is_bf16_supported() is False
    assert flags == {"flash": False, "cudnn": False}
    patch_torch(torch_, T4)  # idempotent: still one layer
    assert torch_.cuda.get_device_capability() == (7, 5)


def test_a_lower_real_card_and_a_card_with_bfloat16_are_reported_as_they_are():
    torch_, flags = fake_torch(capability=(7, 0))  # a V100 under a T4 profile: the real, lower figure
    patch_torch(torch_, T4)
    assert torch_.cuda.get_device_capability() == (7, 0)
    a100, flags = fake_torch()
    patch_torch(a100, ProfileCard(capability=(8, 0), bfloat16=True, flash_attention_2=True, name="A100"))
    assert a100.cuda.get_device_capability() == (8, 0) and a100.cuda.is_bf16_supported() is True
    assert flags == {"flash": True, "cudnn": True}


def holder(dtype, on_gpu=True):
    from fake_models.gpu_models import TinyCausalLM, on_fake_cuda

    model = TinyCausalLM(dtype)
    if on_gpu:
        on_fake_cuda(model.body), on_fake_cuda(model.lm_head)
    tokenizer = SimpleNamespace(vocab={str(i): i for i in range(50)})
    return SimpleNamespace(pipeline={"generator": model}, tokenizer=tokenizer)


def test_bfloat16_weights_on_the_gpu_are_named_with_the_card():
    found = bfloat16_weights(holder(torch.bfloat16), T4_ENV)
    assert found == ("pipeline['generator'].lm_head.weight is bfloat16 on cuda:0; the grader's NVIDIA T4 (compute "
                     "capability 7.5) has no bfloat16: load the model in float16 (dtype=torch.float16)")


@pytest.mark.parametrize("model, environ", [
    (holder(torch.float16), T4_ENV),  # float16: what a T4 runs
    (holder(torch.bfloat16, on_gpu=False), T4_ENV),  # bfloat16 on the CPU: a T4 machine's CPU has it
    (holder(torch.bfloat16), {}),  # no card exported (--no-limits)
    (torch.nn.Linear(2, 2), T4_ENV),
])
def test_what_a_t4_runs_passes(model, environ):
    assert bfloat16_weights(model, environ) is None


def test_a_model_that_is_itself_a_module_and_a_loose_tensor_are_scanned():
    from fake_models.gpu_models import on_fake_cuda

    module = on_fake_cuda(torch.nn.Linear(2, 2).to(torch.bfloat16))
    assert bfloat16_weights(module, T4_ENV).startswith("weight is bfloat16 on cuda:0")
    loose = SimpleNamespace(cache=[None, {"k": module.weight}])
    assert bfloat16_weights(loose, T4_ENV).startswith("cache[1]['k'] is bfloat16")


# ---------------------------------------------------------------- in the model's process, through the harness


QUESTIONS = [Question(row, f"question {row}", False) for row in range(4)]


def run(tmp_path, model, limits, **env):
    spec = ModelSpec(model=f"fake_models.gpu_models:{model}", repo=str(TESTS),
                     env={f"FAKE_{k.upper()}": str(v) for k, v in env.items()})
    outcome = run_model(spec, QUESTIONS, tmp_path / "out", limits)
    path = tmp_path / "out" / "predictions.jsonl"
    answers = [json.loads(json.loads(line)["output"]) for line in path.open()] if path.exists() else []
    return outcome, answers


def test_in_the_models_process_torch_and_flash_attn_behave_as_on_a_t4(tmp_path):
    outcome, answers = run(tmp_path, "SeesTheCard", PHASE2)
    assert outcome.verdict.ok, outcome.verdict
    seen = answers[0]
    assert seen["capability_function"] == seen["bf16_function"] == "submission.harness.gpu_emulation"
    assert seen["bf16_supported"] is False and seen["flash_sdp"] is False and seen["cudnn_sdp"] is False
    assert seen["mem_efficient_sdp"] is True  # a T4 runs it
    assert seen["flash_attn"].startswith("ImportError: flash_attn cannot be used: the grader's NVIDIA T4 (compute "
                                         "capability 7.5) cannot run FlashAttention-2")
    behaves = "torch in the model's process behaves as the grader's NVIDIA T4"
    assert any(note.startswith(behaves) for note in outcome.notes)


def test_without_limits_nothing_is_emulated(tmp_path):
    _, answers = run(tmp_path, "SeesTheCard", limits_for(PROFILES["phase2"], ALL_AROUND, enabled=False))
    seen = answers[0]
    assert seen["capability_function"] == "torch.cuda" and seen["flash_sdp"] is True
    assert seen["flash_attn"] == "imported 2.8.3"


def test_bfloat16_weights_built_in_init_end_the_run_unsupported(tmp_path):
    outcome, answers = run(tmp_path, "HoldsBfloat16OnGpu", PHASE2)
    assert outcome.verdict.status == "unsupported" and answers == []
    assert outcome.verdict.detail.startswith("pipeline['generator'].lm_head.weight is bfloat16 on cuda:0; the "
                                             "grader's NVIDIA T4 (compute capability 7.5) has no bfloat16")


def test_bfloat16_weights_loaded_in_the_first_batch_end_the_run_after_it(tmp_path):
    outcome, answers = run(tmp_path, "HoldsBfloat16OnGpu", PHASE2, load_late=1)
    assert outcome.verdict.status == "unsupported" and outcome.n_answered == 2 and len(answers) == 2


@pytest.mark.parametrize("limits, dtype", [(PHASE2, "float16"),
                                           (limits_for(PROFILES["phase2"], ALL_AROUND, enabled=False), "bfloat16")],
                         ids=["float16-on-a-t4", "bfloat16-without-limits"])
def test_what_the_card_allows_ends_ok(tmp_path, limits, dtype):
    outcome, _ = run(tmp_path, "HoldsBfloat16OnGpu", limits, dtype=dtype)
    assert outcome.verdict.ok, outcome.verdict


def test_install_is_a_no_op_without_a_card(monkeypatch):
    before = list(__import__("sys").meta_path)
    assert gpu_emulation.install({}) == []
    assert __import__("sys").meta_path == before
