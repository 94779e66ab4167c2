"""Scoring a container's run on the host: the verdict, results.json, predictions.jsonl, scores.json.

The container only ever sees the questions in test format; its predictions and run report come back
through the output folder and are checked here, at the trust boundary, before anything is scored. The
answers stay on the host: ``score_outputs`` runs in this process. ``python -m submission docker run``
(a participant, on the development or sample split) and ``python -m submission grade`` (the organiser,
on the test inputs and their truth) both go through ``run_and_score``: the pipeline of
``submission.evaluate``, with the container as its runner (``ContainerRunner``) and the verdict decided
here (``judge``, ``decide_outcome``).
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import __version__
from ..errors import ConfigError, DataError
from ..evaluate.pipeline import Answers, Evaluation, ModelRun, evaluate
from ..harness import verdict as verdicts
from ..harness.outcome import RunOutcome
from ..harness.profiles import Limits, Profile
from ..jsonio import write_json
from ..scoring.data import ALL_AROUND, Question, load_questions, short_track
from ..scoring.scorer import ScoringConfig
from .aicrowd import AICROWD_FILE, AicrowdConfig, load_aicrowd, loads_aicrowd
from .container_contract import CONTAINER_HOME, ReportError, outcome_from_report
from .container_runner import ContainerRun, ContainerSettings, run_container
from .images import read_file_from_image
from .leaderboard import SCORES_FILE

CONTAINER_DIR = "container"  # inside --output-dir: what the container wrote, and its log


@dataclass(frozen=True)
class RunRequest:
    """One scored container run: which image, which questions (with their answers, kept on the host)."""

    settings: ContainerSettings
    questions: tuple[Question, ...]
    data_path: Path  # the questions with their answers (results.json's data_file)
    out_dir: Path
    profile: Profile
    limits: Limits
    scoring: ScoringConfig = ScoringConfig()
    limit: int | None = None  # --limit, as results.json records it


@dataclass(frozen=True)
class ScoredRun:
    outcome: RunOutcome
    container: ContainerRun
    result: Any  # scoring.RunResult, or None when nothing was answered
    results: dict[str, Any]  # results.json
    n_answered: int


# ---------------------------------------------------------------- the verdict


def _synthesized(verdict: verdicts.Verdict, run: ContainerRun, limits: Limits, n_questions: int, n_answered: int,
                 notes: Sequence[str]) -> RunOutcome:
    """An outcome made on the host when the container's own report is missing or cannot be used."""
    return RunOutcome(verdict=verdict, limits=limits, n_questions=n_questions, n_answered=n_answered, n_resumed=0,
                      batches=(), init_s=None, wall_s=run.wall_s, prior_elapsed_s=0.0, projected_s=None,
                      peak_rss_bytes=None, gpus=(), notes=tuple(notes))


def decide_outcome(run: ContainerRun, limits: Limits, n_questions: int, n_answered: int) -> RunOutcome:
    """How the run ended. The host's own observations (the outer deadline, the kernel's OOM kill, the
    exit code) overrule the container's report, which is only trusted once validated. A run the entry
    point refused (no such model, UserModel not a class) is the submission's configuration: ConfigError."""
    notes = list(run.resources.notes)
    if run.killed_at_deadline:
        detail = (f"the container was stopped from outside at the track budget ({limits.budget_s / 60:g} min) plus "
                  f"{run.deadline_s - limits.budget_s:g} s grace, after {n_answered:,} of {n_questions:,} questions")
        return _synthesized(verdicts.Verdict("timeout", detail), run, limits, n_questions, n_answered, notes)
    ram = f"{limits.ram_bytes / 1e9:g} GB" if limits.ram_bytes else "its RAM limit"
    if run.disk is not None:  # the runner stopped it: the output folder passed its cap
        return _synthesized(run.disk, run, limits, n_questions, n_answered, notes)
    if run.report is not None and run.report.get("outcome") is None and isinstance(run.report.get("error"), str):
        raise ConfigError(f"{run.image}: the container's entry point refused to run the model (exit code "
                          f"{run.exit_code}): {run.report['error'][:2000]}")
    try:
        if run.report is None:
            raise ReportError(run.report_error or "no run report")
        outcome = outcome_from_report(run.report, limits)
    except ReportError as exc:
        if run.oom_killed:
            verdict = verdicts.Verdict("memory", f"the container was killed at its RAM limit ({ram}) by the kernel")
        else:
            verdict = verdicts.Verdict("crashed", f"the container exited with code {run.exit_code} without a usable "
                                       f"run report ({exc}); see {run.output_dir / 'container.log'}")
        return _synthesized(verdict, run, limits, n_questions, n_answered, notes)
    verdict = outcome.verdict
    if run.oom_killed and verdict.status == "crashed":
        verdict = verdicts.Verdict("memory", f"the container reached its RAM limit ({ram}) and the kernel's "
                                   f"out-of-memory killer stopped the model: {verdict.detail}")
    if verdict.ok and n_answered != n_questions:
        verdict = verdicts.Verdict("bad_output", f"the run report says every question was answered, but "
                                   f"predictions.jsonl holds {n_answered:,} of {n_questions:,}")
    return RunOutcome(**{**{f: getattr(outcome, f) for f in outcome.__dataclass_fields__},
                         "verdict": verdict, "notes": tuple(notes) + outcome.notes})


# ---------------------------------------------------------------- the container as the pipeline's runner


