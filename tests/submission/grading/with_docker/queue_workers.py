"""Workers as real processes for the queue tests (``python -m submission worker``), and reading the state
of grades back through ``python -m submission status --json``. Only processes started here are stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kit_paths import ROOT

PROFILES = Path(__file__).resolve().parent / "fixtures" / "queue_profiles.yaml"
WAIT_S = 240  # generous: the machine is shared; nothing asserts on speed


def kit(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m submission ARGV`` with this tree's kit."""
    out = subprocess.run([sys.executable, "-m", "submission", *argv], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(argv[:2])} exited with {out.returncode}: {out.stderr[-3000:]}")
    return out


class Worker:
    """One ``python -m submission worker`` process; its log in ``folder/NAME.log``."""

    def __init__(self, name: str, broker: str, results: Path, tracks: Path, folder: Path, *extra: str):
        self.name, self.broker, self.log = name, broker, folder / f"{name}.log"
        self.offset = self.log.stat().st_size if self.log.exists() else 0  # a restarted worker appends
        command = [sys.executable, "-m", "submission", "worker", "--broker", broker, "--results", str(results),
                   "--tracks-dir", str(tracks), "--name", f"{name}@test", "--profiles-file", str(PROFILES),
                   "--grace-s", "5", *extra]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.wait_for_log(" ready.")

    @property
    def full_name(self) -> str:
        return f"{self.name}@test"

    def wait_for_log(self, text: str, timeout_s: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.tail(None):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited ({self.process.returncode}): {self.tail()}")
            time.sleep(0.3)
        raise AssertionError(f"worker {self.name}: no '{text}' in its log within {timeout_s} s: {self.tail()}")

    def tail(self, last: int | None = 4000) -> str:
        """This process's part of the log (its last ``last`` characters)."""
        with self.log.open("rb") as handle:
            handle.seek(self.offset)
            text = handle.read().decode("utf-8", "replace")
        return text if last is None else text[-last:]

    def descendants(self) -> list[int]:
        import psutil

        return [p.pid for p in psutil.Process(self.process.pid).children(recursive=True)]

    def stop(self, timeout_s: float = WAIT_S) -> int:
        """SIGTERM (warm shutdown) and wait; SIGKILL only if it does not end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"worker {self.name} did not stop within {timeout_s} s: {self.tail()}") from None
        return self.process.returncode

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)


def grades(broker: str, *extra: str) -> dict:
    """status --json: {"grades": [...], "workers": {...}}, grades keyed by submission."""
    shown = json.loads(kit("status", "--broker", broker, "--json", *extra).stdout)
    return {"grades": {g["submission"]: g for g in shown["grades"]}, "workers": shown["workers"]}


def wait_until(predicate, what: str, broker: str, timeout_s: float = WAIT_S, every_s: float = 1.0) -> dict:
    """Poll status until ``predicate(status)`` holds; the status then."""
    deadline = time.monotonic() + timeout_s
    status = {}
    while time.monotonic() < deadline:
        status = grades(broker)
        if predicate(status):
            return status
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s} s; last status: {json.dumps(status, indent=1)[-3000:]}")


def enqueue(broker: str, submission: str, *extra: str) -> str:
    out = kit("enqueue", "--broker", broker, "--submission", submission, "--track",
              "amazon-kdd-cup-24-all-around", "--profiles-file", str(PROFILES), *extra)
    return out.stdout.strip()


def wait_for_container(client, grade_id: str, timeout_s: float = WAIT_S):
    """The running container of a grade (found by its label)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = client.containers.list(filters={"label": f"shopbench.grade={grade_id}", "status": "running"})
        if running:
            return running[0]
        time.sleep(0.3)
    raise AssertionError(f"no running container of grade {grade_id} within {timeout_s} s")


def containers_of(client, worker: str) -> list:
    return client.containers.list(all=True, filters={"label": f"shopbench.worker={worker}"})
