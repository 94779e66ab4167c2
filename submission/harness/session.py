"""Supervising one model process: its channel, deadlines, resources, predictions and verdict.

``Session`` starts the model's process tree (``process.ModelProcess``: a reaper and the model's process
below it), reads its messages, enforces the per-batch deadline and the track budget, polls RAM and GPU
memory over every process of the model (``limits.ResourceMonitor``), appends each answered batch to
predictions.jsonl and decides the ``Verdict``. ``runner.run_model`` is the only caller.
"""

from __future__ import annotations

import os
import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..environment import KIT_ROOT, PROFILE, SEED
from ..errors import ConfigError
from ..scoring.data import Question
from . import verdict as verdicts
from .caches import cache_environment
from .disk import DiskWatch, remove_scratch, scratch_folder
from .gpu import gpu_env
from .limits import ResourceMonitor, plan_gpus
from .outcome import (
    BatchRecord,
    GpuUsage,
    HarnessOptions,
    ModelSpec,
    Progress,
    RunOutcome,
)
from .predictions import PredictionWriter, ResumeState
from .process import ModelProcess
from .profiles import Limits


@dataclass(frozen=True)
class Work:
    todo: tuple[Question, ...]  # in grader order, without the rows a resumed run already answered
    state: ResumeState
    n_questions: int
    nvml: object  # the initialised pynvml module, or None


TRANSFER_LIMIT_S = 60.0  # at least this long for answers to reach the harness once batch_predict returned


