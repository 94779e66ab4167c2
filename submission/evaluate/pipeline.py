"""The one evaluation pipeline: questions -> a model run -> scores -> a run folder.

``evaluate(evaluation, runner)`` is what ``local_evaluation.py``, the grader (``grading.grader``) and
fine-tuning's evaluation (``training.evaluation``) all do:

    1. check that scoring can run (metrics known, embedding models present), before any model runs;
    2. run the model through ``runner``, which writes predictions.jsonl into the run folder;
    3. take the answers the runner's judge kept (or read predictions back), at the trust boundary (a row that
       was not asked breaks the format);
    4. let the runner judge how the run ended, given what its predictions hold (``ModelRun.judge``);
    5. score what was answered, on this side of the boundary (the answers never reach the model);
    6. gather the run's metadata and write the run folder (``reports.write_run_folder``).

A runner is any callable ``(questions, out_dir) -> ModelRun``. ``HarnessRunner`` runs the model in a
child process of this one under the profile's limits (``harness.run_model``); the grader's runs the
submission's image and decides the verdict on the host (``grading.grader.ContainerRunner``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .. import environment
from ..environment import KIT_ROOT
from ..errors import DataError
from ..fileio import describe, refuse_non_regular
from ..harness.outcome import HarnessOptions, ModelSpec, Progress, RunOutcome
from ..harness.output_dir import locked
from ..harness.predictions import PREDICTIONS_FILE, answered_and_outputs, outputs_for, read_records
from ..harness.profiles import Limits, Profile
from ..harness.runner import run_judged
from ..reports.reuse import RUN_FOLDER_FILES
from ..reports.run_folder import base_meta, write_run_folder
from ..reports.runstats import run_meta
from ..scoring.data import Question
from ..scoring.scorer import RunResult, ScoringConfig, check_scoring_ready, score_outputs

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class Evaluation:
    """What to evaluate: the questions with their answers (kept on this side), and how to record it."""

    questions: tuple[Question, ...]
    data_path: Path  # results.json's data_file
    out_dir: Path
    model: str | None = None  # as results.json records it (None: the default UserModel)
    seed: int = 0
    profile: Profile | None = None  # the profile whose limits the run had, for results.json
    scoring: ScoringConfig = ScoringConfig()
    limit: int | None = None  # --limit, as results.json records it
    predictions: Path | None = None  # score this saved predictions.jsonl instead of running a model
    meta: Mapping[str, Any] = field(default_factory=dict)  # more results.json fields (a --sample's rows)


@dataclass(frozen=True)
class Answers:
    """What a run's predictions.jsonl holds for the questions asked, read at the trust boundary."""

    questions: tuple[Question, ...] = ()  # the answered questions, in the data's order
    outputs: Mapping[int, str] = field(default_factory=dict)  # row -> output
    records: tuple[dict[str, Any], ...] = ()
    problem: DataError | None = None  # the file broke the format: nothing in it is scored


@dataclass(frozen=True)
class ModelRun:
    """What a runner hands back: where the predictions are and how to judge the run's ending."""

    predictions: Path
    judge: Callable[[Answers], RunOutcome]  # the runner's verdict, given what the predictions hold
    meta: Mapping[str, Any] = field(default_factory=dict)  # results.json fields of the runner's own (docker)
    record: Any = None  # the runner's account of the run (the grader's ContainerRun)
    records: tuple[dict[str, Any], ...] | None = None  # the answers as the runner's judge kept them: scored
    # instead of reading ``predictions`` back (a file the model's processes could reach while they ran)


class Runner(Protocol):
    def __call__(self, questions: Sequence[Question], out_dir: Path) -> ModelRun: ...


@dataclass(frozen=True)
class Evaluated:
    """One evaluation's result: how the model's run ended, what it answered, the scores, results.json."""

    outcome: RunOutcome | None  # None: saved predictions scored without a model
    answers: Answers
    result: RunResult | None  # None when nothing was answered
    results: dict[str, Any]  # results.json as written
    run: ModelRun | None

    @property
    def n_answered(self) -> int:
        return len(self.answers.questions)

    @property
    def ok(self) -> bool:
        return self.outcome is None or self.outcome.verdict.ok


def read_answers(path: Path, questions: Sequence[Question]) -> Answers:
    """The questions a model run answered (none when it wrote no file). A file that names a row that was not
    asked, repeats one or holds an output that is not a string comes back as ``problem`` (the runner's judge
    decides what that means), with nothing answered."""
    what = describe(path)
    if what is not None:  # put there by the model's processes: never followed nor read
        return Answers(problem=DataError(f"{path} is {what}, not the predictions file the run wrote"))
    if not path.is_file():
        return Answers()
    try:
        records = read_records(path)
        asked = {q.row for q in questions}
        unknown = [r for r in records if r["row"] not in asked]
        if unknown:
            raise DataError(f"{unknown[0]['_where']}: row {unknown[0]['row']} is not a question that was asked")
        answered, outputs = answered_and_outputs(records, questions, str(path))
    except DataError as exc:
        return Answers(problem=exc)
    return Answers(tuple(answered), outputs, tuple(records))


