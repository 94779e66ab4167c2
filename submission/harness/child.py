"""The model's loop: it builds the model and answers what the judge asks, nothing more.

    python -m submission.harness.child IN_FD OUT_FD PARENT_PID   a local run (the reaper starts it)
    python -m submission.harness.child --stdio                    a container (the channel is stdin/stdout)

Exit status: 0 the judge said end (or closed the channel); 1 the model failed (its error was sent); 2 no
job came, or the model class could not be found, or its constructor raised ConfigError (a configuration
error, sent too: bad input).

The judge (``judge.py``: the supervisor of a local run, the host process of a container run) drives every
step over the channel (``protocol.py``): it sends the job, then asks for the batch size, sends each batch's
prompts and finally says end. This loop never reads the questions itself, never chooses a batch's
prompts and never times anything: the judge's clocks run from the batch it sent to the answers it read.
The model gets a copy of each batch's prompts; its answers are checked against this loop's own list and
cut to ``ANSWER_CAP_CHARS`` before they are sent. In ``--stdio`` mode the loop keeps the real stdin and
stdout for the channel and points the model's stdin at /dev/null and its stdout at stderr, so what the
model prints goes to the log, never into the channel. Nothing the model's code does in this process can
change a verdict: the judge checks every message it receives.

The interface's two optional hooks are read with their defaults (``hook``), since a participant's class
may derive from the official starter kit's base class, which has neither: ``run_info()`` (default None:
nothing to record) and ``close()`` (default: nothing), which this process calls once on every ending it
can (``Closer``): after ``end``, after a failure, and on SIGTERM (a time-out, an interrupt; the judge
follows it with SIGKILL after a short grace, so a close() that hangs cannot hold up the run's end).
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sys
from collections.abc import Callable
from time import perf_counter  # bound now: a model that replaces time.perf_counter does not change it
from types import FrameType
from typing import Any

from ..errors import ConfigError, KitError, ModelOutputError
from ..loading import ModelImportError, load_model_class, participant_traceback
from . import gpu_child, gpu_emulation, limits, protocol
from .batches import ask, batch_size_of, cap_answers, check_responses, plural
from .disk import is_disk_error, limit_file_size


class Channel:
    """JSON lines from the judge (``receive``) and to it (``send``), one write per message."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.in_fd, self.fd, self.buffer = in_fd, out_fd, bytearray()
        os.set_blocking(in_fd, False)

    def receive(self) -> dict[str, Any] | None:
        """The judge's next message, or None when it closed the channel. Waiting spins for a moment first
        (``protocol.SPIN_S``): the judge's next request usually comes within microseconds."""
        spin_until = perf_counter() + protocol.SPIN_S
        while b"\n" not in self.buffer:
            try:
                chunk = os.read(self.in_fd, 1 << 20)
            except BlockingIOError:
                if perf_counter() >= spin_until:
                    select.select([self.in_fd], [], [])
                continue
            if not chunk:
                return None
            self.buffer += chunk
        end = self.buffer.index(b"\n")
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        return json.loads(line) if line.strip() else self.receive()

    def send(self, message: dict[str, Any]) -> None:
        self.write(protocol.encode(message))

    def write(self, data: bytes) -> None:
        view = memoryview(data)  # a memoryview keeps long writes linear
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
    message: dict[str, Any] = {"t": "error", "status": status, "detail": detail,
                               "traceback": text[-8000:] if text else None}
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


def build_model(job: dict[str, Any], channel: Channel) -> Any | None:
    """Import and construct the model; returns it, or None after reporting a failure."""
    started = perf_counter()
    try:
        model_class = load_model_class(job["model"], job["repo"])
    except ModelImportError as exc:  # the model's module raised while being imported
        cause = exc.__cause__  # the participant's exception (loading.py raises ModelImportError from it)
        text = participant_traceback(cause, full=True) if FULL_TRACEBACK and cause is not None else exc.traceback
        print(text, file=sys.stderr, flush=True)
        report_error(channel, "model_error", str(exc), text)
        return None
    except KitError as exc:  # no such module or class: the caller's configuration, not the model
        channel.send({"t": "error", "status": "config_error", "detail": str(exc)})
        print(f"error: {exc}", file=sys.stderr, flush=True)
        job["config_error"] = True
        return None
    seed_loaded(job["seed"])
    try:
        model = model_class()
    except ConfigError as exc:  # a setting the model reads (a kit backend's YAML, a path): bad input, not a failure
        channel.send({"t": "error", "status": "config_error", "detail": str(exc)[:4000]})
        return None
    except Exception as exc:  # noqa: BLE001 - any error in the constructor is model_error
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
    channel.send({"t": "ready", "init_s": perf_counter() - started, "notes": notes})
    return model


