"""A served model inside the grader's container: the submission launches its own server on 127.0.0.1 and
answers through it with the network off (``--network none``).

The server is the scripted OpenAI-compatible server of tests/fake_models/openai_server.py (standard
library only: the test base image has no torch), started by ``ServedModel``'s launcher under its guard;
one image build (the dependency layers come from the dummy image's cache) and one run of 8 questions.
"""

from __future__ import annotations

import json
import shutil

import pytest
from image_names import test_image
from kit_paths import SAMPLE_DATA, TESTS

from submission.grading.commands import docker_run_main
from submission.grading.images import BuildOptions, build_image
from submission.scoring.parsers import parse

pytestmark = pytest.mark.docker

TAG = test_image("served")
USER_CONFIG = '''from pathlib import Path

from models.served_model import ServedModel

SERVER = Path(__file__).with_name("scripted_openai_server.py")


class UserModel(ServedModel):
    """The scripted server, launched inside the container, honouring vLLM's structured outputs."""

    def __init__(self):
        super().__init__(launch=f"{{python}} {SERVER} --host {{host}} --port {{port}} --features structured_outputs",
                         startup_timeout_s=60, shutdown_grace_s=2, batch_size=4,
                         log_file="/shopbench/output/server.log")
'''


@pytest.fixture(scope="module")
def served_image(docker_client, base_image, dummy_image, dummy_submission, tmp_path_factory) -> str:
    repo = tmp_path_factory.mktemp("served") / "served"
    shutil.copytree(dummy_submission, repo)
    shutil.copy2(TESTS / "fake_models" / "openai_server.py", repo / "models" / "scripted_openai_server.py")
    (repo / "models" / "user_config.py").write_text(USER_CONFIG)
    build_image(docker_client, repo, BuildOptions(TAG, base_image=base_image))
    return TAG


def test_a_launched_server_answers_inside_the_container_with_no_network(served_image, tmp_path, capsys):
    out = tmp_path / "run"
    code = docker_run_main(["--image", served_image, "--output-dir", str(out), "--grace-s", "1",
                            "--data", str(SAMPLE_DATA), "--limit", "8", "--no-limits"], "docker run")
    capsys.readouterr()
    run = json.loads((out / "results.json").read_text())
    assert code == 0 and run["verdict"]["status"] == "ok" and run["n_answered"] == 8, run["verdict"]
    assert run["docker"]["given"]["network_mode"] == "none"
    log = (out / "container" / "container.log").read_text()
    assert "served model: started" in log and "launched at http://127.0.0.1:" in log
    assert "multiple choice by structured_outputs" in log
    server_log = (out / "container" / "server.log").read_text()  # log_file: in the container's output folder
    assert server_log.count('"POST /v1/chat/completions HTTP/1.1" 200') >= 8 + 2  # the answers and the probes
    assert "shopbench-served-guard: stopping the server (received SIGTERM)" in server_log  # stopped in order
    rows = [json.loads(line) for line in SAMPLE_DATA.read_text().splitlines()][:8]
    predictions = {r["row"]: r["output"] for r in map(json.loads, (out / "predictions.jsonl").open())}
    for row_index, row in enumerate(rows):
        assert not parse(row["task_type"], predictions[row_index]).failed, (row["task_name"], predictions[row_index])
