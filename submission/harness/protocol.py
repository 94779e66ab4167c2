"""The channel between the judge and the model's loop: JSON lines, one message each, and their checks.

The judge (``judge.py``: the supervisor of a local run, or the host process of a container run) drives;
the model's loop (``child.py``) only answers. Judge -> model:

    {"t": "job", "v": 1, "model": ..., "seed": ..., ...}      once, first: what to build and the limits to apply
    {"t": "size"}                                              call get_batch_size() and send the size
    {"t": "batch", "b": 3, "prompts": [...], "mc": true, "size": true}
                                                               call batch_predict on these prompts, send the
                                                               answers; "size": then get_batch_size() too
    {"t": "end"}                                               send run_info(), call close(), exit 0

Model -> judge:

    {"t": "ready", "init_s": 1.2, "notes": [...]}              the model is built (once, first)
    {"t": "size", "n": 8}                                      get_batch_size()'s answer, 1..16
    {"t": "answers", "b": 3, "i": 0, "out": [...], "cut": 0, "rss": ..., "gpu": [...]}
                                                               answers i, i+1, ... of batch 3, in order; a batch's
                                                               answers may come in several messages (one long
                                                               answer per message keeps each message small); the
                                                               first one carries the counts
    {"t": "info", "info": {...}}                               run_info(): once built, and at the end or before an
                                                               error (at most twice; the last one is kept)
    {"t": "error", "status": ..., "detail": ..., "traceback": ..., "device": ..., "gpu": [...]}
                                                               a named failure; the loop then exits 1

Everything the model's side sends is untrusted: a line may hold at most ``MAX_LINE_BYTES`` (an answer is
at most ``ANSWER_CAP_CHARS`` characters, 12 bytes each at worst as JSON escapes), ``LineReader`` never
holds more than that, and every message is checked here before the judge keeps anything from it. A
message that breaks these rules raises ``ProtocolError``, which the judge turns into the ``protocol``
verdict. Only the standard library: the model's loop imports this module.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

from ..errors import KitError
from .batches import ANSWER_CAP_CHARS, MAX_BATCH_SIZE, MIN_BATCH_SIZE

VERSION = 1
MAX_LINE_BYTES = 16 * 1024 * 1024  # one message; an answer of ANSWER_CAP_CHARS astral characters is 12 MB as JSON
SPIN_S = 100e-6  # each side polls this long for the other's reply before it sleeps: a wake-up costs more
PACK_BYTES = 1 << 20  # the loop packs answers into messages of about this size (one longer answer goes alone)
MAX_NOTES, MAX_TEXT_CHARS, MAX_TRACEBACK_CHARS = 100, 2000, 8000
INFO_MAX_CHARS = 1 << 16
# What an error message may name: failures of the model, never a verdict that judges the run (ok, timeout ...)
ERROR_STATUSES = ("model_error", "bad_output", "memory", "gpu_memory", "disk", "unsupported", "config_error")
MAX_INFO_MESSAGES = 2  # run_info(): once the model is built, and once more at the end or before an error
READ_CHUNK = 1 << 22  # the judge reads the model's pipe this much at a time


class ProtocolError(KitError):
    """The model's side sent something the protocol does not allow; the message says what."""


def read_available(fd: int) -> bytes | None:
    """What a non-blocking pipe holds now: b"" nothing yet, None at end of file."""
    try:
        chunk = os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return b""
    return chunk or None


def encode(message: dict[str, Any]) -> bytes:
    """One message as a JSON line (ASCII: a lone surrogate travels as its escape)."""
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def show(data: bytes, limit: int = 60) -> str:
    """The start of what was sent, for a verdict's detail."""
    text = repr(data[:limit])
    return text + (f" ... ({len(data):,} bytes)" if len(data) > limit else "")


class BatchEncoder:
    """The judge's "batch" messages, each prompt encoded as JSON once, ahead of time (``prepare``: while the
    model works on the batch before), so that sending a batch is a join."""

    def __init__(self, prompts: list[str]) -> None:
        self.prompts: list[str] = prompts
        self.encoded: dict[int, str] = {}

    def prepare(self, start: int, count: int) -> None:
        for position in range(start, min(start + count, len(self.prompts))):
            if position not in self.encoded:
                self.encoded[position] = json.dumps(self.prompts[position])

    def message(self, index: int, start: int, n: int, mc: bool, more: bool) -> bytes:
        self.prepare(start, n)
        prompts = ",".join(self.encoded.pop(position) for position in range(start, start + n))
        return (f'{{"t":"batch","b":{index},"prompts":[{prompts}],"mc":{"true" if mc else "false"},'
                f'"size":{"true" if more else "false"}}}\n').encode()


