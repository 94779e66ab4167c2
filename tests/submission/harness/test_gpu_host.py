"""What the host must provide for the GPU limits to hold (submission/harness/gpu_host.py), and CUDA's view
of the cards in the plan: a fake NVML (fake_nvml.py) and a fake libcuda (fake_cuda.py) on the CPU."""

import logging
import subprocess
import sys

import pytest
from fake_cuda import FakeLibcuda, for_latest_nvml
from fake_nvml import Device, FakeNvml
from kit_paths import TESTS

from submission.card import CONTEXT_RESERVE_BYTES
from submission.cuda import TorchBuild
from submission.errors import LimitsError
from submission.harness import gpu as gpus
from submission.harness import gpu_host
from submission.harness.gpu import gpu_env, plan_gpus
from submission.harness.limits import process_tree
from submission.harness.outcome import ModelSpec
from submission.harness.profiles import limits_for, load_profiles
from submission.harness.runner import run_model
from submission.scoring.data import ALL_AROUND, Question

MIB = 1024**2
PHASE2 = limits_for(load_profiles()["phase2"], ALL_AROUND)
H200 = dict(name="NVIDIA H200", total=143_771 * MIB, cuda_total=143_156 * MIB)  # NVML's and CUDA's totals


@pytest.fixture(autouse=True)
def host_environment(monkeypatch):
    for name in ("CUDA_VISIBLE_DEVICES", "PYTORCH_CUDA_ALLOC_CONF", *gpus.CARD_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(gpus, "load_cuda", for_latest_nvml)


def h200s(n=1, **fields):
    return [Device(f"GPU-{i}aaa{i:04d}-0000-4000-8000-{i:012d}", **{**H200, **fields}) for i in range(n)]


# ---------------------------------------------------------------- torch's fraction of CUDA's total


def test_torchs_fraction_is_of_the_total_cuda_reports():
    """torch multiplies the fraction by CUDA's total: its limit must come out at the cap less the context
    reserve (14,310 MiB), not at 14,249 MiB as a fraction of NVML's larger total gives."""
    plan = plan_gpus(1, FakeNvml(h200s()))
    assert plan.devices[0].cuda_total_bytes == 143_156 * MIB
    env = gpu_env(PHASE2, plan, {})
    fraction = float(env["PYTORCH_CUDA_ALLOC_CONF"].split(":")[1])
    torch_limit = fraction * 143_156 * MIB
    wanted = PHASE2.gpu_memory_bytes - CONTEXT_RESERVE_BYTES
    assert wanted - MIB < torch_limit <= wanted


def test_without_cudas_total_the_fraction_falls_back_to_nvmls_with_a_note(monkeypatch):
    monkeypatch.setattr(gpus, "load_cuda", lambda: None)
    plan = plan_gpus(1, FakeNvml(h200s()))
    assert plan.devices[0].cuda_total_bytes is None and plan.devices[0].torch_total_bytes == 143_771 * MIB
    assert any("CUDA's total memory of a card could not be read" in note for note in plan.notes)


# ---------------------------------------------------------------- refusing what cannot be enforced


QUESTIONS = [Question(row, f"question {row}", False) for row in range(2)]


def run_with(tmp_path, monkeypatch, nvml):
    import submission.harness.runner as runner

    monkeypatch.setattr(runner, "load_nvml", lambda: nvml)
    monkeypatch.setattr(gpu_host, "nvidia_gpu_present", lambda: True)  # a host with an NVIDIA driver
    spec = ModelSpec(model="fake_models.models:Deterministic", repo=str(TESTS))
    return run_model(spec, QUESTIONS, tmp_path / "out", PHASE2)


def test_a_missing_nvml_binding_is_refused_before_the_model_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed
    with pytest.raises(LimitsError) as error:
        run_with(tmp_path, monkeypatch, None)
    message = str(error.value)
    assert message.startswith("the profile has 4 GPU(s) and this host has an NVIDIA driver, but the harness cannot "
                              "measure GPU memory: the package nvidia-ml-py (import pynvml) is not installed")
    assert "pip install nvidia-ml-py==13.615.71" in message and "--no-limits" in message
    assert not (tmp_path / "out" / "predictions.jsonl").exists()  # refused before any model process started


def test_an_nvml_library_that_cannot_load_is_named():
    """Here nvidia-ml-py is installed and no driver is: NVML's own error is what the message names."""
    assert gpu_host.nvml_problem().startswith("nvidia-ml-py is installed but NVML cannot be initialised (NVMLError")


def test_without_proc_a_missing_psutil_is_refused(monkeypatch):
    monkeypatch.setattr(gpu_host, "nvidia_gpu_present", lambda: True)
    monkeypatch.setattr(gpu_host, "proc_readable", lambda: False)
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(LimitsError, match="no /proc and the package psutil is not installed.*pip install psutil"):
        plan_gpus(4, FakeNvml(h200s(4)))
    monkeypatch.setattr(gpu_host, "proc_readable", lambda: True)  # Linux: /proc is enough
    assert len(plan_gpus(4, FakeNvml(h200s(4))).devices) == 4


def test_hosts_without_a_driver_or_runs_without_gpu_limits_are_not_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    not_emulated = "no NVIDIA GPU here: the profile's 4 GPUs and their memory cap are not emulated"
    assert plan_gpus(4, None).notes == (not_emulated,)
    monkeypatch.setattr(gpu_host, "nvidia_gpu_present", lambda: True)
    assert plan_gpus(None, None).cuda_visible_devices is None  # --no-limits: nothing to enforce
    assert plan_gpus(0, None).cuda_visible_devices == ""


def test_the_process_tree_is_read_from_proc_without_psutil(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.Popen(['sleep', '30']); "
                               "print('started', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline() == "started\n"
        tree = process_tree(parent.pid)
        assert tree[0] == parent.pid and len(tree) == 2  # the parent and its sleep
        with open(f"/proc/{tree[1]}/comm") as comm:
            assert comm.read().strip() == "sleep"
    finally:
        for pid in process_tree(parent.pid)[::-1]:
            subprocess.run(["kill", "-9", str(pid)], check=False)
        parent.wait()
    assert process_tree(parent.pid) == []  # gone


# ---------------------------------------------------------------- the driver, named at the start of a GPU run


def test_the_plan_names_the_driver_and_what_torch_needs(monkeypatch, caplog):
    monkeypatch.setattr("submission.cuda.torch_build", lambda: TorchBuild("2.13.0", "13.0"))
    monkeypatch.setattr(gpus, "load_cuda", lambda: FakeLibcuda(nvml.devices, driver_cuda=12040))
    nvml = FakeNvml(h200s(), driver="550.54.15")
    with caplog.at_level(logging.WARNING, logger="submission.harness.gpu_host"):
        plan = plan_gpus(1, nvml)
    sentence = ("NVIDIA driver 550.54.15 (supports CUDA 12.4); torch 2.13.0 is built for CUDA 13.0 and needs an R580 "
                "or newer driver: torch will not see the GPU")
    assert any(note.startswith(sentence) for note in plan.notes)
    assert sentence in caplog.text
    nvml = FakeNvml(h200s(), driver="580.95.05")
    monkeypatch.setattr(gpus, "load_cuda", lambda: FakeLibcuda(nvml.devices, driver_cuda=13000))
    assert plan_gpus(1, nvml).notes == ("NVIDIA driver 580.95.05 (supports CUDA 13.0); torch 2.13.0 is built for "
                                        "CUDA 13.0 and needs an R580 or newer driver: ok",)
