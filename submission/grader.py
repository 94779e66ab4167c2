"""Scoring a container's run on the host: the verdict, results.json, predictions.jsonl, scores.json.

The container only ever sees the questions in test format; its predictions and run report come back
through the output folder and are checked here, at the trust boundary, before anything is scored. The
answers stay on the host: ``score_outputs`` runs in this process. ``python -m submission docker run``
(a participant, on the development or sample split) and ``python -m submission grade`` (the organiser,
on the test inputs and their truth) both go through ``run_and_score``.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from . import __version__, environment
from . import verdict as verdicts
from .aicrowd import AICROWD_FILE, AicrowdConfig, load_aicrowd, loads_aicrowd
from .container import CONTAINER_HOME, ReportError, outcome_from_report
from .data import ALL_AROUND, Question, load_questions
from .docker_runner import (DEFAULT_GRACE_S, KIT_ROOT, BuildOptions, ContainerRun, ContainerSettings, build_for,
                            connect, default_tag, load_image, read_file_from_image, run_container)
from .errors import ConfigError, DataError, KitError
from .harness import RunOutcome
from .leaderboard import SCORES_FILE
from .predictions import outputs_for, read_records
from .profiles import DEFAULT_PROFILE, Limits, Profile, budget_track_for, get_profile, limits_for, load_profiles
from .report import format_table, short_track, write_json
from .run_folder import base_meta, write_run_folder, written_files
from .runstats import run_meta
from .scoring import ScoringConfig, check_scoring_ready, score_outputs

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
    exit code) overrule the container's report, which is only trusted once validated."""
    notes = list(run.resources.notes)
    if run.killed_at_deadline:
        detail = (f"the container was stopped from outside at the track budget ({limits.budget_s / 60:g} min) plus "
                  f"{run.deadline_s - limits.budget_s:g} s grace, after {n_answered:,} of {n_questions:,} questions")
        return _synthesized(verdicts.Verdict("timeout", detail), run, limits, n_questions, n_answered, notes)
    ram = f"{limits.ram_bytes / 1e9:g} GB" if limits.ram_bytes else "its RAM limit"
    if run.report is not None and run.report.get("outcome") is None and isinstance(run.report.get("error"), str):
        verdict = verdicts.Verdict("model_error", run.report["error"][:2000])
        return _synthesized(verdict, run, limits, n_questions, n_answered, notes)
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


def answered_records(path: Path, questions: Sequence[Question]) -> tuple[list[Question], dict[int, str], list[dict]]:
    """The questions the container answered, their outputs and records; DataError when the file breaks
    the format (unknown or repeated rows, non-string outputs)."""
    if not path.is_file():
        return [], {}, []
    records = read_records(path)
    by_row = {q.row for q in questions}
    unknown = [r for r in records if r["row"] not in by_row]
    if unknown:
        raise DataError(f"{unknown[0]['_where']}: row {unknown[0]['row']} is not a question that was asked")
    rows = {r["row"] for r in records}
    answered = [q for q in questions if q.row in rows]
    return answered, outputs_for(records, answered, str(path)), records


# ---------------------------------------------------------------- run, score, write


def run_and_score(client, request: RunRequest, on_progress=None) -> ScoredRun:
    """Run the container, decide the verdict, score what it answered, and write what local_evaluation.py
    writes into ``request.out_dir``: the scored predictions.jsonl, results.json, report.html, scores.png."""
    questions = list(request.questions)
    resolved = check_scoring_ready(questions, request.scoring)  # fail before the model runs, not after
    request.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run = run_container(client, questions, request.out_dir / CONTAINER_DIR, request.limits, request.settings,
                        on_progress)
    predicted = time.perf_counter()
    outcome, answered, outputs, records = collect(run, request)
    result = score_outputs(answered, outputs, request.scoring) if answered else None
    timings = {"predict_s": round(predicted - started, 3), "score_s": round(time.perf_counter() - predicted, 3),
               "batches": len(outcome.batches)}
    results = write_results(request, run, outcome, (answered, outputs, records, result), {
        "embedding_models": resolved, "timings": timings})
    return ScoredRun(outcome, run, result, results, len(answered))


def collect(run: ContainerRun, request: RunRequest) -> tuple[RunOutcome, list[Question], dict[int, str], list[dict]]:
    """The verdict and the answered questions, outputs and records; malformed predictions are bad_output."""
    questions = request.questions
    try:
        answered, outputs, records = answered_records(run.predictions_path, questions)
    except DataError as exc:
        verdict = verdicts.Verdict("bad_output", f"the container's predictions: {exc}")
        return _synthesized(verdict, run, request.limits, len(questions), 0, run.resources.notes), [], {}, []
    return decide_outcome(run, request.limits, len(questions), len(answered)), answered, outputs, records


