"""Scoring a container's run on the host: the verdict, results.json, predictions.jsonl, scores.json.

The container only ever sees each batch's prompts, sent over its stdin by this process, the judge
(``container_runner``: the clocks, every message checked, the answers kept in memory and written to the
host-only run folder). Nothing the container writes is read: the verdict comes from what the host observed
(the channel, its clocks, the container's exit status, the kernel's OOM kill, the GPU memory it measured).
The answers stay on the host: ``score_outputs`` runs in this process. ``python -m submission docker run``
(a participant, on the development or sample split) and ``python -m submission grade`` (the organiser,
on the test inputs and their truth) both go through ``run_and_score``: the pipeline of
``submission.evaluate``, with the container as its runner (``ContainerRunner``).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import ConfigError, DataError
from ..evaluate.pipeline import Answers, Evaluation, ModelRun, evaluate
from ..harness.outcome import RunOutcome
from ..harness.profiles import Limits, Profile
from ..jsonio import write_json
from ..scoring.data import ALL_AROUND, Question, load_questions, short_track
from ..scoring.scorer import ScoringConfig
from .aicrowd import AICROWD_FILE, AicrowdConfig, load_aicrowd, loads_aicrowd
from .container_channel import Interrupt
from .container_contract import CONTAINER_HOME, container_side
from .container_runner import ContainerRun, ContainerSettings, run_container
from .images import read_file_from_image
from .leaderboard import SCORES_FILE

if TYPE_CHECKING:
    from docker import DockerClient


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


# ---------------------------------------------------------------- the container as the pipeline's runner


@dataclass(frozen=True)
class ContainerRunner:
    """``evaluate``'s runner for a container: runs the image, judged on the host (``container_runner``)."""

    client: DockerClient
    request: RunRequest
    on_progress: Callable[[int, float], None] | None = None
    interrupt: Interrupt | None = None  # SIGTERM, SIGINT, SIGHUP to the grader: the verdict interrupted

    def __call__(self, questions: Sequence[Question], out_dir: Path) -> ModelRun:
        run = run_container(self.client, questions, out_dir, self.request.limits, self.request.settings,
                            self.on_progress, self.interrupt)
        return container_model_run(run)


def container_model_run(run: ContainerRun) -> ModelRun:
    """The container's run as the pipeline takes it: the judge's answers and verdict, the docker fields."""
    meta = {"docker": docker_meta(run), "container": container_side(run.audit)}
    return ModelRun(run.predictions_path, functools.partial(judge, run), meta, record=run, records=run.records)


def judge(run: ContainerRun, answers: Answers) -> RunOutcome:
    """The host judge's outcome. Its answers were checked as they arrived; a problem with them now is the
    kit's own, not the container's."""
    if answers.problem is not None:
        raise answers.problem
    return run.outcome


def run_and_score(client: DockerClient, request: RunRequest, on_progress: Callable[[int, float], None] | None = None,
                  interrupt: Interrupt | None = None) -> ScoredRun:
    """Run the container, judged here, score what it answered, and write what local_evaluation.py writes into
    ``request.out_dir`` (the pipeline of ``submission.evaluate``): the scored predictions.jsonl, results.json,
    report.html, scores.png, and the container's log in container/container.log."""
    evaluation = Evaluation(request.questions, request.data_path, request.out_dir, request.settings.model,
                            request.settings.seed, request.profile, request.scoring, request.limit)
    evaluated = evaluate(evaluation, ContainerRunner(client, request, on_progress, interrupt))
    assert evaluated.outcome is not None and evaluated.run is not None, "evaluate() ran the runner it was given"
    return ScoredRun(evaluated.outcome, evaluated.run.record, evaluated.result, evaluated.results,
                     evaluated.n_answered)


def docker_meta(run: ContainerRun) -> dict[str, Any]:
    return {
        "image": run.image, "image_id": run.image_id, "exit_code": run.exit_code, "oom_killed": run.oom_killed,
        "killed_at_deadline": run.killed_at_deadline, "deadline_s": run.deadline_s, "wall_s": round(run.wall_s, 3),
        "resources": asdict(run.resources), "given": run.audit, "log_dropped_bytes": run.log_dropped,
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
    for given, true in zip(inputs, truth, strict=True):
        if (given.prompt, given.is_multiple_choice) != (true.prompt, true.is_multiple_choice):
            raise DataError(f"{inputs_path}:{given.row + 1}: input_field or is_multiple_choice differs from "
                            f"{truth_path}:{true.row + 1}; the inputs and the truth must list the same questions")
    return inputs, truth


def submission_config(client: DockerClient, image: str, repo: Path | None, profile_given: bool) -> AicrowdConfig | None:
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
