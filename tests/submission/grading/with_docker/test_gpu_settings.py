"""The GPU settings of a submission's container, read back from the daemon's inspect data of a created
container, and the error a daemon without the NVIDIA runtime gives."""

import os
import socket

import pytest

from submission.grading.container_runner import (
    ContainerSettings,
    GpuRuntimeMissing,
    Resources,
    audit,
    create_container,
    start_container,
)
from submission.harness.profiles import limits_for, load_profiles
from submission.scoring.data import ALL_AROUND

pytestmark = pytest.mark.docker

PROFILES = load_profiles()


def created(client, image, tmp_path, profile: str, gpus: int):
    limits = limits_for(PROFILES[profile], ALL_AROUND)
    resources = Resources(nano_cpus=None, mem_bytes=None, shm_bytes=64 * 1024**2, gpus=gpus)
    container = create_container(client, ContainerSettings(image=image), limits, resources)
    container.reload()
    return container, resources


def test_a_profile_without_gpus_gets_none_even_from_an_nvidia_default_runtime(docker_client, base_image, tmp_path):
    container, _ = created(docker_client, base_image, tmp_path, "cpu", 0)
    try:
        env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
        assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
        assert not container.attrs["HostConfig"].get("DeviceRequests")
    finally:
        container.remove(force=True)


def test_gpus_are_requested_with_the_drivers_compute_and_utility_libraries(docker_client, base_image, tmp_path):
    container, resources = created(docker_client, base_image, tmp_path, "phase2", 2)
    try:
        (request,) = container.attrs["HostConfig"]["DeviceRequests"]
        assert request["Count"] == 2 and request["Capabilities"] == [["gpu", "compute", "utility"]]
        assert audit(container)["gpu_capabilities"] == [[["gpu", "compute", "utility"]]]
        env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
        assert "NVIDIA_VISIBLE_DEVICES" not in env
        if "nvidia" in (docker_client.info().get("Runtimes") or {}):
            pytest.skip("this daemon has the NVIDIA runtime: the missing-runtime error cannot happen here")
        with pytest.raises(GpuRuntimeMissing, match="has no NVIDIA runtime .*could not select device driver.*"
                                                    "nvidia-container-toolkit.*--profile cpu"):
            start_container(container, resources)
    finally:
        container.remove(force=True)


def test_chosen_devices_and_the_callers_labels_reach_the_daemon(docker_client, base_image, tmp_path):
    """What a worker asks for each grade: its devices by id (grade --gpus) and its name (grade --label)."""
    limits = limits_for(PROFILES["phase2"], ALL_AROUND)
    resources = Resources(nano_cpus=None, mem_bytes=None, shm_bytes=64 * 1024**2, gpus=2, device_ids=("1", "3"))
    settings = ContainerSettings(image=base_image, labels=(("shopbench.worker", "w1@host"),))
    container = create_container(docker_client, settings, limits, resources)
    try:
        container.reload()
        (request,) = container.attrs["HostConfig"]["DeviceRequests"]
        assert request["DeviceIDs"] == ["1", "3"] and not request.get("Count")
        assert audit(container)["gpu_device_ids"] == [["1", "3"]]
        assert container.labels == {"shopbench.worker": "w1@host", "shopbench.role": "submission-run",
                                    "shopbench.judge": f"{socket.gethostname()}:{os.getpid()}"}
    finally:
        container.remove(force=True)
