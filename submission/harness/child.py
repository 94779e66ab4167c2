"""The model's own process: ``python -m submission.harness.child JOB_FD DATA_FD PARENT_PID``.

The reaper (``reaper.py``, started by the supervisor ``session.py``) starts it with two inherited file
descriptors: JOB_FD, an unlinked file holding the job (model spec, prompts in grader order, limits),
read once and closed, so no prompt is ever left on disk; and DATA_FD, the pipe this process reports on.
It applies the resource limits, imports and builds the model, then forms batches the grader's way and
reports each one:

    {"t": "ready", "init_s": ..., "notes": [...]}          the model is built
    {"t": "start", "b": 3, "i": 48, "n": 16}                batch 3 = prompts[48:64] is being asked
    {"t": "answered", "b": 3, "lat": ...}                   long answers: the batch clock stops before sending
    {"t": "done", "b": 3, "out": [...], "cut": 0, ...}      its answers (checked, cut to the cap)
    {"t": "error", "status": ..., "detail": ..., "traceback": ...}   a named failure; the process exits 1
                                                            (status config_error: no such model class, or a
                                                            ConfigError from its constructor: bad input)
    {"t": "info", "info": {...}}                            the model's run_info(), if it says anything
    {"t": "end"}                                            every prompt answered

The model gets a copy of each batch's prompts; its answers are checked against this process's own list.
stdout and stderr stay the model's own. Nothing but the reaper should ever start this module.

The interface's two optional hooks are read with their defaults (``hook``), since a participant's class
may derive from the official starter kit's base class, which has neither: ``run_info()`` (default None:
nothing to record) and ``close()`` (default: nothing), which this process calls once on every ending it
can (``Closer``): after the last answer, after a failure, and on the supervisor's SIGTERM (a time-out,
an interrupt), which the supervisor follows with SIGKILL after a short grace (``HarnessOptions.kill_grace_s``),
so a close() that hangs cannot hold up the run's end.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from typing import Any, Callable

from ..errors import ConfigError, KitError, ModelOutputError
from ..loading import ModelImportError, load_model_class, participant_traceback
from . import gpu_child, gpu_emulation, limits
from .batches import ask, batch_size_of, cap_answers, check_responses, plural
from .disk import is_disk_error, limit_file_size


class Channel:
    """JSON lines to the supervisor, one write per message."""

    def __init__(self, fd: int):
        self.fd = fd

    def send(self, message: dict[str, Any]) -> None:
        """One JSON line (ASCII: lone surrogates travel as escapes); a memoryview keeps long writes linear."""
        view = memoryview((json.dumps(message) + "\n").encode())
        while view:
            view = view[os.write(self.fd, view):]


def failure_status(exc: BaseException, default: str) -> str:
    """Which verdict an exception from the model gives: memory, gpu_memory, bad_output or ``default``."""
    if isinstance(exc, MemoryError):
        return "memory"
    if is_disk_error(exc):  # no space left in the scratch space, or a file over RLIMIT_FSIZE
        return "disk"
    if gpu_child.gpu_failure(exc)[0]:  # torch's OutOfMemoryError, cuBLAS/CUDA allocation failures
        return "gpu_memory"
    if isinstance(exc, ModelOutputError):
        return "bad_output"
    return default


FULL_TRACEBACK = False  # the job's full_traceback (local_evaluation.py --verbose): the kit's frames too


def fail(channel: Channel, exc: BaseException, default: str, where: str) -> int:
    """Report a failure. A broken interface (bad_output) is one line, the kit's own message; an exception
    of the model's code shows its traceback from the model's frames down (the kit's frames above them are
    left out unless FULL_TRACEBACK)."""
    status = failure_status(exc, default)
    first_line = (str(exc).strip().splitlines() or [""])[0][:500]
    if status == "bad_output":
        detail, text = first_line, None
    else:
        detail = f"{where} raised {type(exc).__name__}: {first_line}".rstrip(": ")
        text = participant_traceback(exc, full=FULL_TRACEBACK)
        print(text, file=sys.stderr, flush=True)
    device = gpu_child.gpu_failure(exc)[1] if status == "gpu_memory" else None  # the card the error names
    return report_error(channel, status, detail, text, device)


def report_error(channel: Channel, status: str, detail: str, text: str | None, device: int | None = None) -> int:
    message = {"t": "error", "status": status, "detail": detail, "traceback": text[-8000:] if text else None}
    if status == "gpu_memory":
        message["gpu"] = limits.torch_gpu_peaks()
        message["device"] = device
    channel.send(message)
    return 1


def seed_loaded(seed: int) -> None:
    """Seed the global RNGs the model's modules may use (only those already imported: no import cost)."""
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)


