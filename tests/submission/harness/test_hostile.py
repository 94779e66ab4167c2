"""Hostile and broken models, and strange files (the hardening issue): nothing lost, the right verdict,
nothing left behind. Real processes and real files throughout; each test failed before its fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from kit_paths import ROOT, SAMPLE_DATA, TESTS
from test_runner import FAST, QUESTIONS, tiny_limits

from submission.errors import ConfigError
from submission.harness.batches import ANSWER_CAP_CHARS
from submission.harness.outcome import ModelSpec
from submission.harness.output_dir import fresh_folder, locked
from submission.harness.predictions import read_records
from submission.harness.profiles import UNLIMITED
from submission.harness.runner import run_model
from submission.scoring.parsers import MAX_RESPONSE_CHARACTERS, parse

ALL_ROWS = sorted(q.row for q in QUESTIONS)


def run(tmp_path, model, limits=None, out=None, repo=TESTS, fail_batch=2, **env):
    spec = ModelSpec(model=f"fake_models.hostile:{model}", repo=str(repo),
                     env={"FAKE_FAIL_BATCH": str(fail_batch), **{k.upper(): str(v) for k, v in env.items()}})
    return run_model(spec, QUESTIONS, out or tmp_path / "out", limits or tiny_limits(tmp_path), FAST)


def saved(folder):
    return read_records(folder / "predictions.jsonl")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended: only its exit status is left to collect)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_dead(pids, timeout=15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def recorded_pids(path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


# ---------------------------------------------------------------- 1. the model edits its batch


def test_a_model_that_empties_its_batch_and_answers_nothing_is_bad_output(tmp_path):
    outcome = run(tmp_path, "ClearsBatch")
    assert outcome.verdict.status == "bad_output" and "0 responses for 2 prompts" in outcome.verdict.detail
    assert outcome.n_answered == 0 and saved(tmp_path / "out") == []


def test_a_model_that_pops_its_prompts_while_answering_is_judged_on_the_prompts_it_was_given(tmp_path):
    outcome = run(tmp_path, "PopsPrompts")
    assert outcome.verdict.status == "ok" and outcome.n_answered == len(QUESTIONS)
    assert sorted(r["row"] for r in saved(tmp_path / "out")) == ALL_ROWS


def test_a_model_that_adds_a_prompt_and_answers_it_is_bad_output(tmp_path):
    outcome = run(tmp_path, "AppendsPrompt")
    assert outcome.verdict.status == "bad_output" and "3 responses for 2 prompts" in outcome.verdict.detail


# ---------------------------------------------------------------- 2. large answers


def test_huge_answers_cross_quickly_are_cut_at_the_cap_and_counted_and_the_score_cannot_change(tmp_path):
    limits = tiny_limits(tmp_path, seconds_per_sample=0.5)  # 8 s for a batch of 16: the model itself takes ms
    outcome = run(tmp_path, "HugeAnswers", limits, fake_batch_size=16, fake_answer_mb=3, fail_batch=-1)
    assert outcome.verdict.status == "ok", outcome.verdict
    records = saved(tmp_path / "out")
    assert len(records) == len(QUESTIONS) == outcome.answers_cut
    assert all(len(r["output"]) == ANSWER_CAP_CHARS for r in records)
    assert max(b.latency_s for b in outcome.batches) < limits.batch_limit_s(16)
    full = "3, 1, 2 " + "x" * 3_000_000
    assert ANSWER_CAP_CHARS > MAX_RESPONSE_CHARACTERS  # the parsers read only the first 5,000 characters
    for task_type in ("ranking", "retrieval", "named_entity_recognition", "generation"):
        assert parse(task_type, full[:ANSWER_CAP_CHARS]) == parse(task_type, full)


# ---------------------------------------------------------------- 3. a lone surrogate


def test_a_lone_surrogate_in_an_answer_is_stored_losslessly(tmp_path):
    outcome = run(tmp_path, "LoneSurrogate", fail_batch=-1)
    assert outcome.verdict.status == "ok"
    records = saved(tmp_path / "out")
    assert all(r["output"].startswith("\ud800") for r in records) and len(records) == len(QUESTIONS)
    assert "\\ud800" in (tmp_path / "out" / "predictions.jsonl").read_text(encoding="utf-8")


def test_local_evaluation_scores_and_reports_a_run_with_lone_surrogates(tmp_path, monkeypatch):
    import local_evaluation

    monkeypatch.syspath_prepend(str(TESTS))
    out = tmp_path / "run"
    code = local_evaluation.main(["--model", "fake_models.hostile:LoneSurrogate", "--data", str(SAMPLE_DATA),
                                  "--limit", "20", "--no-limits", "--output-dir", str(out)])
    assert code == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"), parse_constant=pytest.fail)
    assert results["n_answered"] == 20 and results["all_around"] is not None
    assert (out / "report.html").is_file()


# ---------------------------------------------------------------- 4. the model deletes files


def test_the_model_runs_in_the_repository_not_in_the_output_folder(tmp_path):
    outcome = run(tmp_path, "ReportsCwd", fail_batch=-1)
    assert outcome.verdict.status == "ok"
    assert {r["output"] for r in saved(tmp_path / "out")} == {str(TESTS)}


def test_answers_survive_a_model_that_deletes_the_output_folders_files(tmp_path):
    out = tmp_path / "out"
    outcome = run(tmp_path, "DeletesFiles", fake_delete_dir=out)
    assert outcome.verdict.status == "ok" and outcome.n_answered == len(QUESTIONS)
    assert sorted(r["row"] for r in saved(out)) == ALL_ROWS


def test_local_evaluation_writes_every_result_when_the_model_deletes_its_files(tmp_path, monkeypatch):
    import local_evaluation

    monkeypatch.syspath_prepend(str(TESTS))
    out = tmp_path / "run"
    monkeypatch.setenv("FAKE_DELETE_DIR", str(out))
    monkeypatch.setenv("FAKE_FAIL_BATCH", "3")
    code = local_evaluation.main(["--model", "fake_models.hostile:DeletesFiles", "--data", str(SAMPLE_DATA),
                                  "--no-limits", "--output-dir", str(out)])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["n_answered"] == results["n_questions"] == len(saved(out))
    assert json.loads((out / "run.json").read_text())["model"] == "fake_models.hostile:DeletesFiles"


# ---------------------------------------------------------------- 5. one run per output folder


def test_a_second_run_on_the_same_output_folder_refuses_at_once(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(TESTS), "FAKE_DELAY_S": "0.3", "FAKE_FAIL_BATCH": "-1"}
    command = [sys.executable, str(ROOT / "local_evaluation.py"), "--model", "fake_models.models:Deterministic",
               "--data", str(SAMPLE_DATA), "--limit", "12", "--no-limits", "--output-dir", str(out)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "predictions.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "in use by another run" in second.stderr
    finally:
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    rows = [r["row"] for r in saved(out)]
    assert sorted(rows) == list(range(12))  # one run's answers, each once


def test_the_lock_is_held_per_folder_and_released(tmp_path):
    with locked(tmp_path / "a"):
        with locked(tmp_path / "a"):  # the same process may take it again
            pass
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from submission.harness.output_dir import locked\n"
                "with locked(sys.argv[2]): pass")
        other = subprocess.run([sys.executable, "-c", code, str(ROOT), str(tmp_path / "a")], capture_output=True,
                               text=True)
        assert other.returncode == 1 and "in use by another run" in other.stderr
    with locked(tmp_path / "a"):
        pass
    with pytest.raises(ConfigError):
        with locked(tmp_path / "b"):
            subprocess.run([sys.executable, "-c", "pass"])  # a child process does not inherit the lock...
            raise ConfigError("...and the lock is released when the block raises")
    with locked(tmp_path / "b"):
        pass


def test_default_folders_started_in_the_same_second_differ(tmp_path):
    first, second, third = (fresh_folder(tmp_path, "20261128-101500") for _ in range(3))
    assert [f.name for f in (first, second, third)] == ["20261128-101500", "20261128-101500-2", "20261128-101500-3"]
    assert all(f.is_dir() for f in (first, second, third))


# ---------------------------------------------------------------- 6 and 7. exits and orphans


def test_a_model_that_exits_leaving_a_worker_on_the_channel_is_crashed_at_once_and_the_worker_killed(tmp_path):
    pids = tmp_path / "pids"
    outcome = run(tmp_path, "ExitsLeavingWorker", tiny_limits(tmp_path, seconds_per_sample=60), fake_pid_file=pids)
    assert outcome.verdict.status == "crashed" and "exited with code 0 during batch 2" in outcome.verdict.detail
    assert outcome.wall_s < 60  # not the batch's 120 s deadline
    assert wait_dead(recorded_pids(pids)) == []
    assert outcome.n_answered == 4


def test_without_limits_the_same_model_does_not_hang_the_harness(tmp_path):
    pids, result = tmp_path / "pids", {}
    thread = threading.Thread(target=lambda: result.update(
        outcome=run(tmp_path, "ExitsLeavingWorker", UNLIMITED, fake_pid_file=pids)), daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "run_model hung on a pipe held by the model's worker"
    assert result["outcome"].verdict.status == "crashed"
    assert wait_dead(recorded_pids(pids)) == []


def test_a_worker_in_its_own_session_does_not_outlive_a_normal_run(tmp_path):
    pids = tmp_path / "pids"
    outcome = run(tmp_path, "SessionWorker", fail_batch=-1, fake_pid_file=pids)
    assert outcome.verdict.status == "ok"
    assert len(recorded_pids(pids)) == 1 and wait_dead(recorded_pids(pids)) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_when_the_harness_itself_is_killed_nothing_of_the_model_survives_and_no_prompt_is_left_on_disk(tmp_path, sig):
    pids, tmpdir = tmp_path / "pids", tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(TESTS), "FAKE_PID_FILE": str(pids), "FAKE_DELAY_S": "5",
           "TMPDIR": str(tmpdir)}
    harness = subprocess.Popen(
        [sys.executable, str(ROOT / "local_evaluation.py"), "--model", "fake_models.hostile:StubbornWorkerThenSlow",
         "--data", str(SAMPLE_DATA), "--no-limits", "--output-dir", str(tmp_path / "run")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(recorded_pids(pids)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    model_pids = recorded_pids(pids)
    assert len(model_pids) == 2 and all(alive(p) for p in model_pids)
    harness.send_signal(sig)
    _, stderr = harness.communicate(timeout=60)
    assert wait_dead(model_pids) == [], f"still running after {signal.Signals(sig).name} of the harness"
    assert os.listdir(tmpdir) == []  # the job (every prompt) was never a file with a name
    if sig == signal.SIGTERM:
        assert harness.returncode == 130 and "interrupted: no question was answered" in stderr


def test_a_models_run_info_reaches_the_outcome(tmp_path):
    outcome = run(tmp_path, "ReportsRunInfo", fail_batch=-1)
    assert outcome.verdict.status == "ok"
    assert outcome.model_info == {"method": "lookup", "batches": 7}  # 5 open and 2 multiple-choice batches