def kept_answers(records: Sequence[dict[str, Any]], questions: Sequence[Question], source: Path) -> Answers:
    """The answers a judge kept in memory, checked as ``read_answers`` checks a file (each record named
    after its line in ``source``, where the judge wrote it)."""
    named = [{**record, "_where": record.get("_where", f"{source}:{number}")}
             for number, record in enumerate(records, start=1)]
    try:
        answered, outputs = answered_and_outputs(named, questions, str(source))
    except DataError as exc:
        return Answers(problem=exc)
    return Answers(tuple(answered), outputs, tuple(named))


def saved_answers(path: Path, questions: Sequence[Question]) -> Answers:
    """A saved predictions.jsonl scored without a model: every question needs its output (else DataError)."""
    records = read_records(path)
    return Answers(tuple(questions), outputs_for(records, questions, str(path)), tuple(records))


def evaluate(evaluation: Evaluation, runner: Runner | None = None) -> Evaluated:
    """Run the model with ``runner`` (None: score ``evaluation.predictions``), score what it answered and
    write the run folder into ``evaluation.out_dir`` (held locked meanwhile)."""
    if runner is None and evaluation.predictions is None:
        raise TypeError("evaluate() needs a runner, or the saved predictions in evaluation.predictions")
    questions = list(evaluation.questions)
    resolved = check_scoring_ready(questions, evaluation.scoring)  # fail before the model runs, not after
    with locked(evaluation.out_dir) as out_dir:
        refuse_non_regular(out_dir, RUN_FOLDER_FILES)  # never written through a link or a FIFO: refused first
        started = time.perf_counter()
        if runner is None:
            assert evaluation.predictions is not None, "checked on entry: no runner means saved predictions"
            run, outcome = None, None
            answers = saved_answers(evaluation.predictions, questions)
        else:
            run = runner(questions, out_dir)
            answers = read_answers(run.predictions, questions) if run.records is None else \
                kept_answers(run.records, questions, run.predictions)
            outcome = run.judge(answers)
            if answers.problem is not None:
                log.warning("predictions not scored: %s", answers.problem)
                answers = Answers()
        predicted = time.perf_counter()
        result = score_outputs(list(answers.questions), answers.outputs, evaluation.scoring) \
            if answers.questions else None
        timings = {"predict_s": round(predicted - started, 3), "score_s": round(time.perf_counter() - predicted, 3),
                   "batches": len(outcome.batches) if outcome else 0}
        meta = run_metadata(evaluation, resolved, timings, outcome, answers, run)
        results = write_run_folder(out_dir, list(answers.questions), dict(answers.outputs), list(answers.records),
                                   result, meta, evaluation.seed)
    return Evaluated(outcome, answers, result, results, run)


def run_metadata(evaluation: Evaluation, resolved: dict[str, str], timings: dict[str, Any],
                 outcome: RunOutcome | None, answers: Answers, run: ModelRun | None) -> dict[str, Any]:
    """results.json's fields besides the scores: what ran on what, where, how it ended, how long it took."""
    predictions = str(evaluation.predictions) if evaluation.predictions else None
    meta = {**base_meta(evaluation.data_path, len(evaluation.questions), evaluation.limit, evaluation.seed,
                        evaluation.model, predictions),
            **evaluation.meta, "embedding_models": resolved, "timings": timings, **environment.describe(KIT_ROOT)}
    if outcome is not None:
        harness = run_meta(outcome, evaluation.profile, list(answers.records), list(evaluation.questions))
        meta = {**meta, **harness, "timings": {**timings, **harness["timings"]}}
    return {**meta, **(run.meta if run is not None else {})}


# ---------------------------------------------------------------- the local harness as a runner


class ProgressBar:
    """A progress bar with the projected run time against the budget: 'projected 52.3 of 70 min'."""

    def __init__(self, bar: Any) -> None:  # a tqdm bar
        self.bar, self.shown = bar, 0.0

    def __call__(self, progress: Progress) -> None:
        self.bar.update(progress.answered - self.bar.n)
        now = time.monotonic()
        if progress.projected_s is None or now - self.shown < 0.5:
            return
        self.shown = now
        text = f"projected {progress.projected_s / 60:.1f}"
        text += f" of {progress.budget_s / 60:g} min" if progress.budget_s else " min"
        if progress.budget_s and progress.projected_s > progress.budget_s:
            text += " (over budget)"
        self.bar.set_postfix_str(text)

    def close(self) -> None:
        self.bar.close()


@dataclass(frozen=True)
class HarnessRunner:
    """Runs the model in a child process of this one under ``limits`` (``harness.run_model``); the run folder is
    computed from the answers the supervisor (the judge) kept, never from files the model could reach."""

    spec: ModelSpec
    limits: Limits
    options: HarnessOptions = HarnessOptions()
    progress: ProgressBar | None = None  # closed when the model's run ends

    def __call__(self, questions: Sequence[Question], out_dir: Path) -> ModelRun:
        try:
            judged = run_judged(self.spec, questions, out_dir, self.limits, self.options, self.progress)
        finally:
            if self.progress is not None:
                self.progress.close()
        return ModelRun(out_dir / PREDICTIONS_FILE, functools.partial(_harness_judge, judged.outcome),
                        records=judged.records)


def _harness_judge(outcome: RunOutcome, answers: Answers) -> RunOutcome:
    """The harness wrote the predictions itself: a file it cannot read back is the kit's problem, not a verdict."""
    if answers.problem is not None:
        raise answers.problem
    return outcome