def write_results(request: RunRequest, run: ContainerRun, outcome: RunOutcome, scoring: tuple,
                  extra_meta: dict[str, Any]) -> dict[str, Any]:
    """predictions.jsonl (scored), results.json, report.html and scores.png, as local_evaluation.py writes them."""
    answered, outputs, records, result = scoring
    questions = list(request.questions)
    harness = run_meta(outcome, request.profile, records, questions)
    meta = {
        **base_meta(request.data_path, len(questions), request.limit, request.settings.seed, request.settings.model),
        **extra_meta, **environment.describe(KIT_ROOT), **harness,
        "timings": {**extra_meta["timings"], **harness["timings"]},
        "docker": docker_meta(run), "container": (run.report or {}).get("container"),
    }
    return write_run_folder(request.out_dir, answered, outputs, records, result, meta, request.settings.seed)


def docker_meta(run: ContainerRun) -> dict[str, Any]:
    return {
        "image": run.image, "image_id": run.image_id, "exit_code": run.exit_code, "oom_killed": run.oom_killed,
        "killed_at_deadline": run.killed_at_deadline, "deadline_s": run.deadline_s, "wall_s": round(run.wall_s, 3),
        "resources": asdict(run.resources), "given": run.audit, "report_error": run.report_error,
    }


def print_report(scored: ScoredRun, out_dir: Path) -> None:
    """What local_evaluation.py prints after a run, plus the container's log when it failed."""
    outcome = scored.outcome
    if not outcome.verdict.ok:
        what = "the model broke the interface" if outcome.verdict.status == "bad_output" else outcome.verdict.status
        print(f"error: {what}: {outcome.verdict.detail}", file=sys.stderr)
        if scored.container.log_tail:
            print(f"last lines of the container's log ({out_dir / CONTAINER_DIR / 'container.log'}):\n"
                  f"{scored.container.log_tail}", file=sys.stderr)
        print(f"\nPARTIAL RESULTS: {scored.n_answered} of {outcome.n_questions} questions answered "
              f"(verdict: {outcome.verdict.status})")
    if scored.result is not None:
        print(format_table(scored.result, scored.results.get("intervals")))
    print(f"\nverdict: {outcome.verdict}")
    print(f"container: {scored.container.wall_s:.1f} s wall time, exit code {scored.container.exit_code}")
    print(f"\nwrote {', '.join(written_files(scored.result))} in {out_dir}")


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


# ---------------------------------------------------------------- command line: docker run and grade

RUN_EPILOG = """examples:
  python -m submission docker run                              # build ./, run it on the sample or development split
  python -m submission docker run --data data/development.json --output-dir runs/docker1 --seed 1
  python -m submission docker run --image shopbench-mysub:latest --limit 20
  python -m submission docker run --base-image my-local-cuda:12.1 --time-scale 0.5

The run is the grader's: no network, inputs read-only in test format, the profile of aicrowd.json
("gpu": false -> cpu) with its CPUs, RAM and GPUs, the track budget of its challenge_id enforced from
outside (the container is killed at the budget plus --grace-s). Scores are computed on the host.

exit status: 0 all answered within the limits; 1 a failure verdict; 2 bad input or configuration.
"""

GRADE_EPILOG = """examples:
  python -m submission grade --image team-a:v3 --track amazon-kdd-cup-24-shopping-knowledge-reasoning \\
      --inputs test/track2_inputs.jsonl --truth test/track2_truth.jsonl --output-dir graded/team-a/track2
  python -m submission grade --image-file team-a.tar --track amazon-kdd-cup-24-all-around \\
      --truth test/all_truth.jsonl --output-dir graded/team-a/all-around
  python -m submission grade --repo submissions/team-b --track ... --truth ... --output-dir graded/team-b/...

--truth is in development format (answers included) with the same rows as --inputs (test format: only
input_field and is_multiple_choice; default: made from --truth). Only the inputs enter the container;
the truth is read by this process alone. Writes results.json, predictions.jsonl and scores.json.
"""


def add_limit_arguments(parser, track_help: str) -> None:
    group = parser.add_argument_group("grader limits (submission/profiles.yaml)")
    group.add_argument("--profile", help="hardware profile (default: from aicrowd.json: 'gpu': false -> cpu, "
                       "else phase2)")
    group.add_argument("--profiles-file", action="append", default=[], metavar="YAML",
                       help="add (or replace) profiles from this YAML file, same shape as submission/profiles.yaml")
    group.add_argument("--track", help=track_help)
    group.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                       help="multiply every time limit by X (default: 1)")
    group.add_argument("--grace-s", type=float, default=None, metavar="S",
                       help="the container is killed at the track budget plus S seconds (default: 60)")
    group.add_argument("--shm-gb", type=float, metavar="GB", help="size of /dev/shm (default: half the profile's RAM)")
    group.add_argument("--embedding-model", action="append", default=[], metavar="METRIC=PATH",
                       help="local folder of a metric's embedding model (for scoring on the host)")
    group.add_argument("--seed", type=int, default=0, help="SHOPBENCH_SEED for the model (default: 0)")


