"""The GPU plan, the model's environment and the NVML accounting, driven by a fake NVML module
(tests/submission/harness/fake_nvml.py): devices, processes, MIG, errors and old drivers, on the CPU."""

import json
import os
import subprocess
import sys

import psutil
import pytest
import torch
from fake_cuda import for_latest_nvml
from fake_nvml import FUNCTION_NOT_FOUND, GIB, UNKNOWN, Device, FakeNvml
from kit_paths import TESTS

from submission.card import CONTEXT_RESERVE_BYTES
from submission.harness import gpu as gpus
from submission.harness.gpu import alloc_conf, gpu_env, plan_gpus, torch_fraction
from submission.harness.gpu_child import gpu_failure
from submission.harness.gpu_memory import GpuAccountant
from submission.harness.limits import ResourceMonitor
from submission.harness.outcome import HarnessOptions, ModelSpec
from submission.harness.profiles import limits_for, load_profiles
from submission.harness.runner import run_model
from submission.scoring.data import ALL_AROUND, Question

MIB = 1024**2
PROFILES = load_profiles()
PHASE2 = limits_for(PROFILES["phase2"], ALL_AROUND)
CAP = PHASE2.gpu_memory_bytes


@pytest.fixture(autouse=True)
def host_environment(monkeypatch):
    for name in ("CUDA_VISIBLE_DEVICES", "PYTORCH_CUDA_ALLOC_CONF", *gpus.CARD_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(gpus, "load_cuda", for_latest_nvml)  # the fake driver shows the fake NVML's cards


def uuid(i: int) -> str:
    return f"GPU-{i}aaa{i:04d}-0000-4000-8000-{i:012d}"


def cards(n=4, **fields):
    return [Device(uuid(i), **fields) for i in range(n)]


def free_pid() -> int:
    """A pid no process has here (as a host pid NVML lists from inside a container)."""
    pid = gpus._pid_max() - 1
    while psutil.pid_exists(pid):
        pid -= 1
    return pid


# ---------------------------------------------------------------- which devices the model sees


def test_the_profiles_gpus_are_the_first_ones_by_cuda_index():
    plan = plan_gpus(2, FakeNvml(cards(4)))
    assert [d.uuid for d in plan.devices] == [uuid(0), uuid(1)]
    assert plan.cuda_visible_devices == "0,1" and plan.notes == ()  # indices: vLLM parses each with int()
    assert plan.processes_call == "nvmlDeviceGetComputeRunningProcesses_v3"


def test_devices_nvml_may_not_open_are_skipped_and_indices_follow_cudas_view(monkeypatch):
    nvml = FakeNvml(cards(4))
    nvml.devices[1].openable = False  # a cgroup-restricted host: CUDA does not see it either
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2")
    plan = plan_gpus(4, nvml)
    assert [d.uuid for d in plan.devices] == [uuid(2), uuid(3)]
    assert plan.cuda_visible_devices == "1,2"  # CUDA numbers only the cards it may open: NVML's 2 and 3
    assert plan.notes[0].startswith("NVML device 1 skipped: it cannot be opened here (Insufficient Permissions)")
    assert "the profile has 4 GPUs but 2 are here" in plan.notes


def test_a_mig_card_is_seen_as_its_mig_devices_named_by_mig_uuid(monkeypatch):
    nvml = FakeNvml([Device("GPU-card0", migs=[Device("MIG-a1", name="H200 1g.18gb", total=18 * GIB),
                                              Device("MIG-b2", name="H200 1g.18gb", total=18 * GIB)]),
                     Device("GPU-card1")])
    plan = plan_gpus(None, nvml)
    assert [(d.uuid, d.mig) for d in plan.devices] == [("MIG-a1", True), ("MIG-b2", True), ("GPU-card1", False)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-b2")
    plan = plan_gpus(1, nvml)
    assert plan.cuda_visible_devices == "MIG-b2" and plan.devices[0].total_bytes == 18 * GIB
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-card1")  # a whole card beside a MIG card: by UUID too
    assert plan_gpus(1, nvml).cuda_visible_devices == "GPU-card1"


@pytest.mark.parametrize("visible, expected", [
    ("2", [uuid(2)]),
    ("GPU-3", [uuid(3)]),  # a unique prefix, as CUDA accepts
    ("0,7,1", [uuid(0)]),  # CUDA stops at the first entry it cannot resolve
    ("1,1", [uuid(1)]),
    ("GPU-", []),  # ambiguous
])
def test_cuda_visible_devices_is_read_as_cuda_reads_it(monkeypatch, visible, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert [d.uuid for d in plan_gpus(None, FakeNvml(cards(4))).devices] == expected


def test_an_empty_cuda_visible_devices_means_no_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    plan = plan_gpus(4, FakeNvml(cards(4)))
    assert plan.devices == () and plan.cuda_visible_devices == ""
    assert plan.notes == ("CUDA_VISIBLE_DEVICES is empty: no GPU is used; the profile's 4 GPUs are not emulated",)


# ---------------------------------------------------------------- probing NVML once


def test_an_old_driver_without_the_v3_call_is_measured_with_v2():
    nvml = FakeNvml(cards(1), has_v3=False)
    plan = plan_gpus(1, nvml)
    assert plan.processes_call == "nvmlDeviceGetComputeRunningProcesses_v2" and plan.notes == ()


def test_impossible_pids_from_a_mismatched_binding_fall_back_to_v2_with_a_note():
    nvml = FakeNvml(cards(1, processes=lambda: [(os.getpid(), GIB)]), scrambled_v3=True)
    plan = plan_gpus(1, nvml)
    assert plan.processes_call == "nvmlDeviceGetComputeRunningProcesses_v2"
    assert "returned impossible process ids" in plan.notes[0]


def test_no_usable_process_call_means_device_level_measurement():
    nvml = FakeNvml(cards(1), has_v3=False, failures=[UNKNOWN])
    plan = plan_gpus(1, nvml)
    assert plan.processes_call is None
    assert plan.notes[-1] == "NVML cannot list the processes on the GPUs here: GPU memory is measured at device level"


# ---------------------------------------------------------------- the model's environment


def test_the_profiles_card_and_torchs_cap_are_exported():
    plan = plan_gpus(4, FakeNvml(cards(4)))
    env = gpu_env(PHASE2, plan, {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"})
    fraction = torch_fraction(CAP, CONTEXT_RESERVE_BYTES, 141 * GIB - 600 * MIB)  # of CUDA's total (fake_cuda.py)
    assert env == {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": plan.cuda_visible_devices,
        "SHOPBENCH_GPU_MEMORY_BYTES": str(14_910 * MIB), "SHOPBENCH_COMPUTE_CAPABILITY": "7.5",
        "SHOPBENCH_BFLOAT16": "0", "SHOPBENCH_FLASH_ATTENTION_2": "0", "SHOPBENCH_GPU_NAME": "NVIDIA T4",
        "PYTORCH_CUDA_ALLOC_CONF": f"expandable_segments:True,per_process_memory_fraction:{fraction:.6f}",
    }
    cuda_total = 141 * GIB - 600 * MIB
    assert fraction * cuda_total <= CAP - CONTEXT_RESERVE_BYTES < (fraction + 1e-6) * cuda_total


@pytest.mark.parametrize("limits", [limits_for(PROFILES["phase2"], ALL_AROUND, enabled=False),
                                    limits_for(PROFILES["cpu"], ALL_AROUND)], ids=["no-limits", "cpu"])
def test_without_a_card_to_enforce_its_variables_are_removed_and_the_device_order_stays(limits):
    env = gpu_env(limits, plan_gpus(limits.gpus, FakeNvml(cards(2))), {})
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert all(env[name] is None for name in gpus.CARD_VARIABLES) and "PYTORCH_CUDA_ALLOC_CONF" not in env


def test_a_torch_that_does_not_read_the_fraction_key_is_not_given_it(monkeypatch):
    assert gpus.torch_reads_fraction()  # the pinned torch 2.13 lists it in its CUDAAllocatorConfig.h
    monkeypatch.setattr(gpus, "torch_reads_fraction", lambda: False)  # an older torch stops on unknown keys
    env = gpu_env(PHASE2, plan_gpus(4, FakeNvml(cards(4))), {})
    assert "PYTORCH_CUDA_ALLOC_CONF" not in env and env["SHOPBENCH_GPU_MEMORY_BYTES"] == str(CAP)


def test_fractions_round_down_and_replace_an_earlier_one():
    assert torch_fraction(10, 0, 30) == 0.333333 and torch_fraction(10, 20, 30) == 0.0
    assert torch_fraction(50, 0, 30) == 1.0
    assert alloc_conf("per_process_memory_fraction:0.9,max_split_size_mb:64", 0.5) == \
        "max_split_size_mb:64,per_process_memory_fraction:0.500000"


# ---------------------------------------------------------------- accounting


def accountant(nvml, n=1):
    plan = plan_gpus(n, nvml)
    return plan, GpuAccountant(plan, nvml)


def test_the_models_processes_are_summed_and_others_ignored():
    other = psutil.Process(os.getppid()).pid  # a live process that is not the model's
    nvml = FakeNvml(cards(1, processes=lambda: [(os.getpid(), 3 * GIB), (other, 9 * GIB)]))
    plan, gpu = accountant(nvml)
    assert gpu.poll({os.getpid()}) == [(plan.devices[0], 3 * GIB, "process")]
    assert gpu.poll({12345678}) == [(plan.devices[0], 0, "process")]  # only others' memory here
    assert gpu.peak(0) == (3 * GIB, "process") and gpu.notes() == []


def test_a_worker_that_reparented_counts_through_its_session():
    code = ("import subprocess, time; print(subprocess.Popen(['sh', '-c', 'sleep 60 >/dev/null & echo $!'], "
            "stdout=subprocess.PIPE).communicate()[0].decode(), flush=True); time.sleep(60)")
    leader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    try:
        worker = int(leader.stdout.readline())
        assert worker not in [p.pid for p in psutil.Process(leader.pid).children(recursive=True)]
        nvml = FakeNvml(cards(1, processes=lambda: [(worker, 5 * GIB)]))
        _, gpu = accountant(nvml)
        assert gpu.poll({leader.pid})[0][1:] == (5 * GIB, "process")
    finally:
        for pid in (worker, leader.pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        leader.wait()


def test_the_drivers_accounting_maximum_catches_a_peak_between_polls():
    nvml = FakeNvml(cards(1, processes=lambda: [(os.getpid(), 2 * GIB)], accounting={os.getpid(): 16 * GIB}))
    plan, gpu = accountant(nvml)
    assert plan.accounting == {plan.devices[0].uuid}
    assert gpu.poll({os.getpid()})[0][1] == 16 * GIB


def test_host_pids_in_a_container_give_a_device_level_figure_labelled_so():
    host_pid = free_pid()
    nvml = FakeNvml(cards(1, used=5 * GIB, processes=lambda: [(host_pid, 4 * GIB)]))
    _, gpu = accountant(nvml)  # 5 GiB in use before the run
    nvml.devices[0].used = 9 * GIB
    assert gpu.poll({os.getpid()})[0][1:] == (4 * GIB, "device")
    assert gpu.peak(0) == (4 * GIB, "device")
    assert "measured at device level" in gpu.notes()[0]
    assert "other tenants included, less the 5120 MiB" in gpu.notes()[0]


def test_a_process_whose_memory_nvml_withholds_is_measured_at_device_level():
    nvml = FakeNvml(cards(1, used=2 * GIB, processes=lambda: [(os.getpid(), None)]))  # MIG without privileges
    _, gpu = accountant(nvml)
    nvml.devices[0].used = 3 * GIB
    assert gpu.poll({os.getpid()})[0][1:] == (GIB, "device")


def test_repeated_nvml_errors_make_the_peak_unknown_never_zero():
    nvml = FakeNvml(cards(1, processes=lambda: [(os.getpid(), GIB)]))
    _, gpu = accountant(nvml)
    nvml.failures = [UNKNOWN, UNKNOWN]
    gpu.poll({os.getpid()}), gpu.poll({os.getpid()})
    assert gpu.poll({os.getpid()})[0][1] == GIB and gpu.peak(0) == (GIB, "process")  # two misses: transient
    nvml.failures = [UNKNOWN] * 3
    for _ in range(4):
        gpu.poll({os.getpid()})
    assert gpu.peak(0) == (None, None)
    assert gpu.notes() == ["GPU 0 (NVIDIA H200): peak GPU memory unknown: NVML failed 5 of 7 polls "
                           "(last: NVMLError_Unknown: Unknown Error)"]


def test_a_device_never_measured_has_no_peak():
    nvml = FakeNvml(cards(1))
    _, gpu = accountant(nvml)
    nvml.failures = [FUNCTION_NOT_FOUND]
    assert gpu.poll({os.getpid()}) == [] and gpu.peak(0) == (None, None)


def test_the_monitor_stops_the_model_over_the_cap_and_says_what_the_figure_counts():
    host_pid = free_pid()
    nvml = FakeNvml(cards(1, used=0, processes=lambda: [(host_pid, 1)]))
    plan = plan_gpus(1, nvml)
    monitor = ResourceMonitor(None, CAP, plan, nvml)
    assert monitor.poll([os.getpid()]) is None
    nvml.devices[0].used = CAP + MIB
    exceeded = monitor.poll([os.getpid()])
    assert (exceeded.kind, exceeded.used_bytes, exceeded.scope) == ("gpu_memory", CAP + MIB, "device")
    assert monitor.poll([]) is None  # no process to account for


# ---------------------------------------------------------------- errors in the model's process


def test_gpu_memory_errors_are_recognised_and_name_their_card():
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 1 has a total capacity of "
                                 "14.56 GiB of which 1.00 GiB is free.")
    assert gpu_failure(oom) == (True, 1)
    try:
        try:
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")
        except RuntimeError as exc:
            raise ValueError("bitsandbytes matmul failed") from exc
    except ValueError as wrapped:
        assert gpu_failure(wrapped) == (True, None)
    assert gpu_failure(RuntimeError("CUDA error: out of memory (GPU 3)")) == (True, 3)
    assert gpu_failure(ValueError("out of memory in my own cache")) == (False, None)


# ---------------------------------------------------------------- through the harness


QUESTIONS = [Question(row, f"question {row}", False) for row in range(4)]


FAST = HarnessOptions(poll_s=0.05, kill_grace_s=0.5)


def run(tmp_path, model, limits, nvml=None, options=FAST, **env):
    import submission.harness.runner as runner

    spec = ModelSpec(model=f"fake_models.models:{model}", repo=str(TESTS),
                     env={k.upper(): str(v) for k, v in env.items()})
    original = runner.load_nvml
    runner.load_nvml = lambda: nvml
    try:
        return run_model(spec, QUESTIONS, tmp_path / "out", limits, options)
    finally:
        runner.load_nvml = original


def outputs(tmp_path):
    return [json.loads(json.loads(line)["output"]) for line in (tmp_path / "out" / "predictions.jsonl").open()]


def test_the_model_gets_the_profiles_card_and_the_device_order(tmp_path):
    outcome = run(tmp_path, "ReportsCardEnvironment", PHASE2, FakeNvml(cards(4)), fake_fail_batch=-1)
    assert outcome.verdict.ok, outcome.verdict
    seen = outputs(tmp_path)[0]
    assert seen["SHOPBENCH_GPU_MEMORY_BYTES"] == str(CAP) and seen["SHOPBENCH_COMPUTE_CAPABILITY"] == "7.5"
    assert (seen["SHOPBENCH_BFLOAT16"], seen["SHOPBENCH_FLASH_ATTENTION_2"]) == ("0", "0")
    assert seen["SHOPBENCH_GPU_NAME"] == "NVIDIA T4"
    assert seen["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
    assert seen["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert "per_process_memory_fraction:" in seen["PYTORCH_CUDA_ALLOC_CONF"]


def test_without_limits_the_model_gets_no_card_but_the_device_order(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPBENCH_BFLOAT16", "1")  # left over from an outer run: not passed on
    limits = limits_for(PROFILES["phase2"], ALL_AROUND, enabled=False)
    outcome = run(tmp_path, "ReportsCardEnvironment", limits, None, fake_fail_batch=-1)
    seen = outputs(tmp_path)[0]
    assert outcome.verdict.ok and seen["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert all(seen[name] is None for name in gpus.CARD_VARIABLES) and seen["PYTORCH_CUDA_ALLOC_CONF"] is None


def test_a_cublas_allocation_failure_is_gpu_memory_on_the_card_it_names(tmp_path):
    outcome = run(tmp_path, "CublasAllocFails", PHASE2, None, fake_fail_batch=1)
    assert outcome.verdict.status == "gpu_memory"
    assert outcome.verdict.detail.startswith("GPU 2 (cuda:2) ran out of memory, cap 14.56 GiB; batch_predict (batch 1")


def test_memory_the_model_holds_on_a_card_over_the_cap_is_a_gpu_memory_verdict(tmp_path):
    def model_processes():
        return [(p.pid, 20 * GIB) for p in psutil.Process().children(recursive=True)]

    nvml = FakeNvml(cards(4, processes=model_processes))
    outcome = run(tmp_path, "Deterministic", PHASE2, nvml, fake_fail_batch=-1, fake_delay_s=0.3)
    assert outcome.verdict.status == "gpu_memory"
    assert outcome.verdict.detail == "GPU 0 (NVIDIA H200): peak 20.00 GiB of this process, cap 14.56 GiB"
    assert outcome.gpus[0].peak_bytes == 20 * GIB and outcome.gpus[0].measured == "process"


def test_a_last_poll_after_the_last_batch_catches_memory_before_ok(tmp_path):
    marker = tmp_path / "answered"

    def model_processes():  # the model holds 16 GiB once it has answered batch 0
        return [(p.pid, 16 * GIB) for p in psutil.Process().children(recursive=True)] if marker.exists() else []

    slow_polls = HarnessOptions(poll_s=3600, kill_grace_s=0.5)  # one poll at the start, then none until the end
    outcome = run(tmp_path, "TouchesFileEachBatch", PHASE2, FakeNvml(cards(1, processes=model_processes)),
                  options=slow_polls, fake_fail_batch=1, fake_marker=marker)
    assert marker.exists() and outcome.n_answered == 4
    assert outcome.verdict.status == "gpu_memory" and "peak 16.00 GiB" in outcome.verdict.detail


def test_after_the_build_torchs_cap_is_refitted_to_what_the_process_holds_outside_torch(monkeypatch):
    """The arithmetic only (no GPU here): torch's CUDA calls replaced by a 2-GPU state where the model
    reserved 1 GiB on cuda:0, and NVML lists this process with 1.5 GiB there (0.5 GiB outside torch)."""
    from types import SimpleNamespace

    import submission.harness.gpu_child as child_gpu

    nvml = FakeNvml(cards(2, processes=lambda: [(os.getpid(), 3 * GIB // 2)]))
    monkeypatch.setattr(child_gpu, "load_nvml", lambda: nvml)
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "")  # restored after the test: the refit writes it
    fractions = {}
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda index: [GIB, 0][index])
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(total_memory=141 * GIB))
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, index: fractions.update({index: f}))
    notes = child_gpu.refit_torch_cap(CAP, [uuid(0), uuid(1)])
    assert fractions == {0: torch_fraction(CAP, GIB // 2, 141 * GIB)}  # cuda:1 untouched: no context made there
    assert notes == ["cuda:0: torch capped at 14.06 GiB = the card's 14.56 GiB less 512 MiB outside torch (measured)"]
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == f"per_process_memory_fraction:{fractions[0]:.6f}"
    nvml.devices[0].processes = lambda: []  # a container: NVML does not list this process
    assert "600 MiB outside torch (an estimate" in child_gpu.refit_torch_cap(CAP, [uuid(0), uuid(1)])[0]
