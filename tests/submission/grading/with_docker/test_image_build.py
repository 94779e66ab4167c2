"""The kit's build leaves nothing behind it made and no longer needs, names a base image it cannot have
with the offline fix, and check's smoke run happens in the image: a package only the host has fails it."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest
from docker_daemon import image_tag

from submission import cli
from submission.errors import KitError
from submission.grading.check import CheckOptions, run_checks
from submission.grading.images import BuildOptions, build_image

pytestmark = pytest.mark.docker

TAG = image_tag("cleanup")
ABSENT_BASE = "shopbench-absent-base/none:offline"  # on no registry either: the pull fails with or without network


def stage_images(lines: list[str]) -> list[tuple[str, str]]:
    """(stage name, the image of its last step) for each stage, from the classic builder's log."""
    stages: list[list[str]] = []
    for line in lines:
        start = re.match(r"Step \d+/\d+ : FROM \S+(?: AS (\S+))?", line.strip(), re.IGNORECASE)
        if start:
            stages.append([start.group(1) or "", ""])
        image = re.fullmatch(r"---> ([0-9a-f]{12})", line.strip())
        if image and stages:
            stages[-1][1] = image.group(1)
    return [(name, image) for name, image in stages]


def image_or_none(client, ref: str):
    import docker

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def code_change(repo: Path) -> None:
    (repo / "models" / "build_marker.py").write_text(f"# {uuid.uuid4()}\n")


@pytest.fixture(scope="module")
def cleanup_repo(dummy_submission, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("cleanup") / "repo"
    shutil.copytree(dummy_submission, repo)
    code_change(repo)
    return repo


def test_a_build_keeps_only_the_image_and_its_build_cache(docker_client, base_image, cleanup_repo):
    lines: list[str] = []
    result = build_image(docker_client, cleanup_repo, BuildOptions(TAG, base_image=base_image), lines.append)
    stages = stage_images(lines)
    assert [name for name, _ in stages] == ["system", "packages", "weights", "context", ""]
    ancestors = {h["Id"].removeprefix("sha256:")[:12] for h in docker_client.images.get(TAG).history()}
    for name, image in stages[:-1]:
        found = image_or_none(docker_client, image)
        if name == "context":  # the whole build context: removed
            assert found is None, f"the context stage's image {image} was left behind"
        else:  # an ancestor of the image, or tagged as the next build's cache: never a dangling <none>
            assert image in ancestors or f"{TAG.split(':')[0]}-build-cache:{name}" in found.tags, (name, found)
    assert any("(the context stage)" in removed for removed in result.removed)


def test_a_rebuild_removes_the_image_it_replaced(docker_client, base_image, cleanup_repo, capsys):
    old = docker_client.images.get(TAG).id
    code_change(cleanup_repo)
    assert cli.main(["docker", "build", "--repo", str(cleanup_repo), "--tag", TAG, "--base-image", base_image]) == 0
    assert docker_client.images.get(TAG).id != old
    assert image_or_none(docker_client, old) is None, "the replaced image was left as a dangling <none> image"
    printed = capsys.readouterr().out
    assert "removed 2 image(s) this build no longer needs: " in printed and f"{old[7:19]} (was {TAG})" in printed
    assert re.search(r"largest layers: [0-9.]+ MB \(the base image\); ", printed), printed


def test_a_failed_build_leaves_no_image_of_its_own(docker_client, base_image, dummy_submission, tmp_path):
    repo = tmp_path / "broken"
    shutil.copytree(dummy_submission, repo)
    (repo / "requirements.txt").write_text(f"not-in-the-wheelhouse-{uuid.uuid4().hex[:8]}==1.0\n")
    lines: list[str] = []
    with pytest.raises(KitError):
        build_image(docker_client, repo, BuildOptions(image_tag("broken"), base_image=base_image), lines.append)
    stages = dict(stage_images(lines))
    assert list(stages) == ["system", "packages"]  # failed in the packages stage, after copying the wheelhouse
    assert image_or_none(docker_client, stages["packages"]) is None, "the failed stage's image was left behind"


def test_an_absent_base_image_is_named_with_the_offline_fix(docker_client, dummy_submission, capsys):
    with pytest.raises(KitError) as error:
        build_image(docker_client, dummy_submission, BuildOptions(image_tag("no-base"), base_image=ABSENT_BASE))
    message = str(error.value)
    assert f"the base image {ABSENT_BASE} is not on this machine and Docker could not pull it" in message
    assert "docker/make_offline_base_image.sh" in message and "--base-image" in message
    assert cli.main(["docker", "build", "--repo", str(dummy_submission), "--tag", image_tag("no-base"),
                     "--base-image", ABSENT_BASE]) == 2
    assert "sh docker/make_offline_base_image.sh shopbench-base:bookworm" in capsys.readouterr().err
    options = CheckOptions(tag=image_tag("no-base"), base_image=ABSENT_BASE)
    status, detail = {r.name: (r.status, r.detail) for r in run_checks(dummy_submission, options)}["smoke run"]
    assert status == "fail" and detail.startswith("the image could not be built here, so the model did not run: "
                                                  f"the base image {ABSENT_BASE} is not on this machine"), detail


@pytest.fixture
def jinja_submission(dummy_submission, tmp_path) -> Path:
    """A model that imports a package this Python environment has (jinja2) and the image does not."""
    repo = tmp_path / "jinja"
    shutil.copytree(dummy_submission, repo)
    (repo / "models" / "user_config.py").write_text(
        "import jinja2  # noqa: F401\nfrom models.dummy_model import DummyModel\n\nUserModel = DummyModel\n")
    return repo


def test_check_fails_when_the_image_lacks_a_package_the_host_has(jinja_submission, base_image):
    options = CheckOptions(tag=image_tag("jinja"), base_image=base_image)
    found = {r.name: (r.status, r.detail) for r in run_checks(jinja_submission, options)}
    assert found["user_config"][0] == "ok"  # importable here
    status, detail = found["smoke run"]
    assert status == "fail" and "No module named 'jinja2'" in detail and "run the grader's way" in detail, detail


def test_check_passes_in_the_image_of_a_working_submission(dummy_submission, base_image, dummy_image):
    found = {r.name: (r.status, r.detail) for r in run_checks(dummy_submission, CheckOptions(image=dummy_image))}
    status, detail = found["smoke run"]
    assert status == "ok" and detail.startswith("3 answers") and f"in image {dummy_image}" in detail, detail


def test_check_without_a_dockerfile_fails_the_smoke_run(dummy_submission, tmp_path, docker_client):
    repo = tmp_path / "no-dockerfile"
    shutil.copytree(dummy_submission, repo)
    (repo / "docker" / "Dockerfile").unlink()
    status, detail = {r.name: (r.status, r.detail) for r in run_checks(repo, CheckOptions())}["smoke run"]
    assert status == "fail" and "docker/Dockerfile: no such file; the grader builds the image from it" in detail
