"""ServedModel against the scripted OpenAI-compatible server (tests/fake_models/openai_server.py), a real
HTTP server in its own process: the multiple-choice method chosen by probing and each answer checked,
concurrent requests answered in order, retries, refusals, base_url mode with an API key, the completions
API, and a server that dies mid-run ending the harness's run with model_error and every earlier
prediction kept. vLLM itself cannot run here; the scripted server answers in the shapes vLLM documents."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time

import no_hang
import pytest
from fake_models.openai_server import free_text
from kit_paths import TESTS

from submission.backends.prompting import format_prompt
from submission.backends.served.client import HttpError
from submission.backends.served.guard import proc_stat
from submission.backends.served.model import ServedModel
from submission.backends.task_inference import infer_task_type, mc_choices, shape_output
from submission.errors import ConfigError, ServerError
from submission.harness.outcome import HarnessOptions, ModelSpec
from submission.harness.runner import run_model
from submission.scoring.data import Question

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
        launched, tiny_llama_dir, capfd, features, method):
    model = launched("--features", features, "--vocab", str(tiny_llama_dir / "tokenizer.json"),
                     tokenizer=str(tiny_llama_dir))
    answers = model.batch_predict({"prompt": MC_PROMPTS}, True)
    assert [int(a) in mc_choices(p) for a, p in zip(answers, MC_PROMPTS)] == [True] * 4
    info = model.run_info()
    assert info["multiple_choice_method"] == method and info["multiple_choice_answers"] == {method: 4}
    tried = [p["method"] for p in info["probes"]]
    assert tried == ["structured_outputs", "top_logprobs", "logit_bias", "generate"][: tried.index(method) + 1]
    err = capfd.readouterr().err
    assert f"served model: multiple choice by {method}" in err
    assert ("fell back from structured_outputs" in err) == (method != "structured_outputs")
    assert "it ignored the field" in err or method == "structured_outputs"


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
    assert all(int(a) in mc_choices(p) for a, p in zip(answers, MC_PROMPTS))
    assert model.run_info()["multiple_choice_answers"] == {"shaped": 4}
    assert "4 of 4 multiple-choice answers by logit_bias were not an allowed digit" in capfd.readouterr().err


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


def test_under_the_harness_a_dead_server_is_model_error_with_earlier_predictions_kept(tmp_path, capfd):
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
    started = [line for line in capfd.readouterr().err.splitlines() if line.startswith("served model: started")]
    pids = [int(pid) for pid in re.findall(r"(?:guard|server) pid (\d+)", started[0])]
    assert len(pids) == 2 and all(proc_stat(pid) is None for pid in pids)


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
