"""A local run: the supervisor is the judge, the model's loop runs in a process tree below it.

``Session`` starts the model's process tree (``process.ModelProcess``: a reaper and the model's loop below
it), gives the judge (``judge.Judge``) its transport over the pipes, polls RAM and GPU memory over every
process of the model (``limits.ResourceMonitor``) and the model's disk (``disk.DiskWatch``), and ends the
tree. ``runner.run_model`` is the only caller.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..environment import KIT_ROOT, PROFILE, SEED
from ..scoring.data import Question
from . import verdict as verdicts
from .caches import cache_environment
from .disk import DiskWatch, remove_scratch, scratch_folder
from .failures import Measured
from .gpu import GpuPlan, gpu_env
from .judge import Judge
from .limits import Exceeded, ResourceMonitor, plan_gpus
from .outcome import GpuUsage, HarnessOptions, ModelSpec, Progress, RunOutcome
from .predictions import PredictionWriter, ResumeState
from .process import ModelProcess
from .profiles import Limits


@dataclass(frozen=True)
class Work:
    todo: tuple[Question, ...]  # in grader order, without the rows a resumed run already answered
    state: ResumeState
    n_questions: int
    nvml: object  # the initialised pynvml module, or None


class Session:
    """One model process tree, the judge's transport to it, its resources; see the module docstring."""

    def __init__(self, spec: ModelSpec, limits: Limits, options: HarnessOptions, work: Work,
                 on_progress: Callable[[Progress], None] | None) -> None:
        self.spec, self.limits, self.options, self.on_progress = spec, limits, options, on_progress
        self.work = work
        self.plan = plan_gpus(limits.gpus, work.nvml)
        self.monitor = ResourceMonitor(limits.ram_bytes, limits.gpu_memory_bytes, self.plan, work.nvml)
        self.notes: list[str] = list(self.plan.notes)
        self.process: ModelProcess | None = None
        self.judge: Judge | None = None
        self.scratch: Path | None = None  # the model's TMPDIR, removed when the run ends
        self.disk: DiskWatch | None = None
        self.started = self.next_poll = time.monotonic()
        self.ended: float | None = None

    # ------------------------------------------------------------ starting and stopping

    def start(self, writer: PredictionWriter) -> None:
        self.scratch = scratch_folder()
        self.disk = DiskWatch(self.scratch, self.limits.disk_bytes, writer.path.parent, self.limits.output_bytes)
        self.started = self.next_poll = time.monotonic()
        self.process = ModelProcess(self._env(), Path(self.spec.repo).resolve(), self.scratch)
        self.process.start()
        state = self.work.state
        self.judge = Judge(self, self._job(), self.work.todo, self.limits, writer, self.on_progress,
                           state.next_batch, (len(state.rows), state.elapsed_s), self.options.exit_wait_s)

    def _job(self) -> dict[str, Any]:
        return {
            "model": self.spec.model, "repo": str(Path(self.spec.repo).resolve()), "seed": self.spec.seed,
            "sys_path": [p for p in sys.path if p], "full_traceback": self.options.full_traceback,
            "fsize_bytes": self.limits.disk_bytes, "ram_bytes": self.limits.ram_bytes,
            "rlimit_as": not _gpu_host(self.plan), "vcpus": self.limits.vcpus,
            "gpu_memory_bytes": self.limits.gpu_memory_bytes, "gpu_uuids": [d.uuid for d in self.plan.devices],
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

    def supervise(self) -> verdicts.Verdict:
        if self.judge is None:
            raise RuntimeError("Session.supervise() before Session.start()")
        verdict = self.judge.run()
        self.ended = time.monotonic()
        return verdict

    def stop(self, verdict: verdicts.Verdict | None = None) -> None:
        """End the model's processes: at once if it failed, after exit_wait_s if it finished; SIGTERM, then
        SIGKILL to everything it started, re-parented orphans included."""
        if self.ended is None:
            self.ended = time.monotonic()
        if self.process is not None:
            finished = verdict is not None and verdict.ok
            self.process.stop(finished, self.options.exit_wait_s, self.options.kill_grace_s)
            if self.process.orphans_killed:
                self.notes.append(f"killed {self.process.orphans_killed} process(es) of the model left running after "
                                  "the kit's reaper was killed")
        freed = self.disk.remove_output_over_cap() if self.disk is not None else 0
        if freed:
            self.notes.append(f"removed the {freed / 1e6:,.1f} MB the model wrote into the output folder")
        remove_scratch(self.scratch)

    # ------------------------------------------------------------ the judge's transport (judge.Transport)
    # The judge calls its transport only from Judge.run, after start() set the process, the disk watch and the judge.

    @property
    def _running(self) -> ModelProcess:
        assert self.process is not None, "the transport is used only after start()"
        return self.process

    @property
    def _disk(self) -> DiskWatch:
        assert self.disk is not None, "the transport is used only after start()"
        return self.disk

    @property
    def _judge(self) -> Judge:
        assert self.judge is not None, "the transport is used only after start()"
        return self.judge

    def fds(self) -> list[int]:
        return self._running.fds

    def read(self, fd: int) -> bytes | None:
        process = self._running
        if fd == process.reports:
            process.read_reports()
            return b""
        return process.read_data()

    def write_fd(self) -> int | None:
        return self._running.to_model

    def write(self, data: memoryview) -> int:
        return self._running.write(data)

    @property
    def exited(self) -> bool:
        return self._running.exited

    def drain(self) -> bytes:
        return self._running.drain()

    def wait_exit(self, timeout: float) -> bool:
        return self._running.wait_exit(timeout)

    def next_check(self) -> float:
        return min(self.next_poll, self._disk.next_at)

    def check(self, now: float, final: bool = False) -> verdicts.Verdict | None:
        if final or now >= self.next_poll:
            self.next_poll = now + self.options.poll_s
            exceeded = self.monitor.poll(self._running.model_pids())
            if exceeded is not None:
                return self._exceeded(exceeded)
        return self._disk.check(now, force=final)

    def _exceeded(self, exceeded: Exceeded) -> verdicts.Verdict:
        if exceeded.kind == "memory":
            return verdicts.ram(exceeded.used_bytes, exceeded.limit_bytes, "the RSS watchdog stopped the model")
        device = exceeded.device
        assert device is not None, "ResourceMonitor names the device of every GPU memory excess"
        return verdicts.gpu_memory(device.index, device.name, exceeded.used_bytes, exceeded.limit_bytes,
                                   exceeded.scope)

    def measured(self) -> Measured:
        return Measured(self.monitor.peak_rss, self.monitor.gpu_peaks, {d.index: d.name for d in self.plan.devices},
                        f"TMPDIR={self.scratch}; in the grader's container, /tmp and ~/.cache")

    def died(self, when: str) -> verdicts.Verdict:
        """The model's process ended without an error message (even while a worker of it holds the channel)."""
        process = self._running
        if process.exit_code is None:
            detail = process.error or ("the kit's reaper (the model's parent process) was killed before the model's "
                                       f"process ended, {when}; the model's processes were stopped")
            return verdicts.Verdict("crashed", detail)
        peak = max(self._judge.child_rss, self.monitor.peak_rss)
        limit = self.limits.ram_bytes
        if process.exit_code < 0 and limit is not None and peak >= 0.9 * limit:
            return verdicts.ram(peak, limit, f"the model's process died (signal {-process.exit_code}) at its RAM limit "
                                f"{when}")
        return verdicts.died(process.exit_code, when)

    # ------------------------------------------------------------ the outcome

    def outcome(self, verdict: verdicts.Verdict) -> RunOutcome:
        """How the run ended; a run with nothing left to ask (a finished run resumed) never started a judge."""
        notes = self.notes + self.monitor.notes()
        if self.judge is None:
            state = self.work.state
            return RunOutcome(verdict=verdict, limits=self.limits, n_questions=self.work.n_questions,
                              n_answered=len(state.rows), n_resumed=len(state.rows), batches=(), init_s=None,
                              wall_s=0.0, prior_elapsed_s=state.elapsed_s, projected_s=state.elapsed_s,
                              peak_rss_bytes=None, gpus=self._gpu_usage(), notes=tuple(notes))
        peak = max(self.judge.child_rss, self.monitor.peak_rss)
        return self.judge.outcome(verdict, self.ended or time.monotonic(), peak, self._gpu_usage(), notes)

    def _gpu_usage(self) -> tuple[GpuUsage, ...]:
        cap = self.limits.gpu_memory_bytes
        torch_peaks = self.judge.torch_peaks if self.judge is not None else {}
        if self.plan.devices:
            return tuple(GpuUsage(d.index, d.name, self.monitor.gpu_peak(d.index)[0], torch_peaks.get(d.index),
                                  cap, self.monitor.gpu_peak(d.index)[1]) for d in self.plan.devices)
        return tuple(GpuUsage(i, f"cuda:{i}", None, peak, cap) for i, peak in sorted(torch_peaks.items()))


def _gpu_host(plan: GpuPlan) -> bool:
    """Whether a GPU may be in use: then RLIMIT_AS is not set (CUDA reserves huge address ranges)."""
    return bool(plan.devices) or (plan.cuda_visible_devices != "" and os.path.exists("/dev/nvidiactl"))
