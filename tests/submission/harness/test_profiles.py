"""Hardware profiles: the documented grader limits, user profiles, and the limits a run applies."""

import json

import pytest
import yaml

from submission.errors import ConfigError
from submission.harness.profiles import (
    DEFAULT_PROFILE,
    budget_track_for,
    get_profile,
    limits_for,
    load_profiles,
    profile_from_dict,
    profile_name_for_aicrowd,
)
from submission.scoring.data import ALL_AROUND, TRACKS, Question

CONCEPTS, REASONING, BEHAVIOR, MULTILINGUAL = TRACKS
GB = 1e9


def test_the_documented_profiles():
    profiles = load_profiles()
    phase2, phase1, cpu = profiles["phase2"], profiles["phase1"], profiles["cpu"]
    assert DEFAULT_PROFILE == "phase2"
    assert (phase2.gpus, phase2.gpu_name, phase2.compute_capability, phase2.bfloat16, phase2.flash_attention_2) == \
        (4, "NVIDIA T4", "7.5", False, False)
    assert (phase2.vcpus, phase2.ram_gb, phase2.seconds_per_sample) == (40, 180, 10)
    assert phase2.track_minutes == {CONCEPTS: 70, REASONING: 20, BEHAVIOR: 30, MULTILINGUAL: 20, ALL_AROUND: 140}
    assert (phase1.gpus, phase1.vcpus, phase1.ram_gb, phase1.seconds_per_sample) == (2, 20, 90, 15)
    assert phase1.track_minutes == {CONCEPTS: 140, REASONING: 40, BEHAVIOR: 60, MULTILINGUAL: 60, ALL_AROUND: 300}
    assert (cpu.gpus, cpu.gpu_memory_gib, cpu.vcpus, cpu.ram_gb) == (0, None, 4, 8)


def test_limits_scale_time_but_not_memory():
    phase2 = load_profiles()["phase2"]
    limits = limits_for(phase2, REASONING, time_scale=0.5)
    assert (limits.seconds_per_sample, limits.budget_s) == (5, 20 * 60 * 0.5)
    assert limits.batch_limit_s(16) == 80  # per sample x prompts in the batch
    assert (limits.gpus, limits.gpu_memory_bytes, limits.ram_bytes) == (4, 14_910 * 1024**2, 180 * GB)
    off = limits_for(phase2, REASONING, enabled=False)
    assert not off.enforced and off.batch_limit_s(16) is None and off.ram_bytes is None
    with pytest.raises(ConfigError, match="--time-scale must be a positive number"):
        limits_for(phase2, REASONING, time_scale=0)


def test_limits_carry_the_profiles_card_only_when_it_has_one_and_limits_apply():
    profiles = load_profiles()
    t4 = limits_for(profiles["phase2"], REASONING)
    assert (t4.gpu_name, t4.compute_capability, t4.bfloat16, t4.flash_attention_2) == ("NVIDIA T4", "7.5", False, False)
    for limits in (limits_for(profiles["phase2"], REASONING, enabled=False), limits_for(profiles["cpu"], REASONING)):
        assert (limits.gpu_name, limits.compute_capability, limits.bfloat16, limits.flash_attention_2) == (None,) * 4


def test_a_compute_capability_that_is_not_major_minor_is_refused(tmp_path):
    raw = {"gpus": 1, "gpu_name": "x", "gpu_memory_gib": 8, "compute_capability": "sm_75", "bfloat16": False,
           "flash_attention_2": False, "vcpus": 2, "ram_gb": 2, "seconds_per_sample": 1,
           "track_minutes": {t: 1 for t in (CONCEPTS, REASONING, BEHAVIOR, MULTILINGUAL, ALL_AROUND)}}
    with pytest.raises(ConfigError, match="'compute_capability' must be MAJOR.MINOR such as \"7.5\", got 'sm_75'"):
        profile_from_dict("mine", raw, "my.yaml")


