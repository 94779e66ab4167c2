"""Compile and model caches in the scratch space (submission/harness/caches.py): in a local run under a disk
cap they go to the run's own scratch folder, measured and removed with it; in the container, to ~/.cache."""

import json
import os

from kit_paths import TESTS

from submission.grading.container_contract import CONTAINER_HOME
from submission.grading.container_runner import container_environment
from submission.harness.caches import CACHE_FOLDERS
from submission.harness.outcome import ModelSpec
from submission.harness.profiles import limits_for, load_profiles
from submission.harness.runner import run_model
from submission.scoring.data import ALL_AROUND, Question

PROFILES = load_profiles()
QUESTIONS = [Question(row, f"question {row}", False) for row in range(2)]
ENGINES = {"TRITON_HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "XDG_CACHE_HOME", "HF_HOME",
           "VLLM_CACHE_ROOT"}  # the ones issue 20 names; CUDA_CACHE_PATH besides


def run(tmp_path, limits):
    spec = ModelSpec(model="fake_models.gpu_models:WritesCaches", repo=str(TESTS))
    outcome = run_model(spec, QUESTIONS, tmp_path / "out", limits)
    answers = [json.loads(json.loads(line)["output"]) for line in (tmp_path / "out" / "predictions.jsonl").open()]
    return outcome, answers[0]


def test_under_a_disk_cap_every_cache_is_in_the_runs_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "users-own-hf-cache"))  # the user's caches stay out of reach
    outcome, seen = run(tmp_path, limits_for(PROFILES["cpu"], ALL_AROUND))
    assert outcome.verdict.ok, outcome.verdict
    assert ENGINES <= set(seen["caches"])
    scratch = seen["tmpdir"]
    assert all(folder is not None and folder.startswith(scratch + os.sep) for folder in seen["caches"].values()), seen
    assert not os.path.exists(scratch)  # removed with the scratch folder when the run ended
    assert not (tmp_path / "users-own-hf-cache").exists()


def test_without_limits_the_caches_are_left_as_they_are(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    _, seen = run(tmp_path, limits_for(PROFILES["cpu"], ALL_AROUND, enabled=False))
    assert seen["caches"]["HF_HOME"] == str(tmp_path / "hf") and seen["caches"]["TRITON_CACHE_DIR"] is None


def test_the_container_points_every_cache_at_its_writable_cache_folder():
    env = container_environment(limits_for(PROFILES["phase2"], ALL_AROUND), 0)
    cache = f"{CONTAINER_HOME}/.cache"
    assert {name: env[name] for name in CACHE_FOLDERS} == {
        "TRITON_HOME": f"{cache}/triton-home", "TRITON_CACHE_DIR": f"{cache}/triton",
        "TORCHINDUCTOR_CACHE_DIR": f"{cache}/torchinductor", "XDG_CACHE_HOME": cache,
        "HF_HOME": f"{cache}/huggingface", "VLLM_CACHE_ROOT": f"{cache}/vllm", "CUDA_CACHE_PATH": f"{cache}/nv-compute"}