class LineReader:
    """Complete lines from a byte stream, each at most ``max_line`` bytes; memory stays under about
    ``max_line`` plus one chunk whatever is sent. Every byte is copied once, however long a line is."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line, self.held = max_line, 0
        self.parts: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\n" not in chunk:
            self.held += len(chunk)
            if self.held > self.max_line:
                raise ProtocolError(f"a line of more than {self.max_line:,} bytes (the cap per message)")
            self.parts.append(chunk)
            return []
        head, _, tail = chunk.rpartition(b"\n")
        data = b"".join(self.parts) + head if self.parts else head
        self.parts, self.held = ([tail], len(tail)) if tail else ([], 0)
        lines = data.split(b"\n")
        if len(data) > self.max_line and max(map(len, lines)) > self.max_line:
            raise ProtocolError(f"a line of more than {self.max_line:,} bytes (the cap per message)")
        if self.held > self.max_line:
            raise ProtocolError(f"a line of more than {self.max_line:,} bytes (the cap per message)")
        return [line for line in lines if line]

    @property
    def partial(self) -> int:
        """Bytes of an unfinished line held now."""
        return self.held


def decode(line: bytes) -> dict[str, Any]:
    """A JSON object with a string "t", or ProtocolError naming what came instead."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(f"a line that is not JSON: {show(line)}") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ProtocolError(f"a JSON line that is not a message (an object with a \"t\" field): {show(line)}")
    return message


# ---------------------------------------------------------------- checks on what the model's side sends


def _count(message: dict, key: str, optional: bool = True) -> int | None:
    value = message.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"a \"{message['t']}\" message whose \"{key}\" is not a non-negative int: {value!r:.60}")
    return value


def _seconds(message: dict, key: str) -> float:
    value = message.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ProtocolError(f"a \"{message['t']}\" message whose \"{key}\" is not a number of seconds: {value!r:.60}")
    return float(value)


def _optional_text(message: dict, key: str, cap: int) -> str | None:
    return None if message.get(key) is None else _text(message, key, cap)


def _text(message: dict, key: str, cap: int) -> str:
    value = message.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"a \"{message['t']}\" message whose \"{key}\" is not a string")
    return value[:cap]


def _counts(message: dict, key: str) -> tuple[int, ...]:
    value = message.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 64 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise ProtocolError(f"a \"{message['t']}\" message whose \"{key}\" is not a short list of non-negative ints")
    return tuple(value)


@dataclass(frozen=True)
class Ready:
    init_s: float
    notes: tuple[str, ...]


def ready(message: dict) -> Ready:
    notes = message.get("notes", [])
    if not isinstance(notes, list) or len(notes) > MAX_NOTES or not all(isinstance(n, str) for n in notes):
        raise ProtocolError(f"a \"ready\" message whose \"notes\" is not a list of at most {MAX_NOTES} strings")
    return Ready(_seconds(message, "init_s"), tuple(n[:MAX_TEXT_CHARS] for n in notes))


def size(message: dict) -> int:
    n = message.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or not MIN_BATCH_SIZE <= n <= MAX_BATCH_SIZE:
        raise ProtocolError(f"a batch size of {n!r:.60} (the model's loop checks get_batch_size() is "
                            f"{MIN_BATCH_SIZE}..{MAX_BATCH_SIZE} itself)")
    return n


@dataclass(frozen=True)
class Answers:
    outputs: tuple[str, ...]
    cut: int | None = None
    rss: int | None = None
    gpu: tuple[int, ...] = ()


def answers(message: dict, batch: int, received: int, n: int) -> Answers:
    """Answers ``received``, ``received + 1``, ... of batch ``batch`` (``n`` prompts), checked."""
    if message.get("b") != batch:
        raise ProtocolError(f"answers for batch {message.get('b')!r:.20} while batch {batch} was asked")
    if message.get("i") != received:
        what = "again" if isinstance(message.get("i"), int) and message["i"] < received else "out of order"
        raise ProtocolError(f"answers of batch {batch} from answer {message.get('i')!r:.20} {what} "
                            f"({received} of its {n} answers had arrived)")
    out = message.get("out")
    if not isinstance(out, list) or not out or len(out) > n - received:
        count = len(out) if isinstance(out, list) else "no list of"
        raise ProtocolError(f"{count} answers for batch {batch} when {n - received} of its {n} were due")
    for index, answer in enumerate(out):
        if not isinstance(answer, str):
            raise ProtocolError(f"answer {received + index} of batch {batch} that is not a string")
        if len(answer) > ANSWER_CAP_CHARS:
            raise ProtocolError(f"answer {received + index} of batch {batch} with {len(answer):,} characters (the "
                                f"model's loop cuts answers at {ANSWER_CAP_CHARS:,})")
    cut = _count(message, "cut")
    if cut is not None and cut > n:
        raise ProtocolError(f"a count of {cut} cut answers for a batch of {n}")
    return Answers(tuple(out), cut, _count(message, "rss"), _counts(message, "gpu"))


@dataclass(frozen=True)
class Failure:
    status: str
    detail: str
    traceback: str | None = None
    device: int | None = None
    gpu: tuple[int, ...] = ()


def error(message: dict) -> Failure:
    status = message.get("status")
    if status not in ERROR_STATUSES:
        raise ProtocolError(f"an error message with status {status!r:.40} (a model's failure is one of "
                            f"{', '.join(ERROR_STATUSES)})")
    traceback = _optional_text(message, "traceback", MAX_TRACEBACK_CHARS * 4)
    return Failure(status, _text(message, "detail", MAX_TEXT_CHARS),
                   traceback[-MAX_TRACEBACK_CHARS:] if traceback else None, _count(message, "device"),
                   _counts(message, "gpu"))


def info(message: dict) -> dict:
    value = message.get("info")
    if not isinstance(value, dict) or len(json.dumps(value, default=str)) > INFO_MAX_CHARS:
        raise ProtocolError(f"an \"info\" message that is not a JSON object of at most {INFO_MAX_CHARS:,} characters")
    return value