class Session:
    """One child process and its supervision: deadlines, resources, predictions, the verdict."""

    def __init__(self, spec: ModelSpec, limits: Limits, options: HarnessOptions, work: Work, on_progress):
        self.spec, self.limits, self.options, self.on_progress = spec, limits, options, on_progress
        self.todo, self.state, self.n_questions = work.todo, work.state, work.n_questions
        self.plan = plan_gpus(limits.gpus, work.nvml)
        self.monitor = ResourceMonitor(limits.ram_bytes, limits.gpu_memory_bytes, self.plan, work.nvml)
        self.notes: list[str] = list(self.plan.notes)
        self.batches: list[BatchRecord] = []
        self.answered = 0
        self.current: tuple[int, int, int, float] | None = None  # batch, offset, n, parent's start time
        self.answered_at: float | None = None  # when batch_predict returned for the current batch
        self.answers_cut = 0
        self.model_info: dict | None = None  # the model's run_info()
        self.init_s = self.ready_at = self.traceback = None
        self.torch_peaks: dict[int, int] = {}
        self.child_rss = 0
        self.ended = False
        self.process: ModelProcess | None = None
        self.scratch: Path | None = None  # the model's TMPDIR, removed when the run ends
        self.disk: DiskWatch | None = None
        self.started = time.monotonic()

    # ------------------------------------------------------------ starting and stopping

    def start(self, writer: PredictionWriter) -> None:
        self.writer = writer
        self.scratch = scratch_folder()
        self.disk = DiskWatch(self.scratch, self.limits.disk_bytes, writer.path.parent, self.limits.output_bytes)
        self.started = self.next_poll = time.monotonic()
        self.process = ModelProcess(self._job(), self._env(), Path(self.spec.repo).resolve(), self.scratch)
        self.process.start()

    def _job(self) -> dict:
        return {
            "model": self.spec.model, "repo": str(Path(self.spec.repo).resolve()), "seed": self.spec.seed,
            "sys_path": [p for p in sys.path if p], "first_batch": self.state.next_batch,
            "full_traceback": self.options.full_traceback, "fsize_bytes": self.limits.disk_bytes,
            "prompts": [q.prompt for q in self.todo], "mc": [q.is_multiple_choice for q in self.todo],
            "ram_bytes": self.limits.ram_bytes, "rlimit_as": not _gpu_host(self.plan),
            "vcpus": self.limits.vcpus, "gpu_memory_bytes": self.limits.gpu_memory_bytes,
            "gpu_uuids": [d.uuid for d in self.plan.devices],
        }

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(KIT_ROOT), env.get("PYTHONPATH")) if p)
        env[SEED] = str(self.spec.seed)
        env[PROFILE] = self.limits.profile
        env["TMPDIR"] = env["TMP"] = env["TEMP"] = str(self.scratch)
        for name, value in gpu_env(self.limits, self.plan, env).items():  # devices, the card's rules, torch's cap
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        env.update(cache_environment(self.limits.disk_bytes, self.scratch))  # Triton, HF, vLLM... caches in the scratch
        env.update(self.spec.env)
        return env

    def stop(self) -> None:
        """End the model's processes: at once if it failed, after exit_wait_s if it finished; SIGTERM, then
        SIGKILL to everything it started."""
        if self.process is not None:
            self.process.stop(self.ended, self.options.exit_wait_s, self.options.kill_grace_s)
        freed = self.disk.remove_output_over_cap() if self.disk is not None else 0
        if freed:
            self.notes.append(f"removed the {freed / 1e6:,.1f} MB the model wrote into the output folder")
        remove_scratch(self.scratch)

    # ------------------------------------------------------------ supervising

    def elapsed(self, now: float) -> float:
        return self.state.elapsed_s + (now - self.started)

    def supervise(self) -> verdicts.Verdict:
        process = self.process
        while True:
            now = time.monotonic()
            ready = select.select(process.fds, [], [], self._wakeup(now) - now)[0]
            if process.reports.fd in ready:
                process.read_reports()
            if process.data.fd in ready or process.exited:  # an ended process: read what it sent first
                for message in process.data.read():
                    verdict = self._handle(message)
                    if verdict is not None:
                        return verdict
            if process.exited:
                return self._died()
            if process.data.eof and not process.wait_exit(self.options.exit_wait_s):
                return verdicts.Verdict("crashed", "the model's process closed its channel to the harness but did "
                                        "not exit; do not close inherited file descriptors")
            verdict = self._check(time.monotonic())
            if verdict is not None:
                return verdict

    def _batch_clock(self) -> tuple[float, float] | None:
        """(start, limit) of the running batch's deadline; None once batch_predict has returned (sending
        the answers does not count against the model) or when no deadline applies."""
        if self.current is None or self.limits.seconds_per_sample is None:
            return None
        if self.answered_at is not None:
            return self.answered_at, max(TRANSFER_LIMIT_S, self.limits.batch_limit_s(self.current[2]))
        return self.current[3], self.limits.batch_limit_s(self.current[2])

    def _wakeup(self, now: float) -> float:
        times = [self.next_poll]
        if self.limits.budget_s is not None:
            times.append(self.started + self.limits.budget_s - self.state.elapsed_s)
        clock = self._batch_clock()
        if clock is not None:
            times.append(sum(clock))
        return max(now, min(times))

    def _check(self, now: float) -> verdicts.Verdict | None:
        if now >= self.next_poll:
            self.next_poll = now + self.options.poll_s
            exceeded = self.monitor.poll(self.process.model_pids())
            if exceeded is not None:
                return self._exceeded(exceeded)
        verdict = self.disk.check(now)
        if verdict is not None:
            return verdict
        clock = self._batch_clock()
        if clock is not None and now - clock[0] > clock[1]:
            index, _, n, _ = self.current
            if self.answered_at is not None:
                return verdicts.Verdict("crashed", f"batch {index} was answered, but its answers took over "
                                        f"{clock[1]:g} s to reach the harness")
            return verdicts.batch_timeout(index, n, now - clock[0], clock[1], stopped=True)
        if self.limits.budget_s is not None and self.elapsed(now) > self.limits.budget_s:
            return verdicts.budget_timeout(self.limits.budget_s, self.n_answered, self.n_questions)
        return None

    def _exceeded(self, exceeded) -> verdicts.Verdict:
        if exceeded.kind == "memory":
            return verdicts.ram(exceeded.used_bytes, exceeded.limit_bytes, "the RSS watchdog stopped the model")
        device = exceeded.device
        return verdicts.gpu_memory(device.index, device.name, exceeded.used_bytes, exceeded.limit_bytes,
                                   exceeded.scope)

    @property
    def n_answered(self) -> int:
        return len(self.state.rows) + self.answered

    def _handle(self, message: dict) -> verdicts.Verdict | None:
        kind = message["t"]
        if kind == "done":
            return self._done(message)
        if kind == "answered":
            self.answered_at = time.monotonic()
        elif kind == "info":
            self.model_info = message["info"] if isinstance(message.get("info"), dict) else None
        elif kind == "start":
            self.current = (message["b"], message["i"], message["n"], time.monotonic())
            self.answered_at = None
        elif kind == "ready":
            self.ready_at, self.init_s = time.monotonic(), message["init_s"]
            self.notes.extend(message["notes"])
        elif kind == "error":
            self.traceback = message.get("traceback")
            return self._error(message)
        elif kind == "end":
            self.ended = True
            if self.n_answered != self.n_questions:
                return verdicts.Verdict("bad_output", f"the model's process said it was done with "
                                        f"{self.n_questions - self.n_answered:,} of {self.n_questions:,} questions "
                                        "unanswered")
            exceeded = self.monitor.poll(self.process.model_pids())  # memory and disk after the last batch
            if exceeded is not None:
                return self._exceeded(exceeded)
            return self.disk.check(force=True) or verdicts.ok(self.n_questions)
        return None

    def _error(self, message: dict) -> verdicts.Verdict:
        if message["status"] == "config_error":
            raise ConfigError(message["detail"])
        if message["status"] == "memory" and self.limits.ram_bytes is not None:
            peak = max(self.child_rss, self.monitor.peak_rss)
            detail = f"{message['detail']}; the profile's RAM limit is {self.limits.ram_bytes / 1e9:g} GB"
            return verdicts.Verdict("memory", f"{detail} (an allocation was refused; peak RSS {verdicts.gib(peak)})")
        if message["status"] == "gpu_memory":
            return self._gpu_error(message)
        if message["status"] == "disk" and self.limits.disk_bytes is not None:
            return verdicts.Verdict("disk", f"{message['detail']}; the scratch cap is "
                                    f"{self.limits.disk_bytes / 1e6:,.1f} MB per file and in all (the model's "
                                    f"scratch space: TMPDIR={self.scratch}; in the grader's container, /tmp and "
                                    "~/.cache)")
        return verdicts.Verdict(message["status"], message["detail"])

    def _gpu_error(self, message: dict) -> verdicts.Verdict:
        """GPU memory ran out in the model: name the card its error names (else the one with the highest
        peak), the peak and the cap."""
        self._note_usage(message)
        peaks = {i: max(self.torch_peaks.get(i, 0), self.monitor.gpu_peaks.get(i, 0)) for i in
                 set(self.torch_peaks) | set(self.monitor.gpu_peaks)}
        cap, device = self.limits.gpu_memory_bytes, message.get("device")
        if device is None and peaks:
            device = max(peaks, key=peaks.get)
        if device is None or cap is None:
            return verdicts.Verdict("gpu_memory", message["detail"])
        name = {d.index: d.name for d in self.plan.devices}.get(device, f"cuda:{device}")
        if not peaks.get(device):
            return verdicts.Verdict("gpu_memory", f"GPU {device} ({name}) ran out of memory, cap "
                                                  f"{verdicts.gib(cap)}; {message['detail']}")
        verdict = verdicts.gpu_memory(device, name, peaks[device], cap)
        return verdicts.Verdict("gpu_memory", f"{verdict.detail}; {message['detail']}")

    def _done(self, message: dict) -> verdicts.Verdict | None:
        now = time.monotonic()
        index, offset, n, _ = self.current
        latency = message["lat"]
        limit = self.limits.batch_limit_s(n)
        if limit is not None and latency > limit:
            return verdicts.batch_timeout(index, n, latency, limit, stopped=False)
        if self.limits.budget_s is not None and self.elapsed(now) > self.limits.budget_s:
            return verdicts.budget_timeout(self.limits.budget_s, self.n_answered, self.n_questions)
        batch, outputs = self.todo[offset:offset + n], message["out"]
        if len(outputs) != n or not all(isinstance(out, str) for out in outputs):
            return verdicts.Verdict("bad_output", f"batch {index}: the model's process sent {len(outputs)} "
                                    f"answers for {n} prompts, or an answer that is not a string")
        elapsed = round(self.elapsed(now), 3)
        self.writer.write_batch(
            {"row": q.row, "output": out, "batch": index, "batch_size": n, "latency_s": round(latency, 6),
             "elapsed_s": elapsed} for q, out in zip(batch, outputs)
        )
        self.answers_cut += message.get("cut", 0)
        self.batches.append(BatchRecord(index, tuple(q.row for q in batch), batch[0].is_multiple_choice, latency))
        self.answered += n
        self.current = None
        self._note_usage(message)
        if self.on_progress is not None:
            self.on_progress(Progress(self.n_answered, self.n_questions, self.elapsed(now),
                                      self.projected(now), self.limits.budget_s))
        return None

    def _note_usage(self, message: dict) -> None:
        self.child_rss = max(self.child_rss, message.get("rss") or 0)
        for i, peak in enumerate(message.get("gpu") or []):
            self.torch_peaks[i] = max(self.torch_peaks.get(i, 0), peak)

    def projected(self, now: float) -> float | None:
        """Elapsed time plus the questions left at this session's answering rate so far."""
        if not self.answered or self.ready_at is None:
            return None
        rate = (now - self.ready_at) / self.answered
        return self.elapsed(now) + rate * (self.n_questions - self.n_answered)

    def _died(self) -> verdicts.Verdict:
        """The model's process ended without 'end' or 'error' (even while a worker of it holds the channel)."""
        code = self.process.exit_code
        if code is None:
            detail = self.process.error or "the harness lost the model's process (its reaper ended)"
            return verdicts.Verdict("crashed", detail)
        if self.current is not None:
            when = f"during batch {self.current[0]} ({self.current[2]} prompts)"
        elif self.ready_at is None:
            when = "while the model was being built"
        else:
            when = f"after {self.n_answered:,} of {self.n_questions:,} questions, between batches"
        peak = max(self.child_rss, self.monitor.peak_rss)
        limit = self.limits.ram_bytes
        if code < 0 and limit is not None and peak >= 0.9 * limit:
            return verdicts.ram(peak, limit, f"the model's process died (signal {-code}) at its RAM limit {when}")
        return verdicts.died(code, when)

    # ------------------------------------------------------------ the outcome

    def outcome(self, verdict: verdicts.Verdict) -> RunOutcome:
        now = time.monotonic()
        return RunOutcome(
            verdict=verdict, limits=self.limits, n_questions=self.n_questions, n_answered=self.n_answered,
            n_resumed=len(self.state.rows), batches=tuple(self.batches), init_s=self.init_s,
            startup_s=None if self.ready_at is None else self.ready_at - self.started,
            wall_s=now - self.started if self.process is not None else 0.0, prior_elapsed_s=self.state.elapsed_s,
            projected_s=self.elapsed(now) if verdict.ok else self.projected(now),
            peak_rss_bytes=max(self.child_rss, self.monitor.peak_rss) or None, gpus=self._gpu_usage(),
            notes=tuple(self.notes + self.monitor.notes()), traceback=self.traceback, answers_cut=self.answers_cut,
            model_info=self.model_info,
        )

    def _gpu_usage(self) -> tuple[GpuUsage, ...]:
        cap = self.limits.gpu_memory_bytes
        if self.plan.devices:
            return tuple(GpuUsage(d.index, d.name, self.monitor.gpu_peak(d.index)[0], self.torch_peaks.get(d.index),
                                  cap, self.monitor.gpu_peak(d.index)[1]) for d in self.plan.devices)
        return tuple(GpuUsage(i, f"cuda:{i}", None, peak, cap) for i, peak in sorted(self.torch_peaks.items()))


def _gpu_host(plan) -> bool:
    """Whether a GPU may be in use: then RLIMIT_AS is not set (CUDA reserves huge address ranges)."""
    return bool(plan.devices) or (plan.cuda_visible_devices != "" and os.path.exists("/dev/nvidiactl"))
