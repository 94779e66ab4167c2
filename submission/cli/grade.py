"""``python -m submission grade``: the organiser's grade of one submission on a track's test inputs."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..errors import ConfigError
from ..grading.aicrowd import load_aicrowd
from ..grading.container_runner import ROLE_LABEL
from ..grading.gpu_slots import device_ids
from ..grading.grader import RunRequest, aligned_inputs, scores_dict, submission_config, write_scores
from ..grading.images import connect
from ..harness.output_dir import locked
from ..harness.profiles import DEFAULT_PROFILE
from ..reports.reuse import claim_output_dir, clear_run
from ..scoring.data import short_track
from ..scoring.scorer import ScoringConfig
from . import output
from .containers import (
    add_build_arguments,
    add_limit_arguments,
    docker_refusals,
    execute,
    image_or_build,
    key_values,
    parser,
    resolve_limits,
    settings_from,
)

GRADE_EPILOG = """examples:
  python -m submission grade --image team-a:v3 --track amazon-kdd-cup-24-shopping-knowledge-reasoning \\
      --inputs test/track2_inputs.jsonl --truth test/track2_truth.jsonl --output-dir graded/team-a/track2
  python -m submission grade --image-file team-a.tar --track amazon-kdd-cup-24-all-around \\
      --truth test/all_truth.jsonl --output-dir graded/team-a/all-around
  python -m submission grade --repo submissions/team-b --track ... --truth ... --output-dir graded/team-b/...

--truth is in development format (answers included) with the same rows as --inputs (test format: only
input_field and is_multiple_choice; default: made from --truth). Only the prompts enter the container,
batch by batch over its stdin; the truth is read by this process alone. Writes results.json,
predictions.jsonl and scores.json.

--output-dir must not hold a graded run: re-grading into the same folder needs --overwrite, which
removes the earlier run's files first (anything else in the folder stays).

--gpus and --label are what a worker (python -m submission worker) gives each grade: the host's GPUs
chosen for it, and its name on the container.
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser_ = parser(prog, "Grade one submission: run its image under the track's profile, judged on this host "
                     "(only the test prompts enter the container, over its stdin), score it against the truth, "
                     "write scores.json.", GRADE_EPILOG)
    source = parser_.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="an image present in the local Docker daemon")
    source.add_argument("--image-file", help="an image tarball (python -m submission docker build --save, docker save)")
    source.add_argument("--repo", help="a submission repository, built first")
    parser_.add_argument("--inputs", help="test inputs (only input_field and is_multiple_choice are used; default: "
                         "made from --truth)")
    parser_.add_argument("--truth", required=True, help="the same questions in development format, with the answers")
    parser_.add_argument("--output-dir", required=True, help="folder for scores.json, results.json, predictions.jsonl; "
                         "a folder that holds a graded run is refused: re-grading into it needs --overwrite")
    parser_.add_argument("--overwrite", action="store_true", help="re-grade into an --output-dir that holds a run: "
                         "remove its run files first (scores.json, results.json, predictions.jsonl, report.html, "
                         "scores.png, container/; other files stay)")
    parser_.add_argument("--name", help="the submission's name on the leaderboard (default: the image or folder)")
    parser_.add_argument("--gpus", metavar="IDS", help="the host's GPUs to give the container, e.g. 0,1 (as many as "
                         "the profile has; default: that many of any)")
    parser_.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                         help="a label on the container (repeatable; a worker sets shopbench.worker=NAME)")
    add_limit_arguments(parser_, "the track graded: its time budget applies and its score is reported (required)")
    add_build_arguments(parser_)
    output.add_flags(parser_)
    return parser_


def container_labels(pairs: list[str]) -> tuple[tuple[str, str], ...]:
    labels = key_values(pairs, "--label")
    if ROLE_LABEL in labels:
        raise ConfigError(f"--label {ROLE_LABEL}: the grader sets this label itself; choose another key")
    return tuple(labels.items())


def main(argv: list[str], prog: str = "python -m submission grade") -> int:
    """0 graded within the limits, 1 a failure verdict, 130/143 interrupted by SIGINT/SIGTERM or SIGHUP (bad
    input: a KitError, 2 in ``cli.main``)."""
    parser_ = build_parser(prog)
    args = parser_.parse_args(argv)
    if not args.track:
        parser_.error("--track is required (a challenge_id, e.g. amazon-kdd-cup-24-all-around)")
    reporter = output.setup(args.verbose, args.quiet)
    out_dir = Path(args.output_dir)  # a graded run there is refused before anything is built or run
    claim_output_dir(out_dir, args.overwrite, hint="An organiser re-grading into the same folder passes --overwrite.")
    gpu_ids, labels = device_ids(args.gpus), container_labels(args.label)
    truth_path = Path(args.truth)
    _, truth = aligned_inputs(Path(args.inputs) if args.inputs else None, truth_path)
    with docker_refusals():
        client = connect()
        repo = Path(args.repo).resolve() if args.repo else None
        if repo is not None:
            load_aicrowd(repo)  # refuse an invalid submission before building it
        image = image_or_build(client, args, repo)
        config = submission_config(client, image, repo, profile_given=args.profile is not None)
        if config is not None and config.challenge_id != args.track:
            reporter.note(f"the submission's aicrowd.json names {config.challenge_id}; "
                          f"grading on {args.track} as asked")
        profile, limits = resolve_limits(args, config.profile_name if config else DEFAULT_PROFILE, truth, args.track)
        scoring = ScoringConfig(embedding_models=key_values(args.embedding_model, "--embedding-model"))
        settings = dataclasses.replace(settings_from(args, image), gpu_ids=gpu_ids, labels=labels)
        request = RunRequest(settings, tuple(truth), truth_path, out_dir, profile, limits, scoring)
        with locked(out_dir):
            if args.overwrite:
                clear_run(out_dir)
            scored, interrupted = execute(client, request)
    name = args.name or (repo.name if repo else Path(args.image_file).stem if args.image_file else image)
    submission = {"submission": name, "authors": list(config.authors) if config else [], "image": image,
                  "challenge_id": config.challenge_id if config else None}
    scores = scores_dict(scored, submission, args.track, truth_path)
    path = write_scores(out_dir, scores)
    shown = "no score (failure verdict)" if scores["score"] is None else f"{scores['score']:.4f}"
    reporter.result(f"{name} on {short_track(args.track)}: {shown}; wrote {path}")
    return interrupted or (0 if scored.outcome.verdict.ok else 1)
