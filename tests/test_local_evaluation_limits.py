"""local_evaluation.py with the harness: limits flags, verdicts in results.json, partial results, --resume
after a timeout and after kill -9, with final scores equal to an uninterrupted run's."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from kit_paths import ROOT, TESTS

import local_evaluation
from submission.scoring.data import ALL_AROUND, TRACKS

REASONING, BEHAVIOR = TRACKS[1], TRACKS[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """24 questions scored without embedding models: 12 retrieval (hit rate@3), 12 multiple choice."""
    path = tmp_path_factory.mktemp("data") / "mini.json"
    lines = []
    for i in range(24):
        if i % 2:
            lines.append({"input_field": f"Which option fits item {i}? 0. a 1. b 2. c 3. d", "output_field": i % 4,
                          "task_name": "mc", "task_type": "multiple-choice", "metric": "accuracy",
                          "is_multiple_choice": True, "track": REASONING})
        else:
            lines.append({"input_field": f"Which 3 of items 1-5 will user {i} buy?", "output_field": [1 + i % 5],
                          "task_name": "buy", "task_type": "retrieval", "metric": "hit rate@3",
                          "is_multiple_choice": False, "track": BEHAVIOR})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "mine.yaml"
    path.write_text(json.dumps({"profiles": {"tiny": {
        "gpus": 0, "gpu_name": None, "gpu_memory_gib": None, "compute_capability": None, "bfloat16": None,
        "flash_attention_2": None, "vcpus": 2, "ram_gb": 2, "seconds_per_sample": 0.1,
        "track_minutes": {t: 5 for t in (*TRACKS, ALL_AROUND)}}}}))
    return path


def model(name):
    return f"fake_models.models:{name}"


def evaluate(data, out, *flags):
    return local_evaluation.main(["--data", str(data), "--output-dir", str(out), *map(str, flags)])


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    """The uninterrupted run every resumed run must equal."""
    out = tmp_path_factory.mktemp("straight")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(TESTS))
        patch.setenv("FAKE_FAIL_BATCH", "-1")
        assert evaluate(data, out, "--model", model("Deterministic"), "--seed", 5) == 0
    return load(out)


def load(out):
    return json.loads((out / "results.json").read_text())


def scores(results):
    return results["tasks"], results["tracks"], results["all_around"], results["task_mean"]


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    return monkeypatch


def test_results_record_profile_limits_verdict_and_timings(straight):
    assert straight["verdict"] == {"status": "ok", "detail": "24 questions answered within the limits"}
    assert straight["partial"] is False and straight["n_answered"] == 24
    assert straight["profile"]["name"] == "phase2" and straight["limits"]["seconds_per_sample"] == 10
    assert straight["budget"]["track"] == ALL_AROUND and straight["budget"]["budget_s"] == 140 * 60
    assert straight["budget"]["within_budget"] is True
    timings = straight["timings"]
    assert timings["latency"]["batches"] == 12 and set(timings["latency"]["batch_s"]) == {"p50", "p90", "p99", "max"}
    assert len(timings["slowest_batches"]) == 5 and timings["slowest_batches"][0]["limit_s"] == 20
    assert {t: v["questions"] for t, v in timings["tracks"].items()} == {REASONING: 12, BEHAVIOR: 12}
    assert timings["tracks"][REASONING]["budget_s"] == 20 * 60
    assert straight["peak_memory"]["ram_bytes"] > 0 and straight["peak_memory"]["gpus"] == []


def test_a_timeout_writes_partial_results_and_resume_with_no_limits_finishes(data, profiles, fakes, tmp_path, straight,
                                                                             capsys):
    out = tmp_path / "run"
    fakes.setenv("FAKE_FAIL_BATCH", "3")
    flags = ["--model", model("SleepsPastDeadline"), "--seed", 5, "--profiles-file", profiles, "--profile", "tiny"]
    assert evaluate(data, out, *flags) == 1
    err = capsys.readouterr().err
    assert re.search(r"error: timeout: batch 3 \(2 prompts\) was stopped after \d+\.\d s, limit 0.2 s", err)
    assert f"--resume {out}" in err
    partial = load(out)
    assert partial["verdict"]["status"] == "timeout" and partial["partial"] is True
    assert (partial["n_answered"], partial["n_questions"]) == (6, 24)
    assert list(partial["tasks"]) == ["buy"] and partial["tasks"]["buy"]["n"] == 6  # scores over the answered
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 6

    fakes.setenv("FAKE_FAIL_BATCH", "-1")
    fakes.setenv("FAKE_DELAY_S", "0.25")  # every batch over tiny's 0.2 s: only --no-limits lets it finish
    assert local_evaluation.main(["--resume", str(out), "--no-limits"]) == 0
    final = load(out)
    assert final["verdict"]["status"] == "ok" and final["resumed"]["rows"] == 6
    assert final["limits"]["enforced"] is False
    assert scores(final) == scores(straight)


def test_kill_9_of_the_whole_run_then_resume_equals_an_uninterrupted_run(data, tmp_path, straight):
    out = tmp_path / "run"
    env = {**os.environ, "FAKE_FAIL_BATCH": "-1", "FAKE_DELAY_S": "0.1", "PYTHONPATH": str(TESTS)}
    command = [sys.executable, str(ROOT / "local_evaluation.py"), "--data", str(data), "--output-dir", str(out),
               "--model", model("Deterministic"), "--seed", "5"]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    predictions = out / "predictions.jsonl"
    while proc.poll() is None and (not predictions.exists() or len(predictions.read_bytes().splitlines()) < 6):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    answered = len(predictions.read_bytes().splitlines())
    assert 6 <= answered < 24 and not (out / "results.json").exists()
    env.pop("FAKE_DELAY_S")
    resumed = subprocess.run([sys.executable, str(ROOT / "local_evaluation.py"), "--resume", str(out)], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = load(out)
    assert final["resumed"]["rows"] >= 6 and final["n_answered"] == 24
    assert scores(final) == scores(straight)


def test_the_track_flag_and_time_scale_choose_the_budget(data, fakes, tmp_path):
    fakes.setenv("FAKE_FAIL_BATCH", "-1")
    out = tmp_path / "run"
    assert evaluate(data, out, "--model", model("Deterministic"), "--profile", "phase1", "--track", REASONING,
                    "--time-scale", 0.5) == 0
    results = load(out)
    assert results["budget"]["track"] == REASONING and results["budget"]["budget_s"] == 40 * 60 * 0.5
    assert results["limits"]["seconds_per_sample"] == 7.5 and results["limits"]["gpus"] == 2


def test_resume_refuses_a_different_data_file(data, fakes, tmp_path, capsys):
    fakes.setenv("FAKE_FAIL_BATCH", "-1")
    out = tmp_path / "run"
    assert evaluate(data, out, "--model", model("Deterministic"), "--limit", 4) == 0
    other = tmp_path / "other.json"
    other.write_text(data.read_text())
    assert local_evaluation.main(["--resume", str(out), "--data", str(other)]) == 2
    assert f"--data {other} differs from the interrupted run's {data}" in capsys.readouterr().err


def test_unknown_profile_exits_2_with_a_suggestion(data, capsys):
    assert local_evaluation.main(["--data", str(data), "--profile", "phase3"]) == 2
    assert "unknown profile 'phase3'; did you mean 'phase2'?" in capsys.readouterr().err
