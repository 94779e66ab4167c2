"""What the harness is asked to run and what it reports back: frozen dataclasses only.

``ModelSpec`` (which model), ``HarnessOptions`` (how to supervise it), ``Progress`` (sent while it runs),
``BatchRecord`` and ``GpuUsage`` (what was measured) and ``RunOutcome`` (how the run ended). The
container contract (``grading.container_contract``) serialises ``RunOutcome``; nothing here imports more than
the standard library and the verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import verdict as verdicts

if TYPE_CHECKING:  # the model's process imports this module: no YAML parser for a type hint
    from .profiles import Limits


@dataclass(frozen=True)
class BatchRecord:
    index: int
    rows: tuple[int, ...]
    is_multiple_choice: bool
    latency_s: float


@dataclass(frozen=True)
class ModelSpec:
    """Which model to build and how: 'module:Class' (None: models.user_config:UserModel), the folder
    its module path is relative to, the seed (SHOPBENCH_SEED) and extra environment variables."""

    model: str | None = None
    repo: str = "."
    seed: int = 0
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HarnessOptions:
    resume: bool = False  # continue predictions.jsonl after its last complete batch
    poll_s: float = 0.2  # how often RAM and GPU memory are sampled
    kill_grace_s: float = 3.0  # SIGTERM (the model's close() runs), then SIGKILL after this long
    exit_wait_s: float = 10.0  # how long a model that answered everything may take to exit
    fsync_every_s: float = 1.0  # every batch is flushed; fsynced at most this often
    full_traceback: bool = False  # show the kit's frames too in the model's tracebacks (--verbose)


DEFAULT_OPTIONS = HarnessOptions()


@dataclass(frozen=True)
class Progress:
    answered: int
    total: int
    elapsed_s: float
    projected_s: float | None  # projected wall time of the whole run at the current rate
    budget_s: float | None


@dataclass(frozen=True)
class GpuUsage:
    index: int
    name: str
    peak_bytes: int | None  # this process's own memory as NVML reports it
    torch_peak_bytes: int | None  # torch.cuda.max_memory_reserved
    cap_bytes: int | None
    # what peak_bytes counts: 'process' (the model's), 'device' (the whole card); None: unknown
    measured: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    verdict: verdicts.Verdict
    limits: Limits
    n_questions: int
    n_answered: int  # including the rows of a resumed run
    n_resumed: int
    batches: tuple[BatchRecord, ...]  # this session's
    init_s: float | None  # building the model (its constructor and the import of its module)
    wall_s: float  # this session, from starting the process to its end
    prior_elapsed_s: float  # a resumed run's earlier sessions
    projected_s: float | None
    peak_rss_bytes: int | None
    gpus: tuple[GpuUsage, ...]
    notes: tuple[str, ...]
    traceback: str | None = None
    startup_s: float | None = None  # from starting the process to the model being ready (includes init_s)
    answers_cut: int = 0  # answers longer than batches.ANSWER_CAP_CHARS, cut before they left the model
    model_info: dict | None = None  # what the model said about its run: its run_info(), if it has one

    @property
    def elapsed_s(self) -> float:
        return self.prior_elapsed_s + self.wall_s