def build_model(job: dict[str, Any], channel: Channel):
    """Import and construct the model; returns it, or None after reporting a failure."""
    started = time.perf_counter()
    try:
        model_class = load_model_class(job["model"], job["repo"])
    except ModelImportError as exc:  # the model's module raised while being imported
        text = participant_traceback(exc.__cause__, full=True) if FULL_TRACEBACK else exc.traceback
        print(text, file=sys.stderr, flush=True)
        report_error(channel, "model_error", str(exc), text)
        return None
    except KitError as exc:  # no such module or class: the caller's configuration, not the model
        channel.send({"t": "error", "status": "config_error", "detail": str(exc)})
        return None
    seed_loaded(job["seed"])
    try:
        model = model_class()
    except ConfigError as exc:  # a setting the model reads (a kit backend's YAML, a path): bad input, not a failure
        channel.send({"t": "error", "status": "config_error", "detail": str(exc)[:4000]})
        return None
    except Exception as exc:  # noqa: BLE001
        fail(channel, exc, "model_error", f"the constructor {model_class.__name__}()")
        return None
    notes = job.get("notes", [])
    try:  # the model is built, CUDA initialised by it if at all: fit torch's cap to what it holds outside torch
        notes += gpu_child.refit_torch_cap(job.get("gpu_memory_bytes"), job.get("gpu_uuids", []))
    except Exception as exc:  # noqa: BLE001 - the environment's cap and NVML's watchdog still apply
        notes.append(f"torch GPU memory cap not refitted: {exc}")
    problem = gpu_emulation.bfloat16_weights(model)  # bfloat16 weights on a card without it (gpu_emulation.py)
    if problem is not None:
        report_error(channel, "unsupported", problem, None)
        return None
    channel.send({"t": "ready", "init_s": time.perf_counter() - started, "notes": notes})
    return model


def group_ranges(mc: list[bool]) -> list[tuple[int, int, bool]]:
    """[start, end) of the non-multiple-choice run and of the multiple-choice run (grader order)."""
    split = next((i for i, is_mc in enumerate(mc) if is_mc), len(mc))
    return [r for r in ((0, split, False), (split, len(mc), True)) if r[0] < r[1]]


LONG_ANSWERS_CHARS = 1 << 16  # answers longer than this in all are announced before they are sent


def is_long(responses) -> bool:
    return isinstance(responses, (list, tuple)) and \
        sum(len(r) for r in responses if isinstance(r, str)) > LONG_ANSWERS_CHARS


def answer_batch(model, prompts: list[str], is_mc: bool, index: int, channel: Channel) -> bool:
    started = time.perf_counter()
    try:
        responses = ask(model, prompts, is_mc)
        latency = time.perf_counter() - started
        if is_long(responses):  # its sending may take a while: stop the batch clock first
            channel.send({"t": "answered", "b": index, "lat": latency})
        responses, cut = cap_answers(check_responses(responses, prompts, index))
    except Exception as exc:  # noqa: BLE001
        send_info(model, channel)
        fail(channel, exc, "model_error", f"batch_predict (batch {index}, {plural(len(prompts), 'prompt')})")
        return False
    message = {"t": "done", "b": index, "out": responses, "cut": cut, "lat": latency, "rss": limits.own_peak_rss()}
    gpu = limits.torch_gpu_peaks()
    if gpu is not None:
        message["gpu"] = gpu
    channel.send(message)
    return True


