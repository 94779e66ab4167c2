"""The profile's card decides what a model may use: the stricter of the exported card and the real one.

The harness exports the card as environment variables (submission/harness/gpu.py writes them,
submission/card.py names and reads them); these tests set them as the harness does and check every rule
with the capability a GPU would report.
"""

import pytest
import torch

from submission.backends.hardware import (
    check_attention,
    cuda_capability,
    max_memory,
    resolve_device,
    resolve_dtype,
)
from submission.card import CONTEXT_RESERVE_BYTES, ProfileCard, profile_card
from submission.errors import ConfigError
from submission.harness.gpu import GpuPlan, gpu_env
from submission.harness.profiles import ALL_AROUND, limits_for, load_profiles

T4, A100, H100 = (7, 5), (8, 0), (9, 0)


@pytest.fixture
def phase2(monkeypatch):
    """The variables the harness exports under the phase2 profile, set in this process."""
    limits = limits_for(load_profiles()["phase2"], ALL_AROUND)
    for name, value in gpu_env(limits, GpuPlan(), {}).items():
        if name.startswith("SHOPBENCH_"):
            monkeypatch.setenv(name, value)
    return limits


def test_the_exported_card_reads_back_as_the_profile_wrote_it(phase2):
    assert profile_card() == ProfileCard(memory_bytes=phase2.gpu_memory_bytes, capability=(7, 5),
                                         bfloat16=False, flash_attention_2=False, name="NVIDIA T4")
    assert profile_card().described() == "the grader's NVIDIA T4 (compute capability 7.5)"
    assert profile_card({}) == ProfileCard()


@pytest.mark.parametrize("name, value, expected", [
    ("SHOPBENCH_GPU_MEMORY_BYTES", "15 GiB", "expected a whole number of bytes"),
    ("SHOPBENCH_COMPUTE_CAPABILITY", "sm75", "expected MAJOR.MINOR"),
    ("SHOPBENCH_BFLOAT16", "false", "expected 0 or 1"),
])
def test_a_malformed_exported_value_is_refused_naming_the_variable(name, value, expected):
    with pytest.raises(ConfigError, match=f"{name}=.*{expected}"):
        profile_card({name: value})


def test_bfloat16_is_refused_on_a_newer_card_when_the_profile_is_a_t4(phase2):
    with pytest.raises(ConfigError, match="bfloat16 is not available on the grader's card.*SHOPBENCH_BFLOAT16=0"):
        resolve_dtype("bfloat16", "cuda", H100)
    assert resolve_dtype("auto", "cuda", H100) is torch.float16  # what a 4-bit baseline computes in
    assert resolve_dtype("bfloat16", "cpu", None) is torch.bfloat16  # the card's rules are the GPU's


def test_the_profiles_capability_alone_refuses_bfloat16(monkeypatch):
    monkeypatch.setenv("SHOPBENCH_COMPUTE_CAPABILITY", "7.5")
    with pytest.raises(ConfigError, match="grader's card .* has 7.5"):
        resolve_dtype("bfloat16", "cuda", A100)
    monkeypatch.setenv("SHOPBENCH_COMPUTE_CAPABILITY", "9.0")  # a profile above the real card: the real one counts
    with pytest.raises(ConfigError, match="this GPU has 7.5"):
        resolve_dtype("bfloat16", "cuda", T4)
    assert resolve_dtype("bfloat16", "cuda", A100) is torch.bfloat16


def test_flash_attention_2_is_refused_on_a_newer_card_when_the_profile_is_a_t4(phase2, monkeypatch):
    with pytest.raises(ConfigError, match="flash_attention_2 is not available on the grader's card"):
        check_attention("flash_attention_2", "cuda", H100)
    check_attention("sdpa", "cuda", H100)
    monkeypatch.delenv("SHOPBENCH_FLASH_ATTENTION_2")
    with pytest.raises(ConfigError, match="flash_attention_2 needs compute capability 8.0.*grader's card.*7.5"):
        check_attention("flash_attention_2", "cuda", H100)


def test_without_an_exported_card_only_the_real_card_counts():
    assert resolve_dtype("bfloat16", "cuda", H100) is torch.bfloat16
    check_attention("flash_attention_2", "cuda", A100)
    assert max_memory(2) is None


def test_cuda_capability_is_the_lower_of_the_real_cards_and_the_profiles(monkeypatch, phase2):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: [(9, 0), (8, 6)][index])
    assert cuda_capability() == (7, 5)
    monkeypatch.setenv("SHOPBENCH_COMPUTE_CAPABILITY", "8.9")
    assert cuda_capability() == (8, 6)
    monkeypatch.delenv("SHOPBENCH_COMPUTE_CAPABILITY")
    assert cuda_capability() == (8, 6)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cuda_capability() is None


def test_a_gpu_host_whose_torch_cannot_use_the_gpu_falls_back_to_the_cpu_loudly(monkeypatch, tmp_path, caplog):
    import logging

    from submission import cuda
    from submission.backends import hardware

    version = tmp_path / "nvidia-version"
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:41 UTC 2024\n")
    monkeypatch.setattr(cuda, "DRIVER_VERSION_FILE", str(version))
    monkeypatch.setattr(cuda, "torch_build", lambda: cuda.TorchBuild("2.13.0", "13.0"))
    monkeypatch.setattr(hardware, "nvidia_gpu_present", lambda: True)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with caplog.at_level(logging.WARNING, logger="submission.backends.hardware"):
        assert resolve_device("auto", False) == "cpu"
    assert ("device: auto runs on the CPU although this host has an NVIDIA GPU: NVIDIA driver 550.54.15; torch "
            "2.13.0 is built for CUDA 13.0 and needs an R580 or newer driver: torch will not see the GPU"
            ) in caplog.text
    with pytest.raises(ConfigError, match=r"torch sees no GPU .*\(NVIDIA driver 550.54.15; torch 2.13.0"):
        resolve_device("cuda", False)
    caplog.clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # GPUs hidden on purpose (a profile without GPUs): no warning
    assert resolve_device("auto", False) == "cpu" and caplog.text == ""


def test_device_map_auto_gets_the_profiles_cap_per_gpu_and_the_rest_on_the_cpu(phase2):
    memory = max_memory(4)
    budget = phase2.gpu_memory_bytes - CONTEXT_RESERVE_BYTES
    assert {k: v for k, v in memory.items() if k != "cpu"} == {0: budget, 1: budget, 2: budget, 3: budget}
    assert memory["cpu"] > 0


def test_the_cpus_share_is_read_without_psutil(monkeypatch, phase2):
    import sys

    with_psutil = max_memory(1)["cpu"]
    monkeypatch.setitem(sys.modules, "psutil", None)  # an image whose requirements dropped psutil
    assert max_memory(1)["cpu"] == pytest.approx(with_psutil, rel=0.2)
