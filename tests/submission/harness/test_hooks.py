"""The interface's optional hooks with real model processes: close() runs in the model's process on every
ending the harness can reach (the last answer, a model failure, a time-out, an interrupt), once; a close()
that hangs cannot hold up the run's end; run_info() reaches the outcome; and classes shaped like the
official starter kit's, which have neither hook, run unchanged."""

import os
import signal
import subprocess
import sys
import time

import pytest
from kit_paths import ROOT, SAMPLE_DATA, TESTS
from test_runner import FAST, QUESTIONS, tiny_limits

from submission.harness.outcome import ModelSpec
from submission.harness.runner import run_model


def run(tmp_path, model, limits, ending="normal", fail_batch=2):
    marker = tmp_path / "closed.txt"
    spec = ModelSpec(model=f"fake_models.hooks:{model}", repo=str(TESTS),
                     env={"HOOK_MARKER": str(marker), "HOOK_ENDING": ending, "FAKE_FAIL_BATCH": str(fail_batch)})
    return run_model(spec, QUESTIONS, tmp_path / "out", limits, FAST), marker


def closed_by(marker) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


def test_close_runs_once_after_the_last_answer_and_run_info_is_recorded(tmp_path):
    outcome, marker = run(tmp_path, "ClosesOnEveryEnding", tiny_limits(tmp_path), fail_batch=-1)
    assert outcome.verdict.status == "ok" and outcome.n_answered == 12
    assert outcome.model_info == {"closes": "on every ending"}
    assert len(closed_by(marker)) == 1 and closed_by(marker)[0].startswith("closed ")
    assert closed_by(marker)[0] != f"closed {os.getpid()}"  # in the model's process, not the harness's


def test_close_runs_after_a_model_failure(tmp_path):
    outcome, marker = run(tmp_path, "ClosesOnEveryEnding", tiny_limits(tmp_path), ending="raise")
    assert outcome.verdict.status == "model_error" and "the model failed on purpose" in outcome.verdict.detail
    assert outcome.n_answered == 4 and len(closed_by(marker)) == 1


def test_close_runs_when_a_time_out_stops_the_model(tmp_path):
    outcome, marker = run(tmp_path, "ClosesOnEveryEnding", tiny_limits(tmp_path, seconds_per_sample=0.4),
                          ending="timeout")
    assert outcome.verdict.status == "timeout" and outcome.verdict.detail.startswith("batch 2 (2 prompts) was stopped")
    assert len(closed_by(marker)) == 1  # SIGTERM from the supervisor: the model's process closed it, then exited
    assert outcome.model_info == {"closes": "on every ending"}  # asked once the model was built: kept at a time-out


def test_a_close_that_hangs_is_ended_by_the_grace_and_the_verdict_stands(tmp_path):
    outcome, marker = run(tmp_path, "CloseHangs", tiny_limits(tmp_path, seconds_per_sample=0.4), ending="timeout")
    assert outcome.verdict.status == "timeout" and closed_by(marker) == ["close started"]
    outcome, marker = run(tmp_path / "failure", "CloseHangs", tiny_limits(tmp_path), ending="raise")
    assert outcome.verdict.status == "model_error" and closed_by(marker) == ["close started"]


def test_close_runs_when_the_run_is_interrupted(tmp_path):
    """local_evaluation.py ends on SIGTERM (or Ctrl-C) like an interrupt: the model's process closes the model."""
    marker, out = tmp_path / "closed.txt", tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]), "HOOK_MARKER": str(marker),
           "HOOK_ENDING": "timeout", "FAKE_FAIL_BATCH": "2"}
    command = [sys.executable, str(ROOT / "local_evaluation.py"), "--model", "fake_models.hooks:ClosesOnEveryEnding",
               "--data", str(SAMPLE_DATA), "--no-limits", "--output-dir", str(out)]
    harness = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    predictions = out / "predictions.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (predictions.exists() and len(predictions.read_text().splitlines()) >= 4):
        time.sleep(0.05)  # two batches answered; the third sleeps
    harness.send_signal(signal.SIGTERM)
    _, stderr = harness.communicate(timeout=120)
    assert harness.returncode == 130 and f"continue with --resume {out}" in stderr
    assert len(closed_by(marker)) == 1


@pytest.mark.parametrize("model", ["StarterKitDummy"])
def test_a_class_without_the_hooks_runs_unchanged(tmp_path, model):
    outcome, marker = run(tmp_path, model, tiny_limits(tmp_path))
    assert outcome.verdict.status == "ok" and outcome.n_answered == 12 and outcome.model_info is None
    assert not marker.exists()


def test_the_official_shaped_dummy_runs_through_local_evaluation(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    proc = subprocess.run([sys.executable, str(ROOT / "local_evaluation.py"), "--model",
                           "fake_models.hooks:StarterKitDummy", "--sample", "8", "--output-dir", str(tmp_path / "o")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "verdict: ok" in proc.stdout
