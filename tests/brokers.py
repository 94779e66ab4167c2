"""Real brokers for the queue tests: Debian's redis-server and rabbitmq-server, each started on free ports
in a folder of its own and stopped afterwards. ``why_missing`` says why one cannot be had here (the
tests skip with that reason); ``./setup.sh --system`` installs both."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REDIS = "redis-server"
RABBITMQ = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the server itself (/usr/sbin's wrapper changes user)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the broker exited with code {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the broker did not listen on port {port} within {timeout_s:g} s: {log.read_text()[-2000:]}")


class RedisServer:
    """``redis-server --port P --save "" --appendonly no`` in ``folder``, with a password when given."""

    def __init__(self, folder: Path, password: str | None = None):
        if shutil.which(REDIS) is None:
            raise RuntimeError(why_missing(REDIS))
        folder.mkdir(parents=True, exist_ok=True)
        self.port, self.log = free_port(), folder / "redis.log"
        command = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", str(folder)]
        if password:
            command += ["--requirepass", password]
        self.password = password
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_for_port(self.port, self.process, self.log, 30)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class RabbitServer:
    """RabbitMQ with its own node name, ports (its epmd's too) and folders; ``consumer_timeout`` set as the
    docs say (above the longest grade)."""

    def __init__(self, folder: Path, consumer_timeout_ms: int = 3_600_000):
        if not Path(RABBITMQ).is_file():
            raise RuntimeError(why_missing("rabbitmq-server"))
        folder.mkdir(parents=True, exist_ok=True)
        self.port, self.epmd_port = free_port(), free_port()
        (folder / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
                                              f"consumer_timeout = {consumer_timeout_ms}\n")
        (folder / "enabled_plugins").write_text("[].\n")
        self.env = {**os.environ, "HOME": str(folder), "RABBITMQ_NODENAME": f"shopbench-test-{self.port}@localhost",
                    "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(free_port()),
                    "ERL_EPMD_PORT": str(self.epmd_port), "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(folder / "log"), "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
                    "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid")}
        self.log = folder / "server.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([RABBITMQ], stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True, cwd=folder)
        _wait_for_port(self.port, self.process, self.log, 120)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # the node started an epmd of its own on its own port, as a daemon: stop that one
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], env=self.env, capture_output=True, timeout=30)


def why_missing(binary: str) -> str:
    return f"{binary} is not installed (apt-get install -y redis-server rabbitmq-server; ./setup.sh --system does)"