def run_batches(model, job: dict[str, Any], channel: Channel) -> int:
    prompts, index = job["prompts"], job["first_batch"]
    for start, end, is_mc in group_ranges(job["mc"]):
        while start < end:
            try:
                size = batch_size_of(model)
            except Exception as exc:  # noqa: BLE001
                send_info(model, channel)
                return fail(channel, exc, "model_error", "get_batch_size()")
            n = min(size, end - start)
            channel.send({"t": "start", "b": index, "i": start, "n": n})
            if not answer_batch(model, prompts[start:start + n], is_mc, index, channel):
                return 1
            problem = gpu_emulation.bfloat16_weights(model) if index == job["first_batch"] else None
            if problem is not None:  # weights the first batch loaded
                return report_error(channel, "unsupported", problem, None)
            start, index = start + n, index + 1
    send_info(model, channel)
    channel.send({"t": "end"})
    return 0


INFO_MAX_CHARS = 1 << 16


HOOK_DEFAULTS: dict[str, Callable[[], Any]] = {"run_info": lambda: None, "close": lambda: None}


def hook(model, name: str) -> Callable[[], Any]:
    """The model's ``run_info`` or ``close``, or the interface's default when its class has none."""
    method = getattr(model, name, None)
    return method if callable(method) else HOOK_DEFAULTS[name]


def send_info(model, channel: Channel) -> None:
    """What the model says about its run (its ``run_info()``: a served model's server and multiple-choice
    method, say), for results.json; sent before the run's last message. None (the default) says nothing."""
    try:
        info = hook(model, "run_info")()
        text = json.dumps(info, default=str)
    except Exception as exc:  # noqa: BLE001 - the model's own code: a note, never a verdict
        info, text = {"error": f"run_info() raised {type(exc).__name__}: {exc}"[:500]}, ""
    if info is None:
        return
    if len(text) > INFO_MAX_CHARS:
        info = {"error": f"run_info() returned {len(text):,} characters of JSON; at most {INFO_MAX_CHARS:,} are kept"}
    channel.send({"t": "info", "info": info if isinstance(info, dict) else {"value": info}})


class Closer:
    """Calls the model's ``close()`` once, on whichever ending comes first: the last answer, a failure, or
    the supervisor's SIGTERM."""

    def __init__(self, model):
        self.model, self.state, self.pid = model, "open", os.getpid()  # open -> closing -> closed
        self.previous = signal.signal(signal.SIGTERM, self.on_sigterm)

    def close(self) -> None:
        if self.state != "open":
            return
        self.state = "closing"
        try:
            hook(self.model, "close")()
        except Exception as exc:  # noqa: BLE001 - the model's own code: a line on its stderr, never a verdict
            print(f"close() raised {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            self.state = "closed"

    def on_sigterm(self, signum, frame) -> None:
        """The supervisor ends the run (a time-out, an interrupt): close the model, then exit. A close()
        already running is left to finish; the supervisor's SIGKILL after its grace bounds it."""
        if os.getpid() != self.pid:  # a worker the model forked inherited this handler: it ends as it would have
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if self.state == "closing":
            return
        self.close()
        if callable(self.previous):  # a handler the model installed itself runs too
            try:
                self.previous(signum, frame)
            except BaseException:  # noqa: BLE001 - this process ends now whatever it does
                pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(128 + signal.SIGTERM)


def read_job(job_fd: int) -> dict[str, Any]:
    with os.fdopen(job_fd, "rb") as handle:
        return json.loads(handle.read())


def main(argv: list[str]) -> int:
    job_fd, fd, parent_pid = int(argv[0]), int(argv[1]), int(argv[2])
    limits.die_with_parent(parent_pid)
    os.set_inheritable(fd, False)  # programs the model starts do not get the channel
    job = read_job(job_fd)
    global FULL_TRACEBACK
    FULL_TRACEBACK = job.get("full_traceback", False)
    channel = Channel(fd)
    sys.path[:0] = [p for p in job["sys_path"] if p not in sys.path]  # the caller's import path
    # No CUDA call before the model is imported: torch's cap is in PYTORCH_CUDA_ALLOC_CONF (see gpu.py).
    job["notes"] = limits.apply_process_limits(job["ram_bytes"], job["rlimit_as"], job["vcpus"])
    job["notes"] += limit_file_size(job.get("fsize_bytes"))
    job["notes"] += gpu_emulation.install()  # torch, once imported, behaves as the profile's card
    model = build_model(job, channel)
    if model is None:
        return 1
    send_info(model, channel)  # said at once too: results.json keeps it however the run ends (a timeout included)
    closer = Closer(model)
    try:
        return run_batches(model, job, channel)
    finally:
        closer.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
