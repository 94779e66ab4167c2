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
from docker_daemon import image_tag
from kit_paths import SAMPLE_DATA, TESTS

from submission import cli
from submission.grading.images import BuildOptions, build_image
from submission.scoring.parsers import parse

pytestmark = pytest.mark.docker

TAG = image_tag("served")
USER_CONFIG = '''import sys
from pathlib import Path

from models.served_model import ServedModel

SERVER = Path(__file__).with_name("scripted_openai_server.py")
LOG = "/shopbench/output/server.log"  # the model's own folder in the container: the host never reads it


class UserModel(ServedModel):
    """The scripted server, launched inside the container, honouring vLLM's structured outputs; once closed,
    its log goes to the model's stderr, which the host streams into container.log."""

    def __init__(self):
        super().__init__(launch=f"{{python}} {SERVER} --host {{host}} --port {{port}} --features structured_outputs",
                         startup_timeout_s=60, shutdown_grace_s=2, batch_size=4, log_file=LOG)

    def close(self):
        super().close()
        sys.stderr.write(Path(LOG).read_text())
        sys.stderr.flush()
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
    code = cli.main(["docker", "run", "--image", served_image, "--output-dir", str(out), "--grace-s", "1",
                     "--data", str(SAMPLE_DATA), "--limit", "8", "--no-limits"])
    capsys.readouterr()
    run = json.loads((out / "results.json").read_text())
    assert code == 0 and run["verdict"]["status"] == "ok" and run["n_answered"] == 8, run["verdict"]
    assert run["docker"]["given"]["network_mode"] == "none"
    info = run["model_info"]  # the served model's run_info(): launched inside the container, on 127.0.0.1
    assert info["mode"] == "launch" and info["base_url"].startswith("http://127.0.0.1:")
    assert info["multiple_choice_method"] == "structured_outputs"
    # the server's log, a file in the container, reaches the host only through the model's stderr (its close())
    log = (out / "container" / "container.log").read_text()  # the container's stderr, written by the host
    assert log.count('"POST /v1/chat/completions HTTP/1.1" 200') >= 8 + 2  # the answers and the probes
    assert "shopbench-served-guard: stopping the server (received SIGTERM)" in log  # stopped in order
    rows = [json.loads(line) for line in SAMPLE_DATA.read_text().splitlines()][:8]
    predictions = {r["row"]: r["output"] for r in map(json.loads, (out / "predictions.jsonl").open())}
    for row_index, row in enumerate(rows):
        assert not parse(row["task_type"], predictions[row_index]).failed, (row["task_name"], predictions[row_index])