def send_size(model: Any, channel: Channel) -> bool:
    try:
        size = batch_size_of(model)
    except Exception as exc:  # noqa: BLE001 - any error in get_batch_size() is model_error
        send_info(model, channel)
        fail(channel, exc, "model_error", "get_batch_size()")
        return False
    channel.send({"t": "size", "n": size})
    return True


class PeakRss:
    """This process's peak RSS (VmHWM), read at most every ``every_s`` (a /proc read costs more than a small
    batch's whole answer): a figure for results.json, which the judge measures itself as well."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s, self.next_at = every_s, 0.0
        self.value: int | None = None

    def read(self) -> int | None:
        now = perf_counter()
        if now >= self.next_at:
            self.next_at, self.value = now + self.every_s, limits.own_peak_rss()
        return self.value


PEAK_RSS = PeakRss()


def answer_batch(model: Any, request: dict[str, Any], channel: Channel) -> bool:
    """batch_predict on the request's prompts; the answers, checked and cut, are sent in one write, followed
    by get_batch_size()'s answer when the request asks for it (the judge's next question, saved a round trip)."""
    prompts, is_mc, index = request["prompts"], request["mc"], request["b"]
    try:
        responses = ask(model, prompts, is_mc)
        responses, cut = cap_answers(check_responses(responses, prompts, index))
    except Exception as exc:  # noqa: BLE001 - any error in batch_predict() is model_error
        send_info(model, channel)
        fail(channel, exc, "model_error", f"batch_predict (batch {index}, {plural(len(prompts), 'prompt')})")
        return False
    counts = {"cut": cut, "rss": PEAK_RSS.read(), "gpu": limits.torch_gpu_peaks()}
    data = answer_messages(index, responses, counts)
    if not request.get("size"):
        channel.write(data)
        return True
    try:
        size = batch_size_of(model)
    except Exception as exc:  # noqa: BLE001 - any error in get_batch_size() is model_error
        channel.write(data)
        send_info(model, channel)
        fail(channel, exc, "model_error", "get_batch_size()")
        return False
    channel.write(data + protocol.encode({"t": "size", "n": size}))
    return True


def answer_messages(index: int, answers: list[str], counts: dict[str, Any]) -> bytes:
    """The batch's answers as "answers" messages of about ``PACK_BYTES`` each (a longer answer alone), the
    counts in the first: the judge's cap per message stays small whatever the answers hold."""
    encoded = [json.dumps(answer) for answer in answers]
    extra = "".join(f',"{k}":{json.dumps(v)}' for k, v in counts.items() if v is not None)
    lines, start = [], 0
    while start < len(encoded):
        end, size = start + 1, len(encoded[start])
        while end < len(encoded) and size + len(encoded[end]) < protocol.PACK_BYTES:
            size += len(encoded[end]) + 1
            end += 1
        lines.append(f'{{"t":"answers","b":{index},"i":{start},"out":[{",".join(encoded[start:end])}]'
                     f'{extra if start == 0 else ""}}}\n')
        start = end
    return "".join(lines).encode()


def serve(model: Any, channel: Channel) -> int:
    """Answer the judge's requests until ``end`` (0), a failure (1) or the end of the channel (0)."""
    first = True
    while True:
        request = channel.receive()
        kind = None if request is None else request.get("t")
        if kind == "size":
            if not send_size(model, channel):
                return 1
        elif kind == "batch" and request is not None:  # (a "batch" kind implies a request)
            if not answer_batch(model, request, channel):
                return 1
            problem = gpu_emulation.bfloat16_weights(model) if first else None
            if problem is not None:  # weights the first batch loaded (gpu_emulation.py)
                return report_error(channel, "unsupported", problem, None)
            first = False
        else:  # "end", or the judge is gone
            if kind == "end":
                send_info(model, channel)
            return 0


