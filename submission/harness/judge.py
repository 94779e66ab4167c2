"""The judge: it drives the model's loop over a channel, times every batch and the budget with its own
clocks, checks every message and keeps the answers; then it names how the run ended.

One implementation for both transports (``Transport``): pipes to a local process tree (``session.py``)
and a container's stdin/stdout through the Docker attach socket (``grading/container_channel.py``). The
judge sends the job, asks for the batch size, sends each batch's prompts and reads its answers:

* the per-batch clock runs from the first byte of the batch written to the last byte of its answers
  read; the budget clock from the start of the model's process. Nothing the model sends starts, stops,
  resets or extends either. ``get_batch_size()`` has a short deadline of its own (``SIZE_LIMIT_S``).
* every message is checked (``protocol.py``): a line over the cap, a malformed message, answers for a
  batch that was not asked, answers sent twice or too many, anything unexpected ends the run with the
  ``protocol`` verdict. Answers are kept only once their whole batch has arrived and been checked.
* answered batches go to predictions.jsonl (``PredictionWriter``) and stay in memory (``records``): the
  run folder is written from those, never read back from a file the model could reach.
"""

from __future__ import annotations

import collections
import select
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..errors import ConfigError, KitError
from ..scoring.data import Question
from . import protocol
from . import verdict as verdicts
from .failures import Measured, named_failure
from .outcome import BatchRecord, GpuUsage, Progress, RunOutcome
from .predictions import PredictionWriter
from .profiles import Limits
from .protocol import ProtocolError

SIZE_LIMIT_S = 30.0  # get_batch_size() must answer within this long (when time limits apply)


class Transport(Protocol):
    """How the judge reaches the model's loop; see the module docstring."""

    started: float  # time.monotonic() when the model's process was started: the budget clock's start
    def fds(self) -> list[int]: ...  # to wait on for reading: the channel first, then what the transport watches
    def read(self, fd: int) -> bytes | None: ...  # channel bytes from ``fd`` (b"" none now); None: channel ended
    def write_fd(self) -> int | None: ...  # the channel towards the model (None: closed)
    def write(self, data: memoryview) -> int: ...  # bytes written without blocking
    @property
    def exited(self) -> bool: ...  # the model's process (or container) has ended
    def drain(self) -> bytes: ...  # channel bytes still readable after the end
    def wait_exit(self, timeout: float) -> bool: ...
    def died(self, when: str) -> verdicts.Verdict: ...  # how the model's side ended without saying why
    def check(self, now: float, final: bool = False) -> verdicts.Verdict | None: ...  # resources, interrupts
    def next_check(self) -> float: ...  # when ``check`` next has work to do
    def measured(self) -> Measured: ...  # what the transport measured so far: RAM and GPU peaks


class Stop(KitError):
    """The run ends with ``verdict`` (control flow inside ``Judge.run``, which always catches it)."""

    def __init__(self, verdict: verdicts.Verdict) -> None:
        super().__init__(str(verdict))
        self.verdict = verdict


