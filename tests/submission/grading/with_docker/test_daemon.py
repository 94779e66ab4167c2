"""The Docker tests' daemon helper: it says why no daemon can be had instead of failing obscurely."""

import pytest
from docker_daemon import ensure_daemon

from submission.grading.images import DockerUnavailable, connect


def test_without_a_daemon_or_dockerd_the_reason_is_clear(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert ensure_daemon() == "no Docker daemon answers and dockerd is not installed (apt-get install docker.io)"


def test_the_runner_says_how_to_start_the_daemon(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(DockerUnavailable, match="cannot reach the Docker daemon .* start it"):
        connect()
