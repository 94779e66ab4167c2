"""The grader-faithful harness with real failing models (tests/fake_models): every failure ends with its
named verdict, and every prediction made before it is on disk."""

import json
import os
import re

import pytest
from kit_paths import TESTS

from submission.errors import ConfigError
from submission.harness.outcome import HarnessOptions, ModelSpec
from submission.harness.profiles import Limits, limits_for, load_profiles
from submission.harness.runner import run_model
from submission.scoring.data import ALL_AROUND, TRACKS, Question

QUESTIONS = [Question(row, f"question {row}: pick 0-3", row % 4 == 3) for row in range(12)]  # 9 open, 3 MC
FAST = HarnessOptions(poll_s=0.05, kill_grace_s=0.5)


def tiny_limits(tmp_path, minutes=10, **overrides) -> Limits:
    """A custom profile from a YAML file, as a user would write one: small enough for seconds-long tests."""
    fields = {"gpus": 0, "gpu_name": None, "gpu_memory_gib": None, "compute_capability": None,
              "bfloat16": None, "flash_attention_2": None, "vcpus": 2, "ram_gb": 2, "seconds_per_sample": 2,
              "track_minutes": {t: minutes for t in (*TRACKS, ALL_AROUND)}}
    fields.update(overrides)
    path = tmp_path / "profiles.yaml"
    path.write_text(json.dumps({"profiles": {"tiny": fields}}))  # JSON is YAML
    return limits_for(load_profiles(path)["tiny"], ALL_AROUND)


def run(tmp_path, model, limits, fail_batch=2, options=FAST, **env):
    spec = ModelSpec(model=f"fake_models.models:{model}", repo=str(TESTS),
                     env={"FAKE_FAIL_BATCH": str(fail_batch), **{k.upper(): str(v) for k, v in env.items()}})
    return run_model(spec, QUESTIONS, tmp_path / "out", limits, options)


def saved(tmp_path):
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def assert_first_batches_kept(tmp_path, outcome, n_batches=2):
    records = saved(tmp_path)
    assert [r["batch"] for r in records] == [b for b in range(n_batches) for _ in range(2)]
    assert [r["row"] for r in records] == [0, 1, 2, 4][: 2 * n_batches]  # grader order: open questions first
    assert outcome.n_answered == len(records) == 2 * n_batches


def test_a_good_model_answers_everything_in_grader_order(tmp_path):
    outcome = run(tmp_path, "Deterministic", tiny_limits(tmp_path), fail_batch=-1)
    assert outcome.verdict.status == "ok" and outcome.n_answered == 12
    records = saved(tmp_path)
    assert [r["row"] for r in records] == [0, 1, 2, 4, 5, 6, 8, 9, 10, 3, 7, 11]
    assert [r["batch_size"] for r in records] == [2] * 8 + [1] + [2, 2, 1]  # batches never mix the groups
    assert all(r["output"] in "0123" for r in records[-3:])
    assert outcome.peak_rss_bytes and outcome.init_s is not None


@pytest.mark.parametrize("model", ["SleepsPastDeadline", "HangsInCtypes", "HangsInRead"])
def test_a_batch_past_its_deadline_is_stopped(tmp_path, model):
    outcome = run(tmp_path, model, tiny_limits(tmp_path, seconds_per_sample=0.4))
    assert outcome.verdict.status == "timeout"
    assert re.fullmatch(r"batch 2 \(2 prompts\) was stopped after \d+\.\d s, limit 0.8 s", outcome.verdict.detail)
    assert_first_batches_kept(tmp_path, outcome)


def test_the_track_budget_stops_a_slow_model(tmp_path):
    limits = tiny_limits(tmp_path, minutes=0.05)  # 3 s: start-up (under a second) and a few 0.8 s batches
    outcome = run(tmp_path, "Deterministic", limits, fail_batch=-1, fake_delay_s=0.8)
    assert outcome.verdict.status == "timeout"
    assert outcome.verdict.detail.startswith("track budget 0.05 min exhausted after ")
    assert outcome.verdict.detail.endswith(" of 12 questions")
    assert 0 < outcome.n_answered < 12 and len(saved(tmp_path)) == outcome.n_answered


def test_time_scale_multiplies_the_deadline(tmp_path):
    profile = load_profiles()["phase2"]
    limits = limits_for(profile, ALL_AROUND, time_scale=0.005)  # 10 s x 0.005 = 0.05 s per sample
    outcome = run(tmp_path, "Deterministic", limits, fail_batch=-1, fake_delay_s=0.3)
    assert outcome.verdict.status == "timeout"
    assert "batch 0 (2 prompts)" in outcome.verdict.detail and "limit 0.1 s" in outcome.verdict.detail


def test_no_limits_lets_a_slow_batch_finish(tmp_path):
    limits = limits_for(load_profiles()["phase2"], ALL_AROUND, time_scale=0.005, enabled=False)
    outcome = run(tmp_path, "Deterministic", limits, fail_batch=-1, fake_delay_s=0.15)
    assert outcome.verdict.status == "ok" and outcome.n_answered == 12
    assert not limits.enforced and limits.budget_s is None


