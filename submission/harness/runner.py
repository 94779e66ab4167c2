"""The grader-faithful harness: ``run_model`` runs a model on questions under a profile's limits.

Used by the evaluation pipeline (``evaluate.HarnessRunner``: local_evaluation.py, fine-tuning's evaluation),
and ``check``: the model runs in its own process (``child.py``, a loop that only answers) under the limits
(per-batch deadline, track budget, RAM, GPU count and memory); this process is the judge (``judge.py``): it
sends each batch, owns the clocks, checks every answer, appends each batch's answers to predictions.jsonl
(``predictions.py``) and names how the run ended (``verdict.py``). The process tree is ``session.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..scoring.data import Question
from . import verdict as verdicts
from .batches import grader_order
from .limits import load_nvml
from .outcome import DEFAULT_OPTIONS, HarnessOptions, ModelSpec, Progress, RunOutcome
from .output_dir import locked
from .predictions import PREDICTIONS_FILE, PredictionWriter, ResumeState, prepare_resume, read_records
from .profiles import UNLIMITED, Limits
from .session import Session, Work


@dataclass(frozen=True)
class JudgedRun:
    """A run as the judge recorded it: how it ended, and every answer it kept (the resumed ones first),
    as written to predictions.jsonl."""

    outcome: RunOutcome
    records: tuple[dict[str, Any], ...]


def run_model(
    spec: ModelSpec,
    questions: Sequence[Question],
    out_dir: str | Path,
    limits: Limits = UNLIMITED,
    options: HarnessOptions = DEFAULT_OPTIONS,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunOutcome:
    """Run the model on ``questions`` (test format is enough) in a child process under ``limits``.

    Answers are appended to ``out_dir``/predictions.jsonl batch by batch (and put back there if the model
    removes the file). Returns how the run ended; raises ConfigError when the model cannot be found (a
    bad spec, not a model failure) or when another run holds ``out_dir``.
    """
    return run_judged(spec, questions, out_dir, limits, options, on_progress).outcome


def run_judged(spec: ModelSpec, questions: Sequence[Question], out_dir: str | Path, limits: Limits = UNLIMITED,
               options: HarnessOptions = DEFAULT_OPTIONS,
               on_progress: Callable[[Progress], None] | None = None) -> JudgedRun:
    """``run_model``, with the answers as the judge kept them (what results.json is computed from)."""
    with locked(out_dir) as folder:
        path = folder / PREDICTIONS_FILE
        state = prepare_resume(path) if options.resume else ResumeState()
        _check_resumable(state, questions, path)
        prior = tuple(read_records(path)) if state.rows else ()
        todo = [q for q in grader_order(questions) if q.row not in state.rows]
        work = Work(tuple(todo), state, len(questions), load_nvml() if limits.gpus != 0 else None)
        session = Session(spec, limits, options, work, on_progress)
        with PredictionWriter(path, append=options.resume, fsync_every_s=options.fsync_every_s) as writer:
            if not todo:
                return JudgedRun(session.outcome(verdicts.ok(len(questions), limits.enforced)), prior)
            session.start(writer)
            verdict = None
            try:
                verdict = session.supervise()
            finally:
                session.stop(verdict)
    if verdict.ok and not limits.enforced:  # nothing was enforced: the verdict does not say "within the limits"
        verdict = verdicts.ok(len(questions), False)
    assert session.judge is not None, "session.start() made the judge"
    return JudgedRun(session.outcome(verdict), prior + tuple(session.judge.records))


def _check_resumable(state: ResumeState, questions: Sequence[Question], path: Path) -> None:
    unknown = state.rows - {q.row for q in questions}
    if unknown:
        raise DataError(f"{path}: row {min(unknown)} is not a question of this data; resume with the same "
                        "--data and --limit as the interrupted run")