class Judge:
    """One run of the protocol; ``run`` returns the verdict, the other attributes are what was observed."""

    def __init__(self, transport: Transport, job: dict[str, Any], todo: Sequence[Question], limits: Limits,
                 writer: PredictionWriter, on_progress: Callable[[Progress], None] | None = None,
                 first_batch: int = 0, prior: tuple[int, float] = (0, 0.0), exit_wait_s: float = 10.0) -> None:
        self.transport, self.job, self.todo, self.limits, self.writer = transport, job, list(todo), limits, writer
        self.on_progress, self.next_index, self.exit_wait_s = on_progress, first_batch, exit_wait_s
        self.n_prior, self.prior_elapsed = prior  # a resumed run's answered questions and time so far
        self.n_questions = self.n_prior + len(self.todo)
        self.reader = protocol.LineReader()
        self.inbox: collections.deque[tuple[bytes, float]] = collections.deque()  # lines, when each arrived
        self.encoder = protocol.BatchEncoder([q.prompt for q in self.todo])
        self.pending: collections.deque[memoryview] = collections.deque()
        self.batches: list[BatchRecord] = []
        # batches checked, not yet written: questions, answers, index, latency, when the answers arrived
        self.unwritten: collections.deque[tuple[list[Question], list[str], int, float, float]] = collections.deque()
        self.records: list[dict[str, Any]] = []  # this session's predictions, as written
        self.answered = self.answers_cut = self.child_rss = 0
        self.torch_peaks: dict[int, int] = {}
        self.notes: list[str] = []
        self.model_info: dict | None = None
        self.infos = 0
        self.traceback: str | None = None
        self.init_s: float | None = None
        self.ready_at: float | None = None
        self.state = ("build", 0, 0)  # what the judge waits for: the contexts of a verdict's detail

    # ------------------------------------------------------------ the run

    @property
    def context(self) -> str:
        """What the judge was waiting for, as a protocol verdict's detail ends."""
        kind, index, n = self.state
        return {"build": "before the model was ready", "end": "after the last batch",
                "size": f"while get_batch_size() was asked before batch {index}",
                "batch": f"while batch {index} ({n} prompts) was asked"}[kind]

    @property
    def when(self) -> str:
        """When the model's side ended, as a crash's detail says it."""
        kind, index, n = self.state
        return {"build": "while the model was being built", "end": "after the last batch",
                "size": f"after {self.n_answered:,} of {self.n_questions:,} questions, between batches",
                "batch": f"during batch {index} ({n} prompts)"}[kind]

    def run(self) -> verdicts.Verdict:
        try:
            self.send(dict(self.job, t="job", v=protocol.VERSION))
            message, now = self.expect(("ready",))
            ready = protocol.ready(message)
            self.ready_at, self.init_s = now, ready.init_s
            self.notes.extend(ready.notes)
            self.job = {}  # sent: the prompts need not stay twice in memory
            try:
                self.ask_batches()
            finally:
                self.flush()  # every batch received and checked is kept, whatever ended the run
            return self.finish()
        except ProtocolError as exc:
            return verdicts.Verdict("protocol", f"the model's process sent {exc} {self.context}")
        except Stop as stop:
            return stop.verdict

    def ask_batches(self) -> None:
        """Grader order (``todo``): the open questions, then the multiple-choice ones, never in one batch."""
        split = next((i for i, q in enumerate(self.todo) if q.is_multiple_choice), len(self.todo))
        size, start = (self.ask_size() if self.todo else 0), 0
        for end in (split, len(self.todo)):
            while start < end:
                n = min(size, end - start)
                more = start + n < len(self.todo)
                self.ask_batch(start, n, more)
                if more:
                    size = self.receive_size()
                start += n

    def ask_size(self) -> int:
        self.send({"t": "size"})
        return self.receive_size()

    def receive_size(self) -> int:
        self.state = ("size", self.next_index, 0)
        limit = SIZE_LIMIT_S if self.limits.seconds_per_sample is not None else None
        asked = time.monotonic()
        deadline = None if limit is None else asked + limit

        def late(now: float) -> verdicts.Verdict:
            return verdicts.Verdict("timeout", f"get_batch_size() did not answer within {limit:g} s (before "
                                    f"batch {self.next_index})")

        message, _ = self.expect(("size",), deadline, late)
        return protocol.size(message)

    def ask_batch(self, start: int, n: int, more: bool) -> None:
        index, batch = self.next_index, self.todo[start:start + n]
        self.state = ("batch", index, n)
        started = time.monotonic()
        self.pending.append(memoryview(self.encoder.message(index, start, n, batch[0].is_multiple_choice, more)))
        self._write()
        self.flush()  # the previous batch is written, the next prompts encoded, while the model works on this one
        self.encoder.prepare(start + n, protocol.MAX_BATCH_SIZE)
        limit = self.limits.batch_limit_s(n)
        deadline = None if limit is None else started + limit

        def late(now: float) -> verdicts.Verdict:
            assert limit is not None, "late() runs only past the deadline, which only a limit sets"
            return verdicts.batch_timeout(index, n, now - started, limit, stopped=True)

        outputs: list[str] = []
        while len(outputs) < n:
            message, received = self.expect(("answers",), deadline, late)
            answers = protocol.answers(message, index, len(outputs), n)
            outputs.extend(answers.outputs)
            self._note_counts(answers)
        latency = received - started
        if limit is not None and latency > limit:
            raise Stop(verdicts.batch_timeout(index, n, latency, limit, stopped=False))
        self._budget(received)
        self.batches.append(BatchRecord(index, tuple(q.row for q in batch), batch[0].is_multiple_choice, latency))
        self.answered += n
        self.next_index = index + 1
        self.unwritten.append((batch, outputs, index, latency, received))

    def flush(self) -> None:
        """Write the batches received and checked to predictions.jsonl and the records (off the critical path:
        after the next batch was sent), and report the progress."""
        while self.unwritten:
            batch, outputs, index, latency, now = self.unwritten.popleft()
            elapsed = round(self.elapsed(now), 3)
            records = [{"row": q.row, "output": out, "batch": index, "batch_size": len(batch),
                        "latency_s": round(latency, 6), "elapsed_s": elapsed}
                       for q, out in zip(batch, outputs, strict=True)]
            self.writer.write_batch(records)
            self.records.extend(records)
            if self.on_progress is not None:
                answered = len(self.records) + self.n_prior
                self.on_progress(Progress(answered, self.n_questions, self.elapsed(now), self.projected(now),
                                          self.limits.budget_s))

    def finish(self) -> verdicts.Verdict:
        """Every question answered: the last resource checks, then end; the model's loop closes and exits.
        Only run_info() may still arrive; how the process exits afterwards changes nothing."""
        self.state = ("end", 0, 0)
        verdict = self.transport.check(time.monotonic(), final=True)
        if verdict is not None:
            return verdict
        self.send({"t": "end"})
        deadline = time.monotonic() + self.exit_wait_s
        while True:
            while self.inbox:
                self._after_end(self.inbox.popleft()[0])
            if self.transport.exited:
                self.inbox.extend((line, 0.0) for line in self.reader.feed(self.transport.drain()))
                while self.inbox:
                    self._after_end(self.inbox.popleft()[0])
                return verdicts.ok(self.n_questions, self.limits.enforced)
            left = deadline - time.monotonic()
            if left <= 0:
                self.notes.append(f"the model's process did not exit within {self.exit_wait_s:g} s of the end of "
                                  "the run (its close() may hang); it was stopped")
                return verdicts.ok(self.n_questions, self.limits.enforced)
            if self.pump(deadline, budget=False) is None:
                self.transport.wait_exit(left)

    def _after_end(self, line: bytes) -> None:
        message = protocol.decode(line)
        if message["t"] != "info":
            raise ProtocolError(f"a \"{message['t']}\" message")
        self._take_info(message)

    # ------------------------------------------------------------ the channel

    def send(self, message: dict[str, Any]) -> None:
        self.pending.append(memoryview(protocol.encode(message)))
        self._write()

    def _write(self) -> None:
        fd = self.transport.write_fd()
        while self.pending and fd is not None:
            view = self.pending[0]
            written = self.transport.write(view)
            if written < len(view):
                self.pending[0] = view[written:]
                return
            self.pending.popleft()
        if fd is None:
            self.pending.clear()  # the model's side closed its input: what it would not read is dropped

    def pump(self, deadline: float | None, budget: bool = True) -> bool | None:
        """Wait for the channel until ``deadline`` (or the budget's end, or the transport's next check),
        writing what is pending meanwhile; complete lines go to the inbox. None when the channel ended."""
        now = time.monotonic()
        times = (deadline, self._budget_deadline() if budget else None, self.transport.next_check(), now + 1.0)
        wake = min(t for t in times if t is not None)
        fd = self.transport.write_fd() if self.pending else None
        readable, writable, _ = select.select(self.transport.fds(), [fd] if fd is not None else [], [],
                                              max(0.0, wake - now))
        if writable:
            self._write()
        ended = False
        for ready_fd in readable:
            data = self.transport.read(ready_fd)
            if data is None:
                ended = True
            elif data:
                received = time.monotonic()
                self.inbox.extend((line, received) for line in self.reader.feed(data))
        return None if ended else True

    def _spin(self, until: float) -> bool:
        """Poll the channel (``fds()[0]``) without sleeping until ``until``: a reply that comes within
        microseconds is read without the cost of a wake-up. Whether a complete line arrived."""
        fd = self.transport.fds()[0]
        while time.monotonic() < until:
            data = self.transport.read(fd)
            if data is None:
                return False
            if data:
                received = time.monotonic()
                self.inbox.extend((line, received) for line in self.reader.feed(data))
                if self.inbox:
                    return True
        return False

    def expect(self, kinds: tuple[str, ...], deadline: float | None = None,
               late: Callable[[float], verdicts.Verdict] | None = None) -> tuple[dict, float]:
        """The next message of one of ``kinds`` and when it arrived; an error, a death, a resource over its
        limit, the budget or ``deadline`` raise Stop; anything else raises ProtocolError."""
        spin = True
        while True:
            if self.inbox:
                line, received = self.inbox.popleft()
                message = protocol.decode(line)
                if message["t"] == "error":
                    raise Stop(self._failure(protocol.error(message)))
                if message["t"] == "info":
                    self._take_info(message)
                    continue
                if message["t"] not in kinds:
                    if message["t"] == "answers":
                        raise ProtocolError(f"answers for batch {message.get('b')!r:.20} when no batch was being "
                                            "asked (more answers than prompts, or answers sent twice)")
                    raise ProtocolError(f"a \"{message['t']:.40}\" message")
                return message, received
            if self.transport.exited:
                self.inbox.extend((line, time.monotonic()) for line in self.reader.feed(self.transport.drain()))
                if self.inbox:
                    continue
                if self.reader.partial:
                    raise ProtocolError(f"an unfinished line of {self.reader.partial:,} bytes before it ended")
                raise Stop(self.transport.died(self.when))
            now = time.monotonic()
            verdict = self.transport.check(now) or self._budget_verdict(now)
            if verdict is not None:
                raise Stop(verdict)
            if deadline is not None and late is not None and now >= deadline:
                raise Stop(late(now))
            if spin and self._spin(now + protocol.SPIN_S):
                spin = False
                continue
            spin = False
            if self.pump(deadline) is None and not self.transport.wait_exit(self.exit_wait_s):
                raise Stop(verdicts.Verdict("crashed", "the model's process closed its channel to the judge but "
                                            "did not exit; do not close inherited file descriptors"))

    # ------------------------------------------------------------ what the model's side says

    def _failure(self, failure: protocol.Failure) -> verdicts.Verdict:
        if failure.status == "config_error":
            if self.ready_at is not None:
                raise ProtocolError("a configuration error after the model was built")
            raise ConfigError(failure.detail)
        self.traceback = failure.traceback
        for i, peak in enumerate(failure.gpu):
            self.torch_peaks[i] = max(self.torch_peaks.get(i, 0), peak)
        return named_failure(failure, self.limits, self.transport.measured(), self.torch_peaks, self.child_rss)

    def _take_info(self, message: dict) -> None:
        self.infos += 1
        if self.infos > protocol.MAX_INFO_MESSAGES:
            raise ProtocolError(f"\"info\" message number {self.infos} (at most {protocol.MAX_INFO_MESSAGES} are sent)")
        self.model_info = protocol.info(message)

    def _note_counts(self, answers: protocol.Answers) -> None:
        self.answers_cut += answers.cut or 0
        self.child_rss = max(self.child_rss, answers.rss or 0)
        for i, peak in enumerate(answers.gpu):
            self.torch_peaks[i] = max(self.torch_peaks.get(i, 0), peak)

    # ------------------------------------------------------------ clocks

    @property
    def n_answered(self) -> int:
        return self.n_prior + self.answered

    def elapsed(self, now: float) -> float:
        return self.prior_elapsed + (now - self.transport.started)

    def _budget_deadline(self) -> float | None:
        budget = self.limits.budget_s
        return None if budget is None else self.transport.started + budget - self.prior_elapsed

    def _budget_verdict(self, now: float) -> verdicts.Verdict | None:
        if self.limits.budget_s is not None and self.elapsed(now) > self.limits.budget_s:
            return verdicts.budget_timeout(self.limits.budget_s, self.n_answered, self.n_questions)
        return None

    def _budget(self, now: float) -> None:
        verdict = self._budget_verdict(now)
        if verdict is not None:
            raise Stop(verdict)

    def projected(self, now: float) -> float | None:
        """Elapsed time plus the questions left at this session's answering rate so far."""
        if not self.answered or self.ready_at is None:
            return None
        rate = (now - self.ready_at) / self.answered
        return self.elapsed(now) + rate * (self.n_questions - self.n_answered)

    # ------------------------------------------------------------ the outcome

    def outcome(self, verdict: verdicts.Verdict, ended: float, peak_rss: int | None, gpus: tuple[GpuUsage, ...],
                notes: Sequence[str]) -> RunOutcome:
        """How the run ended, from the judge's own records and what the transport measured."""
        started = self.transport.started
        return RunOutcome(
            verdict=verdict, limits=self.limits, n_questions=self.n_questions, n_answered=self.n_answered,
            n_resumed=self.n_prior, batches=tuple(self.batches), init_s=self.init_s,
            startup_s=None if self.ready_at is None else self.ready_at - started, wall_s=ended - started,
            prior_elapsed_s=self.prior_elapsed,
            projected_s=self.elapsed(ended) if verdict.ok else self.projected(ended),
            peak_rss_bytes=peak_rss or None, gpus=gpus, notes=tuple(notes) + tuple(self.notes),
            traceback=self.traceback, answers_cut=self.answers_cut, model_info=self.model_info,
        )