def add_build_arguments(parser) -> None:
    group = parser.add_argument_group("building (when no image is given)")
    group.add_argument("--base-image", help="BASE_IMAGE build argument (default: the Dockerfile's CUDA 12 image)")
    group.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="more build arguments")
    group.add_argument("--tag", help="image tag (default: shopbench-<repository folder>:latest)")


def key_values(pairs: list[str], flag: str) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            from .errors import KitError

            raise KitError(f"{flag} '{pair}': expected KEY=VALUE")
        values[key.strip()] = value.strip()
    return values


class ContainerProgress:
    """A progress bar fed with the count of lines in the container's predictions.jsonl."""

    def __init__(self, total: int, budget_s: float | None):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="container", unit="q", file=sys.stderr)
        self.budget_s, self.shown = budget_s, ""

    def __call__(self, answered: int, elapsed_s: float) -> None:
        text = f"{elapsed_s / 60:.1f} of {self.budget_s / 60:g} min budget" if self.budget_s else ""
        if text != self.shown:
            self.shown = text
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(min(answered, self.bar.total) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def describe_run(limits: Limits, image: str) -> str:
    if not limits.enforced:
        return f"image {image}; limits: none (--no-limits)"
    return (f"image {image}; profile {limits.profile}: {limits.seconds_per_sample:g} s per sample, budget "
            f"{limits.budget_s / 60:g} min for {short_track(limits.budget_track)}, RAM {limits.ram_bytes / 1e9:g} GB, "
            f"{limits.vcpus} CPUs, {limits.gpus} GPU(s); no network")


def execute(client, request: RunRequest) -> ScoredRun:
    """run_and_score with a progress bar and the report printed."""
    print(describe_run(request.limits, request.settings.image))
    bar = ContainerProgress(len(request.questions), request.limits.budget_s)
    try:
        scored = run_and_score(client, request, on_progress=bar)
    finally:
        bar.close()
    for note in scored.container.resources.notes:
        print(f"note: {note}")
    print_report(scored, request.out_dir)
    return scored


def choose_data(arg: str | None, repo: Path) -> Path:
    if arg:
        return Path(arg)
    for path, what in ((repo / "data" / "development.json", "the official development split"),
                       (KIT_ROOT / "data" / "sample.json", "the kit's sample split")):
        if path.is_file():
            print(f"data: {path} ({what})")
            return path
    raise DataError("no --data given and neither data/development.json nor the kit's data/sample.json exists")


def resolve_limits(args, profile_name: str, questions: Sequence[Question], track: str | None,
                   enabled: bool = True) -> tuple[Profile, Limits]:
    profile = get_profile(args.profile or profile_name, load_profiles(*args.profiles_file))
    return profile, limits_for(profile, budget_track_for(questions, track), args.time_scale, enabled)


def settings_from(args, image: str, model: str | None = None) -> ContainerSettings:
    if args.grace_s is not None and args.grace_s < 0:
        raise ConfigError(f"--grace-s must be at least 0, got {args.grace_s}")
    shm = None if args.shm_gb is None else int(args.shm_gb * 1e9)
    grace = DEFAULT_GRACE_S if args.grace_s is None else args.grace_s
    return ContainerSettings(image=image, model=model, seed=args.seed, grace_s=grace, shm_bytes=shm)


def image_or_build(client, args, repo: Path | None) -> str:
    """--image (checked to exist), --image-file (loaded) or the image built from ``repo``."""
    import docker

    if getattr(args, "image_file", None):
        ref = load_image(client, args.image_file)
        print(f"loaded {ref} from {args.image_file}")
        return ref
    if args.image:
        try:
            client.images.get(args.image)
        except docker.errors.ImageNotFound:
            raise ConfigError(f"--image {args.image}: no such image here; build it with `python -m submission docker "
                              "build` or load it with `docker load -i FILE`") from None
        return args.image
    options = BuildOptions(args.tag or default_tag(repo), args.base_image, key_values(args.build_arg, "--build-arg"))
    return build_for(client, repo, options).tag


def _parser(prog: str, description: str, epilog: str):
    import argparse

    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def _run_safely(work) -> int:
    """Run ``work()``; bad input and Docker's refusals end with a message and exit status 2."""
    import docker

    try:
        return work()
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except docker.errors.DockerException as exc:
        print(f"error: Docker refused: {exc}", file=sys.stderr)
    return 2


def docker_run_main(argv: list[str], prog: str) -> int:
    parser = _parser(prog, "Run the submission's image the grader's way on a split, then score it on the host.",
                     RUN_EPILOG)
    parser.add_argument("--repo", default=".", help="the submission's repository (default: the current folder)")
    parser.add_argument("--image", help="run this image instead of building --repo")
    parser.add_argument("--data", help="questions in development format (default: data/development.json if present, "
                        "else the kit's data/sample.json); only their test-format fields enter the container")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--model", help="model class inside the image, 'module:Class' (default: UserModel)")
    parser.add_argument("--output-dir", help="folder for results.json and predictions.jsonl "
                        "(default: runs/docker-<time>)")
    parser.add_argument("--no-limits", action="store_true", help="no time, RAM or CPU limit (the network stays off)")
    add_limit_arguments(parser, "track whose budget applies (default: aicrowd.json's challenge_id)")
    add_build_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    def work() -> int:
        repo = Path(args.repo).resolve()
        config = load_aicrowd(repo)
        data = choose_data(args.data, repo)
        questions = load_questions(data, require_truth=True)[: args.limit]
        profile, limits = resolve_limits(args, config.profile_name, questions, args.track or config.track,
                                         not args.no_limits)
        client = connect()
        image = image_or_build(client, args, repo)
        out_dir = Path(args.output_dir or repo / "runs" / f"docker-{time.strftime('%Y%m%d-%H%M%S')}")
        scoring = ScoringConfig(embedding_models=key_values(args.embedding_model, "--embedding-model"))
        request = RunRequest(settings_from(args, image, args.model), tuple(questions), data, out_dir, profile,
                             limits, scoring, args.limit)
        return 0 if execute(client, request).outcome.verdict.ok else 1

    return _run_safely(work)


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


def submission_config(client, args, image: str, repo: Path | None) -> AicrowdConfig | None:
    """aicrowd.json of the repository, or read from the image itself."""
    if repo is not None:
        return load_aicrowd(repo)
    path = f"{CONTAINER_HOME}/{AICROWD_FILE}"
    text = read_file_from_image(client, image, path)
    if text is None:
        if args.profile is None:
            raise ConfigError(f"{image} has no {path}: pass --profile to grade it anyway")
        return None
    return loads_aicrowd(text, f"{image}:{path}")


def grade_main(argv: list[str], prog: str) -> int:
    parser = _parser(prog, "Grade one submission: run its image under the track's profile with only the test "
                     "inputs mounted, score it on the host against the truth, write scores.json.", GRADE_EPILOG)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="an image present in the local Docker daemon")
    source.add_argument("--image-file", help="an image tarball (python -m submission docker build --save, docker save)")
    source.add_argument("--repo", help="a submission repository, built first")
    parser.add_argument("--inputs", help="test inputs (only input_field and is_multiple_choice are used; default: "
                        "made from --truth)")
    parser.add_argument("--truth", required=True, help="the same questions in development format, with the answers")
    parser.add_argument("--output-dir", required=True, help="folder for scores.json, results.json, predictions.jsonl")
    parser.add_argument("--name", help="the submission's name on the leaderboard (default: the image or folder)")
    add_limit_arguments(parser, "the track graded: its time budget applies and its score is reported (required)")
    add_build_arguments(parser)
    args = parser.parse_args(argv)
    if not args.track:
        parser.error("--track is required (a challenge_id, e.g. amazon-kdd-cup-24-all-around)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def work() -> int:
        truth_path = Path(args.truth)
        _, truth = aligned_inputs(Path(args.inputs) if args.inputs else None, truth_path)
        client = connect()
        repo = Path(args.repo).resolve() if args.repo else None
        if repo is not None:
            load_aicrowd(repo)  # refuse an invalid submission before building it
        image = image_or_build(client, args, repo)
        config = submission_config(client, args, image, repo)
        if config is not None and config.challenge_id != args.track:
            print(f"note: the submission's aicrowd.json names {config.challenge_id}; grading on {args.track} as asked")
        profile, limits = resolve_limits(args, config.profile_name if config else DEFAULT_PROFILE, truth, args.track)
        out_dir = Path(args.output_dir)
        request = RunRequest(settings_from(args, image), tuple(truth), truth_path, out_dir,
                             profile, limits, ScoringConfig(embedding_models=key_values(args.embedding_model,
                                                                                        "--embedding-model")))
        scored = execute(client, request)
        name = args.name or (repo.name if repo else Path(args.image_file).stem if args.image_file else image)
        submission = {"submission": name, "authors": list(config.authors) if config else [], "image": image,
                      "challenge_id": config.challenge_id if config else None}
        scores = scores_dict(scored, submission, args.track, truth_path)
        path = write_scores(out_dir, scores)
        shown = "no score (failure verdict)" if scores["score"] is None else f"{scores['score']:.4f}"
        print(f"{name} on {short_track(args.track)}: {shown}; wrote {path}")
        return 0 if scored.outcome.verdict.ok else 1

    return _run_safely(work)
