"""The launched server's process life: a reserved port, clear errors when it never answers or dies at
start, and nothing left alive after close(), SIGTERM or SIGKILL of the model's process, even a grandchild
that leaves the process group and ignores SIGTERM. Real processes, the scripted server of
tests/fake_models/openai_server.py and plain ``python -c`` commands."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import no_hang
import pytest
from kit_paths import ROOT, TESTS

from submission.backends.served.guard import descendants, proc_stat
from submission.backends.served.launcher import PortReservation, render_command, resolve_executable
from submission.backends.served.model import ServedModel
from submission.errors import ServerError
from submission.harness.outcome import HarnessOptions, ModelSpec
from submission.harness.runner import run_model
from submission.scoring.data import Question

SERVER = TESTS / "fake_models" / "openai_server.py"


def scripted(*flags: str) -> str:
    return f"{{python}} {SERVER} --host {{host}} --port {{port}} " + " ".join(flags)


def wait_gone(pids, timeout_s: float = 20.0) -> list[int]:
    """The pids still alive after waiting up to ``timeout_s`` for them to end (zombies count as gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if proc_stat(pid) is not None]
        if not alive:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if proc_stat(pid) is not None]


def stubborn_pid(lines) -> int:
    for line in lines:
        match = re.search(r"stubborn child (\d+)", line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"no stubborn child in the log: {list(lines)}")


def test_the_port_is_held_against_others_but_not_against_the_server():
    reservation = PortReservation()
    try:
        other = socket.socket()
        with pytest.raises(OSError) as error:
            other.bind(("127.0.0.1", reservation.port))
        assert error.value.errno == 98  # EADDRINUSE: a process without SO_REUSEADDR cannot take it
        other.close()
        for option in (socket.SO_REUSEADDR, socket.SO_REUSEPORT):  # uvicorn and vLLM; llama.cpp
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, option, 1)
            server.bind(("127.0.0.1", reservation.port))  # the launched server can
            server.listen()
            socket.create_connection(("127.0.0.1", reservation.port)).close()
            server.close()
    finally:
        reservation.release()


def test_placeholders_are_filled_word_by_word_and_programs_found_beside_python(monkeypatch, tmp_path):
    argv = render_command("serve {weights} --port {port}", {"weights": "/models/my model"})
    assert argv == ["serve", "/models/my model", "--port", "{port}"]  # {port} is the launcher's to fill
    monkeypatch.setenv("PATH", str(tmp_path))  # a venv's python run without activating the venv
    found = resolve_executable(["transformers", "serve"])
    assert found[0] == os.path.join(os.path.dirname(sys.executable), "transformers")
    with pytest.raises(ServerError, match="cannot find the program 'no-such-server'"):
        resolve_executable(["no-such-server"])


def test_a_server_that_never_becomes_healthy_names_the_command_and_its_log():
    with pytest.raises(ServerError) as error:
        ServedModel(launch=scripted("--never-healthy"), startup_timeout_s=2, shutdown_grace_s=1)
    message = str(error.value)
    assert "was not ready within 2 s (startup_timeout_s); waiting for /health: HTTP 503" in message
    assert f"command: {sys.executable} {SERVER} --host 127.0.0.1 --port " in message
    assert "scripted-server: listening on 127.0.0.1:" in message and '"GET /health HTTP/1.1" 503' in message
    server_pid = int(re.search(r"server pid (\d+)", message).group(1))
    assert wait_gone([server_pid]) == []


def test_a_server_that_never_listens_names_the_connection_error():
    command = "{python} -c \"import time; print('loading the weights...', flush=True); time.sleep(600)\" {host} {port}"
    with pytest.raises(ServerError) as error:
        ServedModel(launch=command, startup_timeout_s=1.5, shutdown_grace_s=1)
    message = str(error.value)
    assert "waiting for /health: ConnectionRefusedError" in message and "loading the weights..." in message
    assert wait_gone([int(re.search(r"server pid (\d+)", message).group(1))]) == []


def test_a_server_that_exits_at_start_gives_its_exit_code_and_last_words():
    command = "{python} -c \"import sys; print('cannot load the model', file=sys.stderr); sys.exit(4)\" {host} {port}"
    with pytest.raises(ServerError) as error:
        ServedModel(launch=command, startup_timeout_s=30)
    message = str(error.value)
    assert message.startswith("the server exited with code 4 before it was ready")
    assert "cannot load the model" in message.split("last lines of the server's log:")[1]


