"""ServedModel with a real server: ``transformers serve`` on SmolLM2 from the kit's local cache, on the
CPU, offline. Marked ``integration``: each launch costs about 10 s of start-up, so one server started by
the test serves the base_url checks, and only the runs that must own their server launch one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from kit_paths import ROOT, SAMPLE_DATA, TESTS

from submission.backends.served.guard import proc_stat
from submission.backends.served.model import ServedModel
from submission.backends.task_inference import listed_ids, mc_choices
from submission.errors import ServerError
from submission.harness.outcome import HarnessOptions, ModelSpec
from submission.harness.profiles import Limits
from submission.harness.runner import run_model
from submission.scoring.data import ALL_AROUND, Question
from submission.scoring.parsers import parse

pytestmark = pytest.mark.integration

LAUNCH = "transformers serve {weights} --host {host} --port {port} --device {device} --dtype {dtype}"


def one_per_task_type() -> list[dict]:
    """One question of each task type of the kit's sample split."""
    rows, seen = [], set()
    for line in SAMPLE_DATA.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["task_type"] not in seen:
            seen.add(row["task_type"])
            rows.append(row)
    return rows


def multiple_choice_questions(n: int) -> list[Question]:
    """The first ``n`` multiple-choice questions of the sample split (one token each: quick to answer)."""
    rows = [json.loads(line) for line in SAMPLE_DATA.read_text(encoding="utf-8").splitlines()]
    return [Question(i, row["input_field"], True) for i, row in enumerate(rows) if row["is_multiple_choice"]][:n]


def assert_parse(row: dict, answer: str) -> None:
    prompt, task_type = row["input_field"], row["task_type"]
    parsed = parse(task_type, answer)
    if task_type == "multiple-choice":
        assert parsed.value in mc_choices(prompt), (row["task_name"], answer)
    elif task_type == "ranking":
        assert sorted(parsed.value) == listed_ids(prompt), (row["task_name"], answer)
    elif task_type == "retrieval":
        assert len(set(parsed.value)) == 3 and set(parsed.value) <= set(listed_ids(prompt)), answer
    else:
        assert not parsed.failed, (row["task_name"], answer)


def launched_pids(model_info: dict) -> list[int]:
    """Guard and server pids from a run's model_info (the served model's run_info())."""
    pids = [model_info["guard_pid"], model_info["server_pid"]]
    assert all(isinstance(pid, int) for pid in pids), model_info
    return pids


def wait_gone(pids: list[int], timeout_s: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while any(proc_stat(pid) is not None for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [pid for pid in pids if proc_stat(pid) is not None]


@pytest.fixture(scope="module")
def smollm2_folder(smollm2_gguf):
    from submission.backends.weights import smollm2_folder

    return smollm2_folder()


@pytest.fixture(scope="module")
def smollm2_server(smollm2_folder):
    """``transformers serve`` on SmolLM2, started by the test itself: its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    program = os.path.join(os.path.dirname(sys.executable), "transformers")
    server = subprocess.Popen([program, "serve", str(smollm2_folder), "--host", "127.0.0.1", "--port", str(port),
                               "--device", "cpu", "--dtype", "float32"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                              start_new_session=True)
    yield f"http://127.0.0.1:{port}"
    os.killpg(server.pid, 9)
    server.wait(timeout=30)


def test_base_url_mode_answers_every_task_type_parseably(smollm2_server, smollm2_folder):
    rows = one_per_task_type()
    with ServedModel(base_url=smollm2_server, startup_timeout_s=180) as model:  # tokenizer: auto, weights: smollm2
        assert model.run_info()["tokenizer"] == str(smollm2_folder)  # auto: the weights folder, as documented
        assert model.mc_method == "logit_bias"  # transformers serve: 422 on structured_outputs, no logprobs
        assert [p.ok for p in model.probes] == [False, False, True]
        for is_mc in (True, False):
            batch = [row for row in rows if row["is_multiple_choice"] == is_mc]
            answers = model.batch_predict({"prompt": [row["input_field"] for row in batch]}, is_mc)
            for row, answer in zip(batch, answers, strict=True):
                assert_parse(row, answer)
        assert model.run_info()["multiple_choice_answers"] == {"logit_bias": sum(r["is_multiple_choice"] for r in rows)}


def test_local_evaluation_with_a_launched_server_end_to_end(smollm2_gguf, tmp_path):
    command = [sys.executable, "local_evaluation.py", "--model", "models.served_model:ServedModel",
               "--data", str(SAMPLE_DATA), "--output-dir", str(tmp_path), "--no-limits"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    failures = {name: task["parse_failures"] for name, task in results["tasks"].items()
                if task["task_type"] in ("multiple-choice", "retrieval", "ranking")}
    assert failures and set(failures.values()) == {0}
    assert results["verdict"]["status"] == "ok" and 0.0 <= results["all_around"] <= 1.0
    assert "\nmodel: multiple choice by logit_bias; fell back from structured_outputs (HTTP 422" in done.stdout
    assert "multiple choice" not in done.stderr  # the summary's, not a line beside the progress bar
    assert results["model_info"]["multiple_choice_method"] == "logit_bias"  # the model's run_info()
    assert wait_gone(launched_pids(results["model_info"]), 10) == []


def test_a_server_that_fails_to_load_names_the_command_and_its_traceback(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama", "hidden_size": "not a number"}')
    with pytest.raises(ServerError) as error:
        ServedModel(weights=str(tmp_path), startup_timeout_s=120, shutdown_grace_s=2)
    message = str(error.value)
    assert message.startswith("the server exited with code 1 before it was ready")
    assert f"command: {os.path.dirname(sys.executable)}/transformers serve {tmp_path} --host 127.0.0.1" in message
    assert "Field 'hidden_size' expected int" in message.split("last lines of the server's log:")[1]


def run_served(tmp_path, model: str, limits: Limits, questions: list[Question]):
    spec = ModelSpec(model=f"fake_models.served:{model}", repo=str(TESTS),
                     env={"SERVED_LAUNCH": LAUNCH, "SERVED_GRACE_S": "5"})
    return run_model(spec, questions, tmp_path, limits, HarnessOptions(poll_s=0.1))


def test_a_server_killed_mid_run_is_model_error_with_earlier_predictions_kept(smollm2_gguf, tmp_path):
    unlimited = Limits(profile="test", budget_track=ALL_AROUND)
    outcome = run_served(tmp_path, "KillsItsServer", unlimited, multiple_choice_questions(4))
    assert outcome.verdict.status == "model_error", outcome.verdict
    assert "raised ServerError" in outcome.verdict.detail and "the server exited with code" in outcome.verdict.detail
    kept = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(kept) == 2 and {r["batch"] for r in kept} == {0}  # the first batch (2 prompts) is kept
    assert wait_gone(launched_pids(outcome.model_info)) == []


def test_a_timeout_verdict_leaves_no_server_process_alive(smollm2_gguf, tmp_path):
    limits = Limits(profile="test", budget_track=ALL_AROUND, seconds_per_sample=0.001)
    outcome = run_served(tmp_path, "EnvServed", limits, multiple_choice_questions(2))
    assert outcome.verdict.status == "timeout" and outcome.verdict.detail.startswith("batch 0 ")
    assert outcome.model_info["multiple_choice_method"] == "logit_bias"  # recorded though the run timed out
    # the harness killed the model; the guard stopped the server
    assert wait_gone(launched_pids(outcome.model_info)) == []
