"""ServedModel against the scripted OpenAI-compatible server (tests/fake_models/openai_server.py), a real
HTTP server in its own process: the multiple-choice method chosen by probing and each answer checked,
concurrent requests answered in order, retries, refusals, base_url mode with an API key, the completions
API, and a server that dies mid-run ending the harness's run with model_error and every earlier
prediction kept. vLLM itself cannot run here; the scripted server answers in the shapes vLLM documents."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time

import no_hang
import pytest
from fake_models.openai_server import free_text
from kit_paths import ROOT, SAMPLE_DATA, TESTS

from submission.backends.prompting import format_prompt
from submission.backends.served.client import HttpError
from submission.backends.served.guard import proc_stat
from submission.backends.served.model import ServedModel
from submission.backends.task_inference import infer_task_type, mc_choices, shape_output
from submission.errors import ConfigError, ServerError
from submission.harness.outcome import HarnessOptions, ModelSpec
from submission.harness.profiles import Limits
from submission.harness.runner import run_model
from submission.reports.table import format_model_info
from submission.scoring.data import ALL_AROUND, Question

SERVER = TESTS / "fake_models" / "openai_server.py"
MC_PROMPTS = [
    "Which product complements a tent?\n0. sleeping bag\n1. hair dryer\n2. printer ink\n3. cat litter\nAnswer: ",
    "Is this review positive?\n0. no\n1. yes\nAnswer: ",
    "Rate the review on a scale of 1 to 5. Great value for money!\nAnswer: ",
    "Which is a shoe brand?\n0. nike\n1. acme ink\n2. contoso\n3. foo\n4. bar\nAnswer: ",
]
OPEN_PROMPTS = [
    "You are given 5 products. Select 3 products.\n1. tent\n2. lamp\n3. stove\n4. mat\n5. pan\nOutput: ",
    "Rank the 5 products by relevance to 'tent'.\n1. a\n2. b\n3. c\n4. d\n5. e\nOutput: ",
    "Extract phrases of the entity type 'brand' from: nike running shoes\nOutput: ",
    "Generate a short title for a German shoe.\nOutput: ",
]


def scripted(*flags: str) -> str:
    return f"{{python}} {SERVER} --host {{host}} --port {{port}} " + " ".join(flags)


def stats(model: ServedModel) -> dict:
    return model.client.get_json("/stats")[1]


@pytest.fixture
def launched(request):
    """``launched(*flags, **overrides)``: a ServedModel on a fresh scripted server, closed after the test."""
    models = []

    def make(*flags: str, **overrides) -> ServedModel:
        models.append(ServedModel(launch=scripted(*flags), startup_timeout_s=30, shutdown_grace_s=1, **overrides))
        return models[-1]

    yield make
    for model in models:
        model.close()


@pytest.mark.parametrize("features, method", [
    ("structured_outputs", "structured_outputs"),
    ("top_logprobs", "top_logprobs"),
    ("logit_bias", "logit_bias"),
    ("none", "generate"),
])
def test_the_first_method_the_server_honours_is_chosen_and_answers_are_allowed_digits(
        launched, tiny_llama_dir, capfd, caplog, features, method):
    caplog.set_level(logging.INFO, logger="submission.backends.served.model")
    model = launched("--features", features, "--vocab", str(tiny_llama_dir / "tokenizer.json"),
                     tokenizer=str(tiny_llama_dir))
    answers = model.batch_predict({"prompt": MC_PROMPTS}, True)
    assert [int(a) in mc_choices(p) for a, p in zip(answers, MC_PROMPTS, strict=True)] == [True] * 4
    info = model.run_info()
    assert info["multiple_choice_method"] == method and info["multiple_choice_answers"] == {method: 4}
    tried = [p["method"] for p in info["probes"]]
    assert tried == ["structured_outputs", "top_logprobs", "logit_bias", "generate"][: tried.index(method) + 1]
    summary = "\n".join(format_model_info(info))  # what the run prints after its table, from model_info
    assert summary.startswith(f"model: multiple choice by {method}")
    assert ("fell back from structured_outputs" in summary) == (method != "structured_outputs")
    assert "it ignored the field" in summary or method == "structured_outputs"
    assert f"multiple choice by {method}" in caplog.text  # a log record, not a line printed beside a progress bar
    assert "multiple choice" not in capfd.readouterr().err


def test_a_server_that_rejects_unknown_fields_is_probed_past_them(launched):
    model = launched("--reject-unknown", "--features", "top_logprobs")
    assert model.mc_method == "top_logprobs"
    assert model.probes[0].reason.startswith("HTTP 422: {\"detail\": \"Unexpected fields in the request:")


def test_a_field_the_server_stops_honouring_is_caught_answer_by_answer(launched, tiny_llama_dir, capfd):
    # 1 warm-up + 2 logit_bias probes are honoured; every request after that is silently not
    model = launched("--features", "logit_bias", "--honour-requests", "3", "--vocab",
                     str(tiny_llama_dir / "tokenizer.json"), tokenizer=str(tiny_llama_dir),
                     multiple_choice=["logit_bias", "generate"])
    assert model.mc_method == "logit_bias"
    answers = model.batch_predict({"prompt": MC_PROMPTS}, True)
    assert all(int(a) in mc_choices(p) for a, p in zip(answers, MC_PROMPTS, strict=True))
    assert model.run_info()["multiple_choice_answers"] == {"shaped": 4}
    assert "model: 4 of 4 multiple-choice answers by logit_bias were not an allowed digit; shaped from their text" \
        in format_model_info(model.run_info())
    assert "were not an allowed digit" not in capfd.readouterr().err


def expected_open(prompt: str, max_tokens: int) -> str:
    words = free_text(prompt).split(" ")[:max_tokens]
    return shape_output(infer_task_type(prompt), " ".join(words), prompt)


def test_a_batch_goes_out_at_once_and_comes_back_in_order(launched):
    model = launched(max_concurrency=8)
    prompts = [f"[slow] {p} (variant {i})" for i in range(2) for p in OPEN_PROMPTS]
    answers = model.batch_predict({"prompt": prompts}, False)
    budget = model.config.max_new_tokens
    assert answers == [expected_open(p, getattr(budget, infer_task_type(p))) for p in prompts]
    assert stats(model)["max_in_flight"] > 1


def test_max_concurrency_bounds_the_requests_in_flight(launched):
    model = launched(max_concurrency=1)
    model.batch_predict({"prompt": [f"[slow] {p}" for p in OPEN_PROMPTS]}, False)
    assert stats(model)["max_in_flight"] == 1


def test_server_errors_are_retried_a_bounded_number_of_times(launched):
    model = launched(max_retries=3, retry_backoff_s=0.01)
    before = stats(model)["posts"]
    assert model.batch_predict({"prompt": ["[503x2] Describe a tent."]}, False) == [expected_open(
        "[503x2] Describe a tent.", model.config.max_new_tokens.generation)]
    assert stats(model)["posts"] - before == 3
    with pytest.raises(ServerError, match=r"failed 2 time\(s\); last: HTTP 503: .*busy"):
        launched(max_retries=1, retry_backoff_s=0.01).batch_predict({"prompt": ["[503x5] Describe a lamp."]}, False)


def test_a_client_error_is_not_retried(launched):
    model = launched(max_retries=3)
    before = stats(model)["posts"]
    with pytest.raises(HttpError, match="answered HTTP 400: .*refused"):
        model.batch_predict({"prompt": ["[400] Describe a tent.", "Describe a lamp."]}, False)
    assert stats(model)["posts"] - before == 2  # one request each, no retry


@pytest.fixture
def running_server():
    """A scripted server started by the test itself, with an API key: ``(base_url, process)``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", str(port),
                                "--api-key", "s3cret-key"], stderr=subprocess.DEVNULL)
    yield f"http://127.0.0.1:{port}/v1", process
    process.terminate()
    process.wait(timeout=10)


