"""The host/container contract: the job is the only thing that enters the container besides each batch's
prompts (no question file, no answer, no host path), and what results.json says of the container comes from
what the host gave it."""

import json

from submission.grading.container_contract import COMMAND, CONTAINER_HOME, container_job, container_side
from submission.harness.gpu import GpuDevice, GpuPlan
from submission.harness.profiles import limits_for, load_profiles
from submission.scoring.data import ALL_AROUND

PROFILES = load_profiles()


def test_the_job_names_the_model_and_the_limits_the_loop_applies_and_nothing_of_the_host():
    limits = limits_for(PROFILES["cpu"], ALL_AROUND)
    job = container_job("models.dummy_model:DummyModel", 3, limits)
    assert job["model"] == "models.dummy_model:DummyModel" and job["seed"] == 3 and job["repo"] == CONTAINER_HOME
    assert job["ram_bytes"] == limits.ram_bytes and job["fsize_bytes"] == limits.disk_bytes and job["rlimit_as"]
    assert job["sys_path"] == [] and job["gpu_uuids"] == [] and job["torch_fraction"] is None
    assert job["env"] == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}  # no card under a profile without GPUs
    text = json.dumps(job)
    assert "/work" not in text and "/tmp/" not in text and "prompt" not in text


def test_a_profile_with_a_card_gives_the_loop_its_rules_and_torchs_share():
    limits = limits_for(PROFILES["phase2"], ALL_AROUND)
    plan = GpuPlan(devices=(GpuDevice(0, "GPU-0", "NVIDIA H200", 141 * 1024**3),), cuda_visible_devices="GPU-0")
    job = container_job(None, 0, limits, plan)
    assert job["env"]["SHOPBENCH_GPU_MEMORY_BYTES"] == str(limits.gpu_memory_bytes)
    assert job["env"]["SHOPBENCH_COMPUTE_CAPABILITY"] == "7.5" and job["env"]["SHOPBENCH_BFLOAT16"] == "0"
    assert 0 < job["torch_fraction"] < limits.gpu_memory_bytes / (141 * 1024**3)
    assert job["gpu_uuids"] == ["GPU-0"] and job["rlimit_as"] is False


def test_results_json_describes_the_container_from_the_hosts_record():
    side = container_side({"user": "1001:1001"})
    assert (side["uid"], side["gid"], side["command"]) == (1001, 1001, COMMAND)
