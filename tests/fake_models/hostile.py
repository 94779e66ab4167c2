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


# ---------------------------------------------------------------- models that attack the judge (issue 19)


def channel_fd() -> int:
    """The descriptor the kit's model loop sends its messages on, found as a hostile model would: the
    loop's Channel object is in this process's memory."""
    import gc

    for item in gc.get_objects():
        if type(item).__name__ == "Channel" and isinstance(getattr(item, "fd", None), int):
            return item.fd
    raise RuntimeError("no channel found")


def send_raw(data: bytes) -> None:
    view = memoryview(data)
    fd = channel_fd()
    while view:
        view = view[os.write(fd, view):]


class ForgesOkVerdict(Deterministic):
    """On the failing batch, sends an 'error' whose status is ok (the judge's own verdict), then exits."""

    def fail(self, answers):
        send_raw(b'{"t": "error", "status": "ok", "detail": "every question answered within the limits"}\n')
        os._exit(0)


class ForgesAnsweredClock(Deterministic):
    """On the failing batch, says its answers were already made (the harness's old 'answered' message, which
    stopped the batch clock), freezes its own perf_counter, then sleeps FAKE_DELAY_AFTER_S past the deadline."""

    def fail(self, answers):
        send_raw(b'{"t": "answered", "b": 2, "lat": 0.0}\n')
        frozen = time.perf_counter()
        time.perf_counter = lambda: frozen
        time.sleep(float(os.environ.get("FAKE_DELAY_AFTER_S", "2")))
        return answers


class WritesGarbage(Deterministic):
    """On the failing batch, writes FAKE_GARBAGE (a Python literal of bytes) into the channel, then answers
    (or, with FAKE_HANG, sleeps)."""

    def fail(self, answers):
        import ast

        send_raw(ast.literal_eval(os.environ["FAKE_GARBAGE"]))
        if os.environ.get("FAKE_HANG"):
            time.sleep(600)
        return answers


class FloodsChannel(Deterministic):
    """On the failing batch, writes FAKE_FLOOD_MB megabytes without a newline into the channel, in 1 MB
    writes (records how many it got through in FAKE_MARKER), then sleeps."""

    def fail(self, answers):
        chunk, sent = b"x" * 1_000_000, 0
        try:
            for _ in range(int(float(os.environ["FAKE_FLOOD_MB"]))):
                send_raw(chunk)
                sent += 1
        except OSError:  # the judge closed the channel: it stopped reading
            pass
        with open(os.environ["FAKE_MARKER"], "w") as handle:
            handle.write(str(sent))
        time.sleep(600)
        return answers


class SendsAnswersTwice(Deterministic):
    """On the failing batch, sends its answers into the channel itself, then returns them too (the loop
    sends them again)."""

    def fail(self, answers):
        import json

        send_raw((json.dumps({"t": "answers", "b": self.batches - 1, "i": 0, "out": answers}) + "\n").encode())
        return answers


class KillsItsReaper(Deterministic):
    """On the failing batch, starts a worker in a new session that outlives everything it can (its pid goes
    to FAKE_PID_FILE), clears its own parent-death signal, SIGKILLs its parent (the kit's reaper), and goes
    on answering."""

    def fail(self, answers):
        import ctypes

        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        record_pid(worker.pid)
        record_pid(os.getpid())
        ctypes.CDLL(None).prctl(1, 0)  # PR_SET_PDEATHSIG 0: survive the parent
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(0.5)
        return answers


class RewritesItsPredictions(Deterministic):
    """On the failing batch, rewrites every line of FAKE_OUTPUT_DIR/predictions.jsonl in place (same size,
    outputs changed) and plants a results.json claiming a perfect score."""

    def fail(self, answers):
        import json
        import re

        folder = os.environ["FAKE_OUTPUT_DIR"]
        path = os.path.join(folder, "predictions.jsonl")
        time.sleep(0.5)  # every earlier batch is on disk by now, whoever writes it
        with open(path, "r+b") as handle:
            data = handle.read()
            handle.seek(0)
            handle.write(re.sub(rb'("output": ?")(\d)', lambda m: m.group(1) + str((int(m.group(2)) + 1) % 10).encode(),
                                data))
        with open(os.path.join(folder, "results.json"), "w") as handle:
            json.dump({"all_around": 1.0, "verdict": {"status": "ok", "detail": "forged"}}, handle)
        return answers


class FreezesItsClocks(Deterministic):
    """Stops every clock of its own process (perf_counter, monotonic, time) at start-up; each batch really
    takes FAKE_DELAY_S."""

    def __init__(self):
        super().__init__()
        for name in ("perf_counter", "monotonic", "time"):
            setattr(time, name, lambda: 1000.0)