def test_close_stops_the_server_and_a_grandchild_that_left_the_group_and_ignores_sigterm():
    model = ServedModel(launch=scripted("--spawn-child"), startup_timeout_s=30, shutdown_grace_s=1)
    launcher = model.launcher
    child = stubborn_pid(launcher.drain.lines)
    pids = [launcher.guard.pid, launcher.server_pid, child]
    assert set(pids[1:]) <= set(descendants(launcher.guard.pid))
    assert os.getpgid(launcher.server_pid) == launcher.guard.pid != os.getpgid(child)
    model.close()
    assert wait_gone(pids, timeout_s=10) == []
    assert any("SIGKILL to 1 process(es) still alive after 1 s" in line for line in launcher.drain.lines)
    model.close()  # twice is fine


def test_close_is_logged_by_the_guard_even_when_the_server_ends_first_on_the_group_sigterm():
    model = ServedModel(launch=scripted("--die-on-sigterm"), startup_timeout_s=30, shutdown_grace_s=1)
    launcher = model.launcher
    model.close()  # SIGTERM to the whole group: the server dies at once, and the guard still says why
    assert wait_gone([launcher.guard.pid, launcher.server_pid], timeout_s=10) == []
    assert "shopbench-served-guard: stopping the server (received SIGTERM)" in launcher.drain.lines


HOLDER = f"""
import json, sys, time
sys.path[:0] = [{str(ROOT)!r}]
from submission.backends.served.model import ServedModel
model = ServedModel(launch={scripted('--spawn-child')!r}, startup_timeout_s=30, shutdown_grace_s=1)
launcher = model.launcher
while not any("stubborn child" in line for line in launcher.drain.lines):
    time.sleep(0.05)
child = [int(l.split()[-1]) for l in launcher.drain.lines if "stubborn child" in l][0]
print(json.dumps([launcher.guard.pid, launcher.server_pid, child]), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_nothing_outlives_the_model_process_however_it_ends(sig):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        pids = json.loads(holder.stdout.readline() or "null") or pytest.fail(holder.stderr.read())
        assert all(proc_stat(pid) is not None for pid in pids)
        holder.send_signal(sig)
        code = holder.wait(timeout=30)
        assert code == -sig  # the handlers stop the server, then the signal's own default action ends it
        assert wait_gone(pids) == []
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_trickling_health_check_cannot_stretch_the_startup_timeout():
    """/health answers one byte every 0.2 s, forever: the start-up deadline is total, not per read."""
    with pytest.raises(ServerError) as error:
        no_hang.within(60, ServedModel, launch=scripted("--trickle-s", "0.2", "--trickle-health"),
                       startup_timeout_s=3, shutdown_grace_s=1)
    assert "was not ready within 3 s (startup_timeout_s); waiting for /health: TimeoutError" in str(error.value)


def daemon_pid(pid_file) -> int:
    return int(pid_file.read_text())


def test_a_server_that_kills_its_guard_and_leaves_a_daemon_leaves_nothing_running(tmp_path):
    """The server forks a daemon into a new session (it ignores SIGTERM) and SIGKILLs its guard: no subreaper
    is left to hold the daemon, yet nothing the launch started outlives the model's close()."""
    pid_file = tmp_path / "daemon.pid"
    model = ServedModel(launch=scripted("--daemon-pid-file", str(pid_file)), startup_timeout_s=30,
                        shutdown_grace_s=1, max_retries=1, retry_backoff_s=0.01)
    launcher = model.launcher
    pids = [launcher.guard.pid, launcher.server_pid]
    with pytest.raises(ServerError, match="the server exited with code -9"):
        model.batch_predict({"prompt": ["[kill-guard] Describe a tent."]}, False)
    daemon = daemon_pid(pid_file)
    model.close()
    assert wait_gone([*pids, daemon], timeout_s=10) == []


def test_under_the_harness_a_killed_guard_and_its_daemon_leave_nothing_running(tmp_path):
    pid_file = tmp_path / "daemon.pid"
    questions = [Question(0, "Describe a tent.", False), Question(1, "[kill-guard] Describe a lamp.", False)]
    spec = ModelSpec(model="fake_models.served:EnvServed", repo=str(TESTS),
                     env={"SERVED_LAUNCH": scripted("--daemon-pid-file", str(pid_file)), "SERVED_GRACE_S": "1"})
    outcome = run_model(spec, questions, tmp_path / "out", options=HarnessOptions(poll_s=0.05))
    assert outcome.verdict.status == "model_error" and "the server exited with code -9" in outcome.verdict.detail
    info = outcome.model_info or {}
    assert wait_gone([daemon_pid(pid_file), *[info[k] for k in ("guard_pid", "server_pid") if k in info]]) == []
