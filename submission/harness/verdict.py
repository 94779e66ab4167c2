"""How a run ended: one status from a fixed set, and a sentence saying what happened.

=============  ==============================================================================
status         meaning
=============  ==============================================================================
ok             every question answered within the limits
timeout        a batch took longer than seconds_per_sample x its size, or the track budget ran out
gpu_memory     the process used more GPU memory than the profile's per-card cap (or CUDA OOM)
memory         the process used more RAM than the profile allows (MemoryError or the RSS watchdog)
model_error    the model's constructor or batch_predict raised
bad_output     wrong number of responses, a non-string response, get_batch_size() outside 1..16
crashed        the model's process died (exit code or signal) without saying why, or the kit's
               process between it and the judge was killed
disk           the model wrote more than its scratch space or the output folder allow
unsupported    the model uses what the profile's card lacks (bfloat16 weights on a T4)
protocol       the model's side broke the channel's protocol: a line over the cap, a malformed,
               unexpected, duplicated or out-of-order message (``protocol.py``)
interrupted    the grader itself was stopped (SIGTERM, SIGINT or SIGHUP to ``docker run`` or ``grade``)
=============  ==============================================================================
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

STATUSES = ("ok", "timeout", "gpu_memory", "memory", "model_error", "bad_output", "crashed", "disk", "unsupported",
            "protocol", "interrupted")


@dataclass(frozen=True)
class Verdict:
    status: str
    detail: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status '{self.status}'; known: {', '.join(STATUSES)}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}"


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 1024**3:.2f} GiB"


def ok(n_questions: int, limits_enforced: bool = True) -> Verdict:
    """Every question answered ("within the limits" only when limits were enforced: not with --no-limits)."""
    within = " within the limits" if limits_enforced else " (no limits enforced)"
    return Verdict("ok", f"{n_questions:,} {'question' if n_questions == 1 else 'questions'} answered{within}")


def batch_timeout(index: int, n_prompts: int, took_s: float, limit_s: float, stopped: bool) -> Verdict:
    took = f"was stopped after {took_s:.1f} s" if stopped else f"took {took_s:.1f} s"
    return Verdict("timeout", f"batch {index} ({n_prompts} prompt{'s' * (n_prompts != 1)}) {took}, limit {limit_s:g} s")


def budget_timeout(budget_s: float, answered: int, total: int) -> Verdict:
    return Verdict("timeout", f"track budget {budget_s / 60:g} min exhausted after {answered:,} of {total:,} questions")


def gpu_memory(device: int, name: str, peak_bytes: int, cap_bytes: int, scope: str = "process") -> Verdict:
    whose = "of the whole card (measured at device level)" if scope == "device" else "of this process"
    return Verdict("gpu_memory", f"GPU {device} ({name}): peak {gib(peak_bytes)} {whose}, cap {gib(cap_bytes)}")


def ram(peak_bytes: int, limit_bytes: int, how: str) -> Verdict:
    return Verdict("memory", f"{how}: peak RSS {gib(peak_bytes)}, limit {limit_bytes / 1e9:g} GB ({gib(limit_bytes)})")


def died(returncode: int, when: str) -> Verdict:
    """The child ended without a message: by a signal (negative return code) or by exiting."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (the kernel's out-of-memory killer sends SIGKILL)" if name == "SIGKILL" else ""
        return Verdict("crashed", f"the model's process was killed by {name}{hint} {when}")
    return Verdict("crashed", f"the model's process exited with code {returncode} {when}")


def disk(what: str, path: str, used_bytes: int, cap_bytes: int) -> Verdict:
    """``what`` (the model's scratch space, the output folder) over its cap: the path and the sizes."""
    return Verdict("disk", f"{what} {path} holds {used_bytes / 1e6:,.1f} MB, cap {cap_bytes / 1e6:,.1f} MB")
