"""Fixtures of the Docker tests: a running daemon (started here when needed), a small local base image,
and test submissions (the kit's files, the test models, a requirement served from a wheelhouse).

No registry is reachable, so nothing is pulled: the base image is a Debian root made with debootstrap
(docker/make_offline_base_image.sh, the script participants use offline), tagged after a hash of that
script and reused between runs. Set SHOPBENCH_TEST_BASE_IMAGE to use an image of your own instead (it
needs python3 with PyYAML and pip). The tests skip only when no Docker daemon answers and none can be
started.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from docker_daemon import ensure_daemon, image_tag
from kit_paths import ROOT

from submission.scoring.data import ALL_AROUND

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
BASE_SCRIPT = ROOT / "docker" / "make_offline_base_image.sh"
KIT_PARTS = ("submission", "models", "docker", ".dockerignore")
REQUIREMENT = "shopbench-fixture-dep"
REQUIREMENT_VALUE = "installed from the wheelhouse"
WEIGHTS_BYTES = 2_000_000  # large enough to tell the weights layer from the code layer by size


@pytest.fixture(scope="session")
def docker_client():
    reason = ensure_daemon()
    if reason:
        pytest.skip(reason)
    import docker

    return docker.from_env(timeout=300)


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The local base image, built once per recipe (about a minute and 40 MB from Debian's archive)."""
    configured = os.environ.get("SHOPBENCH_TEST_BASE_IMAGE")
    if configured:
        return configured
    tag = "shopbench-test-base:" + hashlib.sha256(BASE_SCRIPT.read_bytes()).hexdigest()[:12]
    if shutil.which("debootstrap") is None and not _image_exists(docker_client, tag):
        pytest.fail("the Docker tests build their base image with debootstrap: apt-get install debootstrap, "
                    "or set SHOPBENCH_TEST_BASE_IMAGE to an image with python3, PyYAML and pip")
    out = subprocess.run(["sh", str(BASE_SCRIPT), tag], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        pytest.fail(f"{BASE_SCRIPT} {tag} failed:\n{out.stderr[-3000:]}")
    return tag


def _image_exists(client, tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


# ---------------------------------------------------------------- test submissions


def fixture_wheel() -> tuple[str, bytes]:
    """A pure-Python wheel made here, so that requirements.txt installs without any network."""
    module = f'VALUE = "{REQUIREMENT_VALUE}"\n'.encode()
    dist = "shopbench_fixture_dep-0.1.0.dist-info"
    files = {
        "shopbench_fixture_dep.py": module,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {REQUIREMENT}\nVersion: 0.1.0\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: shopbench-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data)
    return "shopbench_fixture_dep-0.1.0-py3-none-any.whl", buffer.getvalue()


def make_submission(dest: Path, user_model: str = "DummyModel") -> Path:
    """A submission repository: the kit's code, the test models, aicrowd.json ("gpu": false, so the cpu
    profile), a requirement served from wheelhouse/, and a weights/ folder."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in KIT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=ignore)
        else:
            shutil.copy2(source, dest / part)
    shutil.copy2(FIXTURES / "docker_test_models.py", dest / "models" / "docker_test_models.py")
    module = "models.dummy_model" if user_model == "DummyModel" else "models.docker_test_models"
    (dest / "models" / "user_config.py").write_text(f"from {module} import {user_model}\n\nUserModel = {user_model}\n")
    aicrowd = {"challenge_id": ALL_AROUND, "authors": ["shopbench-tests"], "gpu": False}
    (dest / "aicrowd.json").write_text(json.dumps(aicrowd, indent=2) + "\n")
    (dest / "requirements.txt").write_text(f"{REQUIREMENT}==0.1.0\n")
    name, wheel = fixture_wheel()
    (dest / "wheelhouse").mkdir()
    (dest / "wheelhouse" / name).write_bytes(wheel)
    (dest / "weights").mkdir()
    header = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "  # a safetensors header: no tensors
    (dest / "weights" / "tiny.safetensors").write_bytes(header + bytes(WEIGHTS_BYTES))
    return dest


@pytest.fixture(scope="session")
def dummy_submission(tmp_path_factory) -> Path:
    return make_submission(tmp_path_factory.mktemp("submissions") / "dummy")


@pytest.fixture(scope="session")
def dummy_image(docker_client, base_image, dummy_submission) -> str:
    from submission.grading.images import BuildOptions, build_image

    tag = image_tag("dummy")
    build_image(docker_client, dummy_submission, BuildOptions(tag, base_image=base_image))
    return tag


@pytest.fixture(scope="session")
def test_profiles() -> Path:
    return FIXTURES / "profiles.yaml"