@pytest.mark.parametrize("model,status,detail", [
    ("RaisesInInit", "model_error",
     "the constructor RaisesInInit() raised RuntimeError: checkpoint not found: /models/missing"),
    ("RaisesInBatchPredict", "model_error",
     "batch_predict (batch 2, 2 prompts) raised ValueError: tokenizer exploded"),
    ("TooFewAnswers", "bad_output", "batch 2: batch_predict returned 1 response for 2 prompts"),
    ("ReturnsIntegers", "bad_output", "batch 2: response 0 is int"),
    ("BadBatchSize", "bad_output", "get_batch_size() returned 17; it must return an int from 1 to 16"),
    ("ExitsProcess", "crashed", "the model's process exited with code 3 during batch 2 (2 prompts)"),
])
def test_each_failure_has_its_verdict_and_keeps_earlier_batches(tmp_path, model, status, detail):
    outcome = run(tmp_path, model, tiny_limits(tmp_path))
    assert outcome.verdict.status == status
    assert outcome.verdict.detail.startswith(detail)
    assert_first_batches_kept(tmp_path, outcome, n_batches=0 if model == "RaisesInInit" else 2)
    if status == "model_error":
        assert "Traceback" in outcome.traceback


def test_more_ram_than_the_profile_allows_is_a_memory_verdict(tmp_path):
    outcome = run(tmp_path, "AllocatesTooMuch", tiny_limits(tmp_path, ram_gb=0.5), fake_alloc_gb=1)
    assert outcome.verdict.status == "memory"
    assert outcome.verdict.detail.startswith("batch_predict (batch 2, 2 prompts) raised MemoryError")
    assert "RAM limit is 0.5 GB" in outcome.verdict.detail
    assert_first_batches_kept(tmp_path, outcome)


def test_the_rss_watchdog_counts_the_models_worker_processes(tmp_path):
    outcome = run(tmp_path, "WorkersTooBig", tiny_limits(tmp_path, ram_gb=0.45), fake_alloc_gb=0.3)
    assert outcome.verdict.status == "memory"
    assert outcome.verdict.detail.startswith("the RSS watchdog stopped the model: peak RSS")
    assert outcome.verdict.detail.endswith("limit 0.45 GB (0.42 GiB)")
    assert_first_batches_kept(tmp_path, outcome)


def test_killed_by_sigkill_then_resumed_equals_an_uninterrupted_run(tmp_path):
    limits = tiny_limits(tmp_path)
    marker = tmp_path / "killed-once"
    outcome = run(tmp_path, "KillsItselfOnce", limits, fake_marker=marker)
    assert outcome.verdict.status == "crashed"
    assert outcome.verdict.detail == "the model's process was killed by SIGKILL (the kernel's out-of-memory " \
                                     "killer sends SIGKILL) during batch 2 (2 prompts)"
    assert_first_batches_kept(tmp_path, outcome)
    resumed = run(tmp_path, "KillsItselfOnce", limits, fake_marker=marker,
                  options=HarnessOptions(resume=True, poll_s=0.05))
    assert resumed.verdict.status == "ok" and (resumed.n_resumed, resumed.n_answered) == (4, 12)
    outputs = {r["row"]: r["output"] for r in saved(tmp_path)}
    assert [r["batch"] for r in saved(tmp_path)] == [0, 0, 1, 1] + [2, 2, 3, 3, 4, 5, 5, 6]  # indices continue
    os.rename(tmp_path / "out", tmp_path / "first")
    straight = run(tmp_path, "Deterministic", limits, fail_batch=-1)
    assert straight.verdict.status == "ok"
    assert outputs == {r["row"]: r["output"] for r in saved(tmp_path)}


def test_a_missing_model_class_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="defines no 'Nope'"):
        run(tmp_path, "Nope", tiny_limits(tmp_path))


def test_a_model_module_that_raises_on_import_is_a_model_error(tmp_path, monkeypatch):
    (tmp_path / "broken_module.py").write_text("raise ImportError('needs flash_attn')\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the child gets the caller's import path
    outcome = run_model(ModelSpec("broken_module:M"), QUESTIONS, tmp_path / "out", tiny_limits(tmp_path), FAST)
    assert outcome.verdict == type(outcome.verdict)("model_error", "importing broken_module:M raised "
                                                    "ImportError: needs flash_attn")


def test_progress_reports_the_projection_against_the_budget(tmp_path):
    seen = []
    spec = ModelSpec(model="fake_models.models:Deterministic", repo=str(TESTS), env={"FAKE_FAIL_BATCH": "-1"})
    limits = tiny_limits(tmp_path)
    run_model(spec, QUESTIONS, tmp_path / "out", limits, FAST, on_progress=seen.append)
    assert [p.answered for p in seen] == [2, 4, 6, 8, 9, 11, 12]
    assert all(p.total == 12 and p.budget_s == 600 and p.projected_s is not None for p in seen)
    assert seen[-1].projected_s == pytest.approx(seen[-1].elapsed_s)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not cuda_available(),
                    reason="needs a CUDA GPU (python -m acceptance.gpu_memory_check is the fuller check)")
def test_more_gpu_memory_than_the_cap_is_a_gpu_memory_verdict(tmp_path):
    limits = tiny_limits(tmp_path, gpus=1, gpu_memory_gib=1.0, gpu_name="cap test")
    outcome = run(tmp_path, "AllocatesGpuMemory", limits, fake_gpu_gb=2)
    assert outcome.verdict.status == "gpu_memory", outcome.verdict
    assert "GPU 0" in outcome.verdict.detail or "CUDA out of memory" in outcome.verdict.detail
    assert_first_batches_kept(tmp_path, outcome)