@dataclass(frozen=True)
class ContainerRunner:
    """``evaluate``'s runner for a container: runs the image, then judges the run on the host."""

    client: Any
    request: RunRequest
    on_progress: Callable[[int, float], None] | None = None

    def __call__(self, questions: Sequence[Question], out_dir: Path) -> ModelRun:
        run = run_container(self.client, questions, out_dir / CONTAINER_DIR, self.request.limits,
                            self.request.settings, self.on_progress)
        return container_model_run(run, self.request.limits, len(questions))


def container_model_run(run: ContainerRun, limits: Limits, n_questions: int) -> ModelRun:
    """The container's run as the pipeline takes it: its predictions, the host's judge, the docker fields."""
    meta = {"docker": docker_meta(run), "container": (run.report or {}).get("container")}
    return ModelRun(run.predictions_path, functools.partial(judge, run, limits, n_questions), meta, record=run)


def judge(run: ContainerRun, limits: Limits, n_questions: int, answers: Answers) -> RunOutcome:
    """The verdict, given what the container's predictions hold: predictions that break the format are
    bad_output (nothing in them is scored); otherwise ``decide_outcome``."""
    if answers.problem is not None:
        verdict = verdicts.Verdict("bad_output", f"the container's predictions: {answers.problem}")
        return _synthesized(verdict, run, limits, n_questions, 0, run.resources.notes)
    return decide_outcome(run, limits, n_questions, len(answers.questions))


def run_and_score(client, request: RunRequest, on_progress=None) -> ScoredRun:
    """Run the container, decide the verdict, score what it answered, and write what local_evaluation.py
    writes into ``request.out_dir`` (the pipeline of ``submission.evaluate``): the scored predictions.jsonl,
    results.json, report.html, scores.png."""
    evaluation = Evaluation(request.questions, request.data_path, request.out_dir, request.settings.model,
                            request.settings.seed, request.profile, request.scoring, request.limit)
    evaluated = evaluate(evaluation, ContainerRunner(client, request, on_progress))
    return ScoredRun(evaluated.outcome, evaluated.run.record, evaluated.result, evaluated.results,
                     evaluated.n_answered)


def docker_meta(run: ContainerRun) -> dict[str, Any]:
    return {
        "image": run.image, "image_id": run.image_id, "exit_code": run.exit_code, "oom_killed": run.oom_killed,
        "killed_at_deadline": run.killed_at_deadline, "deadline_s": run.deadline_s, "wall_s": round(run.wall_s, 3),
        "resources": asdict(run.resources), "given": run.audit, "report_error": run.report_error,
    }


# ---------------------------------------------------------------- the organiser's grade


def track_score(results: dict[str, Any], track: str) -> float | None:
    """The score a run on ``track``'s test set gets: all-around for the all-around track, else that track's."""
    if track == ALL_AROUND:
        return results.get("all_around")
    return results.get("tracks", {}).get(track)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scores_dict(scored: ScoredRun, submission: dict[str, Any], track: str, truth: Path) -> dict[str, Any]:
    """scores.json: one graded run, as the leaderboard reads it."""
    results, outcome = scored.results, scored.outcome
    return {
        "format": 1, **submission, "track": track, "short_track": short_track(track),
        "profile": outcome.limits.profile, "time_scale": outcome.limits.time_scale,
        "verdict": {"status": outcome.verdict.status, "detail": outcome.verdict.detail},
        "score": track_score(results, track) if outcome.verdict.ok else None,
        "partial_score": track_score(results, track),
        "all_around": results.get("all_around"), "task_mean": results.get("task_mean"),
        "tracks": results.get("tracks", {}), "n_questions": outcome.n_questions, "n_answered": scored.n_answered,
        "wall_s": round(scored.container.wall_s, 3), "image_id": scored.container.image_id,
        "truth_sha256": file_sha256(truth), "graded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kit_version": __version__,
    }


def write_scores(out_dir: Path, scores: dict[str, Any]) -> Path:
    path = out_dir / SCORES_FILE
    write_json(path, scores)
    return path


def aligned_inputs(inputs_path: Path | None, truth_path: Path) -> tuple[list[Question], list[Question]]:
    """The truth (development format) and the inputs, checked to hold the same questions row by row."""
    truth = load_questions(truth_path, require_truth=True)
    if inputs_path is None:
        return truth, truth
    inputs = load_questions(inputs_path)
    if [q.row for q in inputs] != [q.row for q in truth]:
        raise DataError(f"{inputs_path} holds {len(inputs)} questions and {truth_path} {len(truth)} (or their blank "
                        "lines differ); the inputs and the truth must list the same questions, line by line")
    for given, true in zip(inputs, truth):
        if (given.prompt, given.is_multiple_choice) != (true.prompt, true.is_multiple_choice):
            raise DataError(f"{inputs_path}:{given.row + 1}: input_field or is_multiple_choice differs from "
                            f"{truth_path}:{true.row + 1}; the inputs and the truth must list the same questions")
    return inputs, truth


def submission_config(client, image: str, repo: Path | None, profile_given: bool) -> AicrowdConfig | None:
    """aicrowd.json of the repository, or read from the image itself (None: it has none, and a profile was given)."""
    if repo is not None:
        return load_aicrowd(repo)
    path = f"{CONTAINER_HOME}/{AICROWD_FILE}"
    text = read_file_from_image(client, image, path)
    if text is None:
        if not profile_given:
            raise ConfigError(f"{image} has no {path}: pass --profile to grade it anyway")
        return None
    return loads_aicrowd(text, f"{image}:{path}")
