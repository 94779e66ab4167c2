"""``python -m submission docker run``: the submission's image run the grader's way on a split, scored on the host."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..environment import KIT_ROOT
from ..errors import DataError
from ..grading.aicrowd import load_aicrowd
from ..grading.grader import RunRequest
from ..grading.images import connect
from ..harness.output_dir import fresh_folder, locked
from ..reports.reuse import claim_output_dir, clear_run
from ..scoring.data import load_questions
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

RUN_EPILOG = """examples:
  python -m submission docker run                              # build ./, run it on the sample or development split
  python -m submission docker run --data data/development.json --output-dir runs/docker1 --seed 1
  python -m submission docker run --image shopbench-mysub:latest --limit 20
  python -m submission docker run --base-image my-local-cuda:12.1 --time-scale 0.5

The run is the grader's: this process is the judge and the container runs only the model, with no
network and nothing of the run mounted; each batch's prompts (test format) go in over its stdin and the
answers come back over its stdout. The profile of aicrowd.json ("gpu": false -> cpu) gives its CPUs, RAM
and GPUs; the per-batch deadline and the track budget of its challenge_id are this host's clocks (the
container is stopped at the budget plus --grace-s whatever happens). Scores are computed on the host.

exit status: 0 all answered within the limits; 1 a failure verdict; 2 bad input or configuration; 130 or
143 stopped by SIGINT or SIGTERM/SIGHUP (the container removed, the answers so far scored: verdict interrupted).
"""


def choose_data(arg: str | None, repo: Path) -> Path:
    if arg:
        return Path(arg)
    for path, what in ((repo / "data" / "development.json", "the official development split"),
                       (KIT_ROOT / "data" / "sample.json", "the kit's sample split")):
        if path.is_file():
            output.REPORTER.info(f"data: {path} ({what})")
            return path
    raise DataError("no --data given and neither data/development.json nor the kit's data/sample.json exists")


def main(argv: list[str], prog: str = "python -m submission docker run") -> int:
    """0 all answered within the limits, 1 a failure verdict, 130/143 interrupted (bad input: a KitError, 2 in
    ``cli.main``)."""
    args = build_parser(prog).parse_args(argv)
    if args.limit is not None and args.limit < 1:
        build_parser(prog).error("--limit must be at least 1")
    output.setup(args.verbose, args.quiet)
    if args.output_dir:  # a folder that holds a run is refused before anything is built or run
        claim_output_dir(Path(args.output_dir), args.overwrite)
    repo = Path(args.repo).resolve()
    config = load_aicrowd(repo)
    data = choose_data(args.data, repo)
    questions = load_questions(data, require_truth=True)[: args.limit]
    profile, limits = resolve_limits(args, config.profile_name, questions, args.track or config.track,
                                     not args.no_limits)
    with docker_refusals():
        client = connect()
        image = image_or_build(client, args, repo)
        stamp = f"docker-{time.strftime('%Y%m%d-%H%M%S')}"
        out_dir = Path(args.output_dir) if args.output_dir else fresh_folder(repo / "runs", stamp)
        scoring = ScoringConfig(embedding_models=key_values(args.embedding_model, "--embedding-model"))
        request = RunRequest(settings_from(args, image, args.model), tuple(questions), data, out_dir, profile,
                             limits, scoring, args.limit)
        with locked(out_dir):
            if args.overwrite:
                clear_run(out_dir)
            scored, interrupted = execute(client, request)
        return interrupted or (0 if scored.outcome.verdict.ok else 1)


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser_ = parser(prog, "Run the submission's image the grader's way on a split, then score it on the host.",
                     RUN_EPILOG)
    parser_.add_argument("--repo", default=".", help="the submission's repository (default: the current folder)")
    parser_.add_argument("--image", help="run this image instead of building --repo")
    parser_.add_argument("--data", help="questions in development format (default: data/development.json if present, "
                         "else the kit's data/sample.json); only their test-format fields enter the container")
    parser_.add_argument("--limit", type=int, help="only the first N questions")
    parser_.add_argument("--model", help="model class inside the image, 'module:Class' (default: UserModel)")
    parser_.add_argument("--output-dir", help="folder for results.json and predictions.jsonl "
                         "(default: runs/docker-<time>); a folder that holds a run is refused unless --overwrite")
    parser_.add_argument("--overwrite", action="store_true", help="remove the run files of --output-dir first "
                         "(results.json, predictions.jsonl, report.html, scores.png, container/; other files stay)")
    parser_.add_argument("--no-limits", action="store_true", help="no time, RAM or CPU limit (the network stays off)")
    add_limit_arguments(parser_, "track whose budget applies (default: aicrowd.json's challenge_id)")
    add_build_arguments(parser_)
    output.add_flags(parser_)
    return parser_
