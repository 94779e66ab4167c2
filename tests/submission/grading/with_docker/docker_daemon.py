"""Finding or starting a Docker daemon for the tests (``ensure_daemon`` says why none can be had), and the
tags of the images the tests build (``image_tag``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

DOCKERD_LOG = Path(os.environ.get("SHOPBENCH_DOCKERD_LOG", "/tmp/shopbench-dockerd.log"))
TAG_PREFIX = os.environ.get("SHOPBENCH_TEST_TAG_PREFIX", "shopbench-test")


def image_tag(name: str) -> str:
    """``shopbench-test-NAME:latest``; set SHOPBENCH_TEST_TAG_PREFIX so that two checkouts testing at once on
    one daemon build and run their own images."""
    return f"{TAG_PREFIX}-{name}:latest"


def _ping() -> bool:
    import docker

    try:
        docker.from_env(timeout=10).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no daemon here"
        return False


def ensure_daemon(wait_s: float = 60.0) -> str | None:
    """None when a daemon answers (after starting dockerd if needed), else why none can be had."""
    if _ping():
        return None
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        return "no Docker daemon answers and dockerd is not installed (apt-get install docker.io)"
    if os.geteuid() != 0:
        return "no Docker daemon answers and only root can start dockerd here"
    log = DOCKERD_LOG.open("ab")
    # Left running after the tests, like a system daemon: the next run finds it.
    subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                     start_new_session=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if _ping():
            return None
        time.sleep(0.5)
    tail = DOCKERD_LOG.read_text(errors="replace").splitlines()[-5:]
    return f"dockerd did not answer within {wait_s:g} s; its log ({DOCKERD_LOG}) ends: " + " | ".join(tail)