def test_base_url_mode_uses_the_key_from_the_environment_and_never_shows_it(running_server, monkeypatch):
    base_url, _ = running_server
    monkeypatch.setenv("SCRIPTED_KEY", "s3cret-key")
    with ServedModel(base_url=base_url, api_key_env="SCRIPTED_KEY", startup_timeout_s=30) as model:
        assert model.launcher is None and model.model_id == "scripted-model"
        assert len(model.batch_predict({"prompt": OPEN_PROMPTS}, False)) == 4
        shown = json.dumps(model.run_info()) + model.describe() + repr(model.client.options)
        assert "s3cret" not in shown and model.run_info()["mode"] == "base_url"
    monkeypatch.setenv("SCRIPTED_KEY", "wrong")
    with pytest.raises(ServerError) as error:
        ServedModel(base_url=base_url, api_key_env="SCRIPTED_KEY", startup_timeout_s=1)
    assert "waiting for /health: HTTP 401" in str(error.value) and "wrong" not in str(error.value)
    monkeypatch.delenv("SCRIPTED_KEY")
    with pytest.raises(ConfigError, match="api_key_env: the environment variable SCRIPTED_KEY is not set"):
        ServedModel(base_url=base_url, api_key_env="SCRIPTED_KEY")


def test_the_completions_api_sends_the_prompt_as_the_baseline_formats_it(launched, tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = launched(api="completions", tokenizer=str(tiny_llama_dir))
    model.batch_predict({"prompt": OPEN_PROMPTS[:1]}, False)
    sent = stats(model)["last_body"]
    assert sent["prompt"] == format_prompt(tokenizer, OPEN_PROMPTS[0], model.config.system_prompt, True)
    plain = launched(api="completions", use_chat_template=False, tokenizer=None)
    plain.batch_predict({"prompt": OPEN_PROMPTS[:1]}, False)
    assert stats(plain)["last_body"]["prompt"] == plain.config.system_prompt + OPEN_PROMPTS[0]
    with pytest.raises(ConfigError, match="api: completions with use_chat_template: true needs the model's tokenizer"):
        launched(api="completions", tokenizer=None)


def test_a_server_that_dies_mid_run_is_a_clear_error_with_its_exit_code(launched):
    model = launched()
    model.batch_predict({"prompt": OPEN_PROMPTS[:2]}, False)
    with pytest.raises(ServerError) as error:
        model.batch_predict({"prompt": ["[exit] Describe a tent."]}, False)
    message = str(error.value)
    assert "the server exited with code 3" in message and "command: " in message
    assert "scripted-server:" in message.split("last lines of the server's log:")[1]


def test_under_the_harness_a_dead_server_is_model_error_with_earlier_predictions_kept(tmp_path):
    questions = [Question(0, OPEN_PROMPTS[0], False), Question(1, OPEN_PROMPTS[1], False),
                 Question(2, "[exit] " + OPEN_PROMPTS[2], False), Question(3, OPEN_PROMPTS[3], False)]
    spec = ModelSpec(model="fake_models.served:EnvServed", repo=str(TESTS),
                     env={"SERVED_LAUNCH": scripted(), "SERVED_GRACE_S": "1"})
    outcome = run_model(spec, questions, tmp_path, options=HarnessOptions(poll_s=0.05))
    assert outcome.verdict.status == "model_error"
    assert "batch_predict (batch 1, 2 prompts) raised ServerError" in outcome.verdict.detail
    assert "the server exited with code 3" in outcome.verdict.detail
    kept = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [r["row"] for r in kept] == [0, 1]
    pids = [outcome.model_info["guard_pid"], outcome.model_info["server_pid"]]
    assert all(isinstance(pid, int) for pid in pids) and all(proc_stat(pid) is None for pid in pids)


def test_no_process_of_a_closed_model_remains(launched):
    model = launched()
    pids = [model.launcher.guard.pid, model.launcher.server_pid]
    model.close()
    deadline = time.monotonic() + 10
    while any(proc_stat(pid) is not None for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(proc_stat(pid) is None for pid in pids)
    with pytest.raises(ServerError, match="closed"):
        model.batch_predict({"prompt": OPEN_PROMPTS[:1]}, False)


def test_a_trickling_answer_cannot_stretch_the_request_timeout(launched):
    """One byte every 0.2 s: never silent for a whole request_timeout_s, never done. The deadline is total."""
    model = launched("--trickle-s", "0.2", request_timeout_s=2, max_retries=3)
    with pytest.raises(ServerError, match=r"no complete answer within 2 s \(request_timeout_s: from the first byte "
                                          r"sent to the last byte received\)"):
        no_hang.within(60, model.batch_predict, {"prompt": ["[trickle] Describe a tent."]}, False)
    assert model.batch_predict({"prompt": OPEN_PROMPTS[:1]}, False)  # the next request is answered as usual


@pytest.mark.parametrize("api, field", [("chat", "choices[0].message.content"), ("completions", "choices[0].text")])
@pytest.mark.parametrize("cue, found", [("[null-content]", "with {field} null, not a string"),
                                        ("[number-content]", "with {field} a number (7), not a string"),
                                        ("[no-content]", "without {field}")])
def test_a_200_answer_without_usable_text_is_a_server_error_naming_the_field(launched, api, field, cue, found):
    model = launched(api=api, use_chat_template=False, tokenizer=None, multiple_choice=["generate"])
    expected = re.escape(f"/v1/{'chat/' if api == 'chat' else ''}completions answered 200 {found.format(field=field)}")
    with pytest.raises(ServerError, match=expected):
        model.batch_predict({"prompt": [f"{cue} Describe a tent.", "Describe a lamp."]}, False)
    with pytest.raises(ServerError, match=expected):
        model.batch_predict({"prompt": [f"{cue} {MC_PROMPTS[0]}"]}, True)


@pytest.fixture
def serve():
    """``serve(*flags)``: a scripted server started by the test (base_url mode): its base URL."""
    processes = []

    def start(*flags: str) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        processes.append(subprocess.Popen([sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", str(port),
                                           *flags], stderr=subprocess.DEVNULL))
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def test_in_base_url_mode_tokenizer_auto_is_the_weights_folder(serve, tiny_llama_dir, tmp_path):
    base_url = serve("--features", "logit_bias", "--vocab", str(tiny_llama_dir / "tokenizer.json"))
    with ServedModel(base_url=base_url, weights=str(tiny_llama_dir), startup_timeout_s=30) as model:
        assert model.config.tokenizer == "auto" and model.mc_method == "logit_bias"  # not a silent generate
        assert model.run_info()["tokenizer"] == str(tiny_llama_dir)
        answers = model.batch_predict({"prompt": MC_PROMPTS}, True)
        assert all(int(a) in mc_choices(p) for a, p in zip(answers, MC_PROMPTS, strict=True))
    (tmp_path / "config.json").write_text("{}")  # a weights folder without a tokenizer: the fallback says why
    with ServedModel(base_url=base_url, weights=str(tmp_path), startup_timeout_s=30) as model:
        assert model.mc_method == "generate"
        why = f"no tokenizer to map digits to token ids (no tokenizer with the digits 0-9 in {tmp_path})"
        assert f"logit_bias ({why})" in format_model_info(model.run_info())[0]


def test_model_info_is_kept_when_the_run_ends_in_a_timeout(tmp_path):
    questions = [Question(0, OPEN_PROMPTS[0], False), Question(1, OPEN_PROMPTS[1], False),
                 Question(2, "[trickle] " + OPEN_PROMPTS[2], False), Question(3, OPEN_PROMPTS[3], False)]
    spec = ModelSpec(model="fake_models.served:EnvServed", repo=str(TESTS),
                     env={"SERVED_LAUNCH": scripted("--trickle-s", "0.5"), "SERVED_GRACE_S": "1"})
    limits = Limits(profile="test", budget_track=ALL_AROUND, seconds_per_sample=3.0)
    outcome = run_model(spec, questions, tmp_path, limits, HarnessOptions(poll_s=0.05))
    assert outcome.verdict.status == "timeout" and outcome.verdict.detail.startswith("batch 1 ")
    info = outcome.model_info
    assert info["mode"] == "launch" and info["multiple_choice_method"] == "generate"
    assert all(proc_stat(info[key]) is None for key in ("guard_pid", "server_pid"))


def test_local_evaluation_prints_the_method_and_its_fallbacks_in_its_summary(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]), "SERVED_LAUNCH": scripted(),
           "SERVED_GRACE_S": "1"}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, str(ROOT / "local_evaluation.py"), "--model", "fake_models.served:EnvServed",
                           "--data", str(SAMPLE_DATA), "--limit", "6", "--no-limits", "--output-dir", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = "model: multiple choice by generate; fell back from structured_outputs (forced to answer 7 then 3"
    assert summary in done.stdout and done.stdout.index(summary) > done.stdout.index("all-around score")
    assert "multiple choice" not in done.stderr and "served model" not in done.stderr  # nothing beside the bar
    assert json.loads((out / "results.json").read_text())["model_info"]["multiple_choice_method"] == "generate"