HOOK_DEFAULTS: dict[str, Callable[[], Any]] = {"run_info": lambda: None, "close": lambda: None}


def hook(model: Any, name: str) -> Callable[[], Any]:
    """The model's ``run_info`` or ``close``, or the interface's default when its class has none."""
    method = getattr(model, name, None)
    return method if callable(method) else HOOK_DEFAULTS[name]


def send_info(model: Any, channel: Channel) -> None:
    """What the model says about its run (its ``run_info()``: a served model's server and multiple-choice
    method, say), for results.json; sent before the run's last message. None (the default) says nothing."""
    try:
        info = hook(model, "run_info")()
        text = json.dumps(info, default=str)
    except Exception as exc:  # noqa: BLE001 - the model's own code: a note, never a verdict
        info, text = {"error": f"run_info() raised {type(exc).__name__}: {exc}"[:500]}, ""
    if info is None:
        return
    if len(text) > protocol.INFO_MAX_CHARS:
        info = {"error": f"run_info() returned {len(text):,} characters of JSON; at most "
                         f"{protocol.INFO_MAX_CHARS:,} are kept"}
    info = info if isinstance(info, dict) else {"value": info}
    channel.send({"t": "info", "info": json.loads(json.dumps(info, default=str))})


class Closer:
    """Calls the model's ``close()`` once, on whichever ending comes first: the end of the run, a failure,
    or SIGTERM."""

    def __init__(self, model: Any) -> None:
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

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """The judge ends the run (a time-out, an interrupt): close the model, then exit. A close() already
        running is left to finish; the judge's SIGKILL after its grace bounds it."""
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
            except Exception:  # noqa: BLE001 - a stream the model closed or replaced: the loop ends anyway
                pass
        os._exit(128 + signal.SIGTERM)


def take_stdio() -> tuple[int, int]:
    """--stdio: keep stdin and stdout for the channel; the model reads /dev/null and prints to stderr."""
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return in_fd, out_fd


def prepare(job: dict[str, Any]) -> None:
    """Before the model is imported: the job's environment, the caller's import path, the limits. No CUDA
    call here: torch's cap is in PYTORCH_CUDA_ALLOC_CONF (see gpu.py)."""
    global FULL_TRACEBACK
    FULL_TRACEBACK = job.get("full_traceback", False)
    for name, value in (job.get("env") or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    fraction = job.get("torch_fraction")
    if fraction and gpu_child.torch_reads_fraction():  # a container: only if the image's torch reads the key
        os.environ[gpu_child.ALLOC_CONF] = gpu_child.alloc_conf(os.environ.get(gpu_child.ALLOC_CONF), fraction)
    sys.path[:0] = [p for p in job.get("sys_path", []) if p not in sys.path]
    job["notes"] = limits.apply_process_limits(job.get("ram_bytes"), job.get("rlimit_as", False), job.get("vcpus"))
    job["notes"] += limit_file_size(job.get("fsize_bytes"))
    job["notes"] += gpu_emulation.install()  # torch, once imported, behaves as the profile's card


def main(argv: list[str]) -> int:
    if argv[:1] == ["--stdio"]:
        in_fd, out_fd = take_stdio()
    else:
        in_fd, out_fd = int(argv[0]), int(argv[1])
        limits.die_with_parent(int(argv[2]))
    for fd in (in_fd, out_fd):
        os.set_inheritable(fd, False)  # programs the model starts do not get the channel
    channel = Channel(in_fd, out_fd)
    job = channel.receive()
    if not job or job.get("t") != "job" or job.get("v") != protocol.VERSION:
        print(f"the judge sent no job of protocol version {protocol.VERSION}: {str(job)[:200]}", file=sys.stderr)
        return 2
    prepare(job)
    model = build_model(job, channel)
    if model is None:
        return 2 if job.get("config_error") else 1
    send_info(model, channel)  # said at once too: results.json keeps it however the run ends (a timeout included)
    closer = Closer(model)
    try:
        return serve(model, channel)
    finally:
        closer.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
