"""The GPU memory arithmetic of a launched server, with injected numbers: the fraction that keeps vLLM
within the grader's per-card cap on any card, the refusals when that cannot be done, and the command
checked per engine (served/engines.py): the cap for vLLM, SGLang and llama.cpp, the card's dtypes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kit_paths import ROOT

from submission.backends.served.engines import check_command, engine_of
from submission.backends.served.gpu import (
    GIB,
    GpuBudget,
    GpuMemoryError,
    budget_from_environment,
    utilization,
    visible,
)
from submission.card import ProfileCard

T4_CAP = 15 * GIB
T4_TOTAL = 15360 * 1024 ** 2  # what NVML reports for a T4 (16 GB card)
H200_TOTAL = 143771 * 1024 ** 2
A100_80 = 81920 * 1024 ** 2
MIB = 1024 ** 2
NO_CARD = ProfileCard()  # no card exported: only the cap rules


def budget(card: int | None, cap: int | None = T4_CAP, margin: float = 1.0) -> GpuBudget:
    return GpuBudget(cap_bytes=cap, card_bytes=card, margin_bytes=int(margin * GIB), gpu_visible=True)


@pytest.mark.parametrize("card, expected", [
    (T4_TOTAL, 0.9),  # (15 - 1) / 15 = 0.933, above vLLM's own default: the default stays
    (A100_80, 0.175),  # 14 / 80
    (H200_TOTAL, 0.099714),  # 14 / 140.4, rounded down to 6 decimals (3 gave 0.099: 143 MiB unused)
])
def test_auto_keeps_fraction_times_card_plus_margin_within_the_cap(card, expected):
    fraction = utilization(budget(card), None)
    assert fraction == expected
    assert fraction * card + GIB <= T4_CAP
    if fraction < 0.9:  # the engine's budget is within 16 MiB of the cap less the margin
        assert T4_CAP - GIB - fraction * card < 16 * MIB


def test_without_a_cap_or_without_a_gpu_the_fraction_is_the_default_or_as_given():
    assert utilization(budget(H200_TOTAL, cap=None), None) == 0.9
    assert utilization(budget(H200_TOTAL, cap=None), 0.95) == 0.95
    cpu = GpuBudget(cap_bytes=T4_CAP, card_bytes=None, gpu_visible=False)
    assert utilization(cpu, None) == 0.9


def test_a_given_fraction_over_the_cap_is_refused_with_the_auto_value():
    with pytest.raises(GpuMemoryError) as error:
        utilization(budget(H200_TOTAL), 0.5)
    message = str(error.value)
    assert "gpu_memory_utilization 0.5 of this card's 140.40 GiB is 70.20 GiB" in message
    assert "over the cap 15.00 GiB per card less the margin 1.00 GiB" in message
    assert "use gpu_memory_utilization: auto (here 0.099714)" in message
    assert utilization(budget(H200_TOTAL), 0.09) == 0.09  # under the bound: kept as given


def test_an_unknown_card_size_or_a_margin_beyond_the_cap_is_refused():
    with pytest.raises(GpuMemoryError, match="the card's total memory cannot be read.*install nvidia-ml-py"):
        utilization(budget(None), None)
    with pytest.raises(GpuMemoryError, match="leaves nothing after the margin 16.00 GiB"):
        utilization(budget(T4_TOTAL, margin=16), None)


@pytest.mark.parametrize("argv, engine", [
    (["vllm", "serve", "m"], "vllm"),
    (["/opt/venv/bin/vllm", "serve", "m"], "vllm"),
    (["python3", "-m", "vllm.entrypoints.openai.api_server"], "vllm"),
    (["python", "-m", "sglang.launch_server"], "sglang"),
    (["llama-server", "-m", "m.gguf"], "llama.cpp"),
    (["/opt/llama.cpp/build/bin/llama-server", "-m", "m.gguf"], "llama.cpp"),
    (["transformers", "serve", "m"], None),
])
def test_engines_the_launcher_checks_are_recognised(argv, engine):
    assert engine_of(argv) == engine


def test_vllm_without_its_fraction_flag_is_refused_under_a_cap():
    with pytest.raises(GpuMemoryError, match=r"add `--gpu-memory-utilization \{gpu_memory_utilization\}`"):
        check_command(["vllm", "serve", "m", "--port", "1"], budget(H200_TOTAL), NO_CARD)
    with pytest.raises(GpuMemoryError, match="mem-fraction-static"):
        check_command(["python", "-m", "sglang.launch_server"], budget(H200_TOTAL), NO_CARD)
    argv = ["vllm", "serve", "m"]
    assert check_command(argv, budget(H200_TOTAL, cap=None), NO_CARD) == (argv, [])  # no cap: vLLM decides


def test_a_literal_fraction_in_the_command_is_checked_too():
    with pytest.raises(GpuMemoryError, match="gpu_memory_utilization 0.9 of this card"):
        check_command(["vllm", "serve", "m", "--gpu-memory-utilization=0.9"], budget(H200_TOTAL), NO_CARD)
    argv = ["vllm", "serve", "m", "--gpu-memory-utilization", "0.099714"]
    assert check_command(argv, budget(H200_TOTAL), NO_CARD) == (
        argv, ["vllm --gpu-memory-utilization 0.099714 of 140.40 GiB per card (cap 15.00 GiB)"])
    argv = ["transformers", "serve", "m"]
    assert check_command(argv, budget(H200_TOTAL), NO_CARD) == (argv, [])  # allocates what it needs: measured


def test_visible_cards_follow_cuda_visible_devices_by_index_or_uuid():
    devices = [(0, "GPU-aaa", 16), (1, "GPU-bbb", 80), (2, "GPU-ccc", 40)]
    assert visible(devices, None) == [16, 80, 40]
    assert visible(devices, "GPU-bbb,GPU-ccc") == [80, 40]
    assert visible(devices, "2,0") == [40, 16]
    assert visible(devices, "") == [] and visible(devices, "-1") == []
    assert visible(devices, "1,7,0") == [80]  # CUDA stops at the first invalid entry


def test_the_cap_comes_from_the_harness_environment_through_the_kits_card(monkeypatch):
    from submission.errors import ConfigError

    monkeypatch.setenv("SHOPBENCH_GPU_MEMORY_BYTES", str(T4_CAP))
    assert budget_from_environment(1.0).cap_bytes == T4_CAP
    monkeypatch.setenv("SHOPBENCH_GPU_MEMORY_BYTES", "15GiB")
    with pytest.raises(ConfigError, match="expected a whole number of bytes"):
        budget_from_environment(1.0)
    monkeypatch.delenv("SHOPBENCH_GPU_MEMORY_BYTES")
    assert budget_from_environment(1.0).cap_bytes is None


def test_the_served_model_imports_and_reads_the_card_in_an_image_without_torch():
    """A served submission's image may have no torch (its server holds the weights): the served model
    and the card rules it reads must import without it."""
    script = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def refuse(name, *args, **kwargs):\n"
        "    if name == 'torch' or name.startswith('torch.'):\n"
        "        raise ModuleNotFoundError(\"No module named 'torch'\")\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = refuse\n"
        "import submission.backends.served.model\n"
        "import models.served_model\n"
        "from submission.card import profile_card\n"
        "print(profile_card({'SHOPBENCH_GPU_MEMORY_BYTES': '1024'}).memory_bytes)\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1024", "False"]
