"""Hostile and broken models for the hardening tests: each edits, floods, deletes or escapes one way.

Every model answers like ``models.Deterministic`` except where its docstring says; FAKE_* environment
variables (set by the tests through ModelSpec.env) tell it where to write what it did.
"""

import os
import signal
import subprocess
import sys
import time

from fake_models.models import Deterministic, answer


def record_pid(pid: int) -> None:
    """Append ``pid`` to FAKE_PID_FILE, so the test can check by pid that nothing survived."""
    with open(os.environ["FAKE_PID_FILE"], "a") as handle:
        handle.write(f"{pid}\n")


class ClearsBatch(Deterministic):
    """Empties the batch it was given and answers nothing."""

    def batch_predict(self, batch, is_multiple_choice):
        batch["prompt"].clear()
        return []


class PopsPrompts(Deterministic):
    """Consumes the batch's list while answering: one answer per prompt, in order."""

    def batch_predict(self, batch, is_multiple_choice):
        answers = []
        while batch["prompt"]:
            answers.append(answer(batch["prompt"].pop(0), is_multiple_choice))
        return answers


class AppendsPrompt(Deterministic):
    """Adds a prompt of its own to the batch and answers it too."""

    def batch_predict(self, batch, is_multiple_choice):
        batch["prompt"].append("one more")
        return [answer(p, is_multiple_choice) for p in batch["prompt"]]


class HugeAnswers(Deterministic):
    """Every answer is FAKE_ANSWER_MB megabytes: the right answer, then padding."""

    def batch_predict(self, batch, is_multiple_choice):
        size = int(float(os.environ.get("FAKE_ANSWER_MB", "3")) * 1_000_000)
        return [(answer(p, is_multiple_choice) + " ").ljust(size, "x") for p in batch["prompt"]]


class LoneSurrogate(Deterministic):
    """Answers with a lone surrogate (not encodable as UTF-8) in front of the right answer."""

    def batch_predict(self, batch, is_multiple_choice):
        return ["\ud800" + answer(p, is_multiple_choice) for p in batch["prompt"]]


class ReportsCwd(Deterministic):
    """Answers with the directory it runs in."""

    def batch_predict(self, batch, is_multiple_choice):
        return [os.getcwd()] * len(batch["prompt"])


class DeletesFiles(Deterministic):
    """On the failing batch, deletes every file under FAKE_DELETE_DIR (a model that cleans up)."""

    def fail(self, answers):
        for folder, _, files in os.walk(os.environ["FAKE_DELETE_DIR"]):
            for name in files:
                os.unlink(os.path.join(folder, name))
        return answers


def _stubborn_worker() -> int:
    """Fork a worker that ignores SIGTERM and sleeps, keeping every inherited descriptor; its pid."""
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)
        os._exit(0)
    return pid


class ExitsLeavingWorker(Deterministic):
    """On the failing batch, forks a SIGTERM-ignoring worker that keeps the channel, then exits with 0."""

    def fail(self, answers):
        record_pid(_stubborn_worker())
        os._exit(0)


class SessionWorker(Deterministic):
    """Starts a worker in a session of its own on its first batch (it is orphaned when the model ends)."""

    def batch_predict(self, batch, is_multiple_choice):
        if self.batches == 0:
            worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
            record_pid(worker.pid)
        return super().batch_predict(batch, is_multiple_choice)


class StubbornWorkerThenSlow(Deterministic):
    """On its first batch, records its own pid and a SIGTERM-ignoring worker's; every batch is slow."""

    def batch_predict(self, batch, is_multiple_choice):
        if self.batches == 0:
            record_pid(os.getpid())
            record_pid(_stubborn_worker())
        time.sleep(float(os.environ.get("FAKE_DELAY_S", "1")))
        return super().batch_predict(batch, is_multiple_choice)


def _write_files(folder: str, total_mb: float, file_mb: float, prefix: str) -> None:
    """``total_mb`` megabytes into ``folder`` in files of ``file_mb`` each (real bytes, not sparse)."""
    chunk = os.urandom(1_000_000)
    for index in range(int(total_mb / file_mb)):
        with open(os.path.join(folder, f"{prefix}-{index}.bin"), "wb") as handle:
            for _ in range(int(file_mb)):
                handle.write(chunk)


class FillsScratch(Deterministic):
    """On the failing batch, writes FAKE_WRITE_MB MB into its TMPDIR in files of FAKE_FILE_MB, then waits
    for the harness to notice."""

    def fail(self, answers):
        _write_files(os.environ["TMPDIR"], float(os.environ["FAKE_WRITE_MB"]),
                     float(os.environ.get("FAKE_FILE_MB", "1")), "scratch")
        time.sleep(float(os.environ.get("FAKE_DELAY_AFTER_S", "30")))
        return answers


class FillsOutput(Deterministic):
    """On the failing batch, writes FAKE_WRITE_MB MB into FAKE_OUTPUT_DIR, then waits."""

    def fail(self, answers):
        _write_files(os.environ["FAKE_OUTPUT_DIR"], float(os.environ["FAKE_WRITE_MB"]), 1, "junk")
        time.sleep(float(os.environ.get("FAKE_DELAY_AFTER_S", "30")))
        return answers


class ReportsRunInfo(Deterministic):
    """Answers like Deterministic and says how: run_info() for results.json."""

    def run_info(self):
        return {"method": "lookup", "batches": self.batches}
