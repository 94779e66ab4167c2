"""What a container is given, decided without Docker: resources from the profile, the environment, tags."""

import pytest

from submission.cli.grade import container_labels
from submission.errors import ConfigError
from submission.grading.container_runner import (
    NO_LIMIT_SHM_BYTES,
    container_environment,
    container_resources,
)
from submission.grading.gpu_slots import device_ids
from submission.grading.images import default_tag
from submission.harness.profiles import limits_for, load_profiles

PROFILES = load_profiles()


def limits(name, enabled=True):
    return limits_for(PROFILES[name], "amazon-kdd-cup-24-all-around", enabled=enabled)


@pytest.mark.parametrize("profile, host_cpus, host_gpus, cpus, gpus, notes", [
    ("phase2", 64, 4, 40, 4, []),
    ("phase2", 64, 8, 40, 4, []),
    ("phase2", 16, 1, 16, 1, ["the profile's 40 CPUs capped at this host's 16",
                              "the profile has 4 GPUs but this host has 1: the container gets 1"]),
    ("phase1", 2, 0, 2, 0, ["the profile's 20 CPUs capped at this host's 2",
                            "no NVIDIA GPU on this host: the profile's 2 GPU(s) are not given to the container"]),
    ("cpu", 8, 4, 4, 0, []),  # "gpu": false: no GPU even where there are some
])
def test_the_profile_as_far_as_the_host_can_give_it(profile, host_cpus, host_gpus, cpus, gpus, notes):
    given = container_resources(limits(profile), host_cpus, host_gpus)
    assert given.nano_cpus == cpus * 10**9 and given.gpus == gpus and list(given.notes) == notes
    ram = int(PROFILES[profile].ram_gb * 1e9)
    assert given.mem_bytes == ram and given.shm_bytes == ram // 2


def test_shared_memory_can_be_set():
    assert container_resources(limits("phase2"), 64, 4, shm_bytes=123).shm_bytes == 123


def test_without_limits_the_container_gets_the_whole_host():
    given = container_resources(limits("phase2", enabled=False), 8, 2)
    assert (given.nano_cpus, given.mem_bytes, given.gpus, given.notes) == (None, None, -1, ())
    assert given.shm_bytes == NO_LIMIT_SHM_BYTES
    assert container_resources(limits("phase2", enabled=False), 8, 0).gpus == 0


def test_the_environment_holds_nothing_of_the_host(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")
    env = container_environment(limits("cpu"), 5)
    assert env["SHOPBENCH_SEED"] == "5" and env["SHOPBENCH_PROFILE"] == "cpu" and env["HF_HUB_OFFLINE"] == "1"
    assert "host-secret" not in env.values() and "PATH" not in env


@pytest.mark.parametrize("folder, tag", [("my-submission", "shopbench-my-submission:latest"),
                                         ("Team A (v2)", "shopbench-team-a-v2:latest"),
                                         ("...", "shopbench-submission:latest")])
def test_default_tags_are_valid_docker_names(tmp_path, folder, tag):
    assert default_tag(tmp_path / folder) == tag


def test_the_scratch_mounts_allow_loading_what_a_jit_compiled_there():
    from submission.grading.container_runner import scratch_mounts

    mounts = scratch_mounts(limits("phase2"))
    assert set(mounts) == {"/tmp", "/home/aicrowd/.cache", "/shopbench/output"}  # the last, the model's own
    for options in mounts.values():  # Docker's tmpfs default is noexec: Triton could not load its launcher
        assert options.split(",")[:4] == ["rw", "exec", "nosuid", "nodev"]
    assert "size=48000000000" in mounts["/tmp"] and "size=100000000" in mounts["/shopbench/output"]


def test_a_profile_without_gpus_hides_them_from_an_nvidia_default_runtime():
    assert container_environment(limits("cpu"), 0)["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert "NVIDIA_VISIBLE_DEVICES" not in container_environment(limits("phase2"), 0)


def test_chosen_devices_are_given_when_the_profile_and_the_host_allow(tmp_path):
    given = container_resources(limits("phase2"), 64, 8, device_ids=("4", "5", "6", "7"))
    assert (given.gpus, given.device_ids, given.notes) == (4, ("4", "5", "6", "7"), ())
    assert container_resources(limits("phase2"), 64, 0, device_ids=("0", "1", "2", "3")).notes == (
        "no NVIDIA GPU on this host: devices 0,1,2,3 are not given to the container",)
    for profile, ids, host, error in (
            ("phase2", ("0", "1"), 8, "--gpus 0,1 names 2 device.* but profile phase2 has 4; name exactly 4"),
            ("cpu", ("0",), 8, "--gpus 0: profile cpu has no GPUs; leave --gpus out"),
            ("phase1", ("0", "9"), 8, "this host has 8 GPU.*numbered 0 to 7; no device 9")):
        with pytest.raises(ConfigError, match=error):
            container_resources(limits(profile), 64, host, device_ids=ids)


def test_grade_flags_for_devices_and_labels_are_checked():
    assert device_ids("0, 1,GPU-3f2a") == ("0", "1", "GPU-3f2a") and device_ids(None) is None
    for text, error in (("0,0", "names a device twice"), ("0,a", "expected device indexes"), ("", "expected")):
        with pytest.raises(ConfigError, match=error):
            device_ids(text)
    assert container_labels(["shopbench.worker=w1@h", "k=v=w"]) == (("shopbench.worker", "w1@h"), ("k", "v=w"))
    with pytest.raises(ConfigError, match="the grader sets this label itself"):
        container_labels(["shopbench.role=x"])