def test_which_budget_applies():
    one = [Question(0, "p", True, track=REASONING), Question(1, "p", True, track=REASONING)]
    several = one + [Question(2, "p", False, track=BEHAVIOR)]
    test_format = [Question(0, "p", True)]
    assert budget_track_for(one) == REASONING
    assert budget_track_for(several) == ALL_AROUND
    assert budget_track_for(test_format) == ALL_AROUND
    assert budget_track_for(several, BEHAVIOR) == BEHAVIOR
    with pytest.raises(ConfigError, match="did you mean 'amazon-kdd-cup-24-all-around'"):
        budget_track_for(one, "amazon-kdd-cup-24-all-round")


def user_profile(**changes):
    profile = {"description": "my A10G", "gpus": 1, "gpu_name": "NVIDIA A10G", "gpu_memory_gib": 22.0,
               "compute_capability": "8.6", "bfloat16": True, "flash_attention_2": True, "vcpus": 8,
               "ram_gb": 32, "seconds_per_sample": 4,
               "track_minutes": {t: 30 for t in (*TRACKS, ALL_AROUND)}}
    profile.update(changes)
    return {"profiles": {"a10g": profile}}


def test_users_add_their_own_profiles(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(json.dumps(user_profile()))
    profiles = load_profiles(path)
    assert set(profiles) == {"phase2", "phase1", "cpu", "a10g"}
    assert get_profile("a10g", profiles).gpu_memory_gib == 22.0


@pytest.mark.parametrize("changes,message", [
    ({"gpu_memroy_gib": 1}, "unknown key 'gpu_memroy_gib'; did you mean 'gpu_memory_gib'?"),
    ({"vcpus": "8"}, "'vcpus' must be int, got '8'"),
    ({"gpus": True}, "'gpus' must be int, got True"),
    ({"seconds_per_sample": 0}, "'seconds_per_sample' must be positive"),
    ({"gpu_memory_gib": None}, "gpus is 1 but gpu_memory_gib is null"),
    ({"track_minutes": {ALL_AROUND: 10}}, "track_minutes lacks amazon-kdd-cup-24-understanding"),
    ({"track_minutes": {"all-around": 10}}, "unknown track 'all-around' in track_minutes"),
])
def test_bad_profiles_are_refused_with_the_fix(tmp_path, changes, message):
    path = tmp_path / "mine.yaml"
    path.write_text(json.dumps(user_profile(**changes)))
    with pytest.raises(ConfigError, match=r"mine\.yaml, line 1: profile 'a10g': ") as info:
        load_profiles(path)
    assert message in str(info.value)


@pytest.mark.parametrize("changes, key, message", [
    ({"vcpus": "8"}, "vcpus", "'vcpus' must be int, got '8'"),
    ({"gpu_memroy_gib": 1}, "gpu_memroy_gib", "unknown key 'gpu_memroy_gib'; did you mean 'gpu_memory_gib'?"),
])
def test_a_bad_profile_key_is_named_with_its_line(tmp_path, changes, key, message):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(user_profile(**changes), sort_keys=False))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.strip().startswith(f"{key}:"))
    assert line > 3
    with pytest.raises(ConfigError, match=rf"mine\.yaml, line {line}: profile 'a10g': ") as info:
        load_profiles(path)
    assert message in str(info.value)


def test_profile_files_must_be_plain_yaml(tmp_path):
    path = tmp_path / "code.yaml"
    path.write_text("profiles: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=r"code\.yaml, line 1, column 11: not valid YAML"):
        load_profiles(path)
    path.write_text("phase2: {}\n")
    with pytest.raises(ConfigError, match="expected one top-level key 'profiles'"):
        load_profiles(path)
    with pytest.raises(ConfigError, match="unknown profile 'phase3'; did you mean 'phase2'?"):
        get_profile("phase3", load_profiles())


def test_aicrowd_gpu_false_gets_the_cpu_profile():
    assert profile_name_for_aicrowd({"gpu": False}) == "cpu"
    assert profile_name_for_aicrowd({"gpu": True}) == "phase2"
