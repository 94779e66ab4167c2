#!/usr/bin/env python3
"""Run your model on a ShopBench split under the grader's limits, score it exactly as the grader does,
and write the results."""

from __future__ import annotations

import argparse
import signal
import sys

from submission.cli import output
from submission.errors import KitError
from submission.evaluate import LocalOptions, local_run
from submission.harness.profiles import DEFAULT_PROFILE

EPILOG = """examples:
  python local_evaluation.py                                   # UserModel on the default split, phase2 limits
  python local_evaluation.py --model models.dummy_model:DummyModel --sample 20   # 20 questions across every task
  python local_evaluation.py --limit 20                        # the first 20 lines of the data file
  python local_evaluation.py --data data/development.json --output-dir runs/try1 --seed 1
  python local_evaluation.py --profile phase1 --track amazon-kdd-cup-24-multi-lingual-abilities
  python local_evaluation.py --time-scale 0.5                  # a GPU twice as fast as a T4: halve every time limit
  python local_evaluation.py --no-limits --output-dir runs/debug   # no deadlines, no memory caps
  python local_evaluation.py --resume runs/try1                # continue after a crash, kill -9 or timeout
  python local_evaluation.py --output-dir runs/try1 --overwrite # a new run in place of the one in runs/try1
  python local_evaluation.py --predictions runs/try1/predictions.jsonl   # re-score, no model

exit status: 0 all answered within the limits; 1 the run ended with a failure verdict (timeout,
gpu_memory, memory, model_error, bad_output, crashed; results.json holds it and partial scores);
2 bad input or configuration (an --output-dir that holds a run, without --resume or --overwrite, too).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="questions in development format (JSON Lines); default: "
                        "data/development.json if present, else the kit's sample split data/sample.json")
    parser.add_argument("--model", help="model class as 'module:Class' (default: UserModel of models/user_config.py)")
    parser.add_argument("--output-dir", help="folder for results.json and predictions.jsonl (default: runs/<time>); "
                        "a folder that holds a run is refused: --resume it, or --overwrite")
    parser.add_argument("--overwrite", action="store_true", help="remove the run files of --output-dir first "
                        "(results.json, predictions.jsonl, report.html, scores.png, run.json, compare.html; other "
                        "files stay)")
    subset = parser.add_mutually_exclusive_group()
    subset.add_argument("--limit", type=int, metavar="N", help="only the first N questions of the data file (they "
                        "may cover only some tasks and tracks)")
    subset.add_argument("--sample", type=int, metavar="N", help="N questions spread across every task, drawn with "
                        "--seed (the rows are recorded in results.json): a quick check of the whole pipeline")
    parser.add_argument("--seed", type=int, help="seed for the model's randomness (default: 0)")
    parser.add_argument("--predictions",
                        help="score this predictions.jsonl (needs 'row' and 'output'); no model is loaded")
    parser.add_argument("--embedding-model", action="append", default=[], metavar="METRIC=PATH",
                        help="local folder of a metric's embedding model, e.g. "
                        "'multilingual-sent-transformer=/models/paraphrase-multilingual-MiniLM-L12-v2'")
    add_limit_args(parser)
    output.add_flags(parser, "debug logging, and the kit's own frames in the model's tracebacks")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("limit", "sample"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    if args.resume and args.predictions:
        parser.error("--resume continues a model run; --predictions scores without a model: choose one")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in its folder; --overwrite removes it first: choose one")
    return args


def add_limit_args(parser: argparse.ArgumentParser) -> None:
    """The grader's limits: shared with the container entry point."""
    group = parser.add_argument_group("grader limits (submission/harness/profiles.yaml)")
    group.add_argument("--profile", default=DEFAULT_PROFILE,
                       help="hardware profile whose limits apply: phase2, phase1, cpu or your own "
                            f"(default: {DEFAULT_PROFILE})")
    group.add_argument("--profiles-file", action="append", default=[], metavar="YAML",
                       help="add (or replace) profiles from this YAML file, same shape as "
                            "submission/harness/profiles.yaml")
    group.add_argument("--track", help="track whose time budget applies (a challenge_id, e.g. "
                       "amazon-kdd-cup-24-shopping-knowledge-reasoning); default: the data's only track, "
                       "else amazon-kdd-cup-24-all-around")
    group.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                       help="multiply every time limit by X, e.g. 0.5 on a GPU twice as fast as a T4 (default: 1)")
    group.add_argument("--no-limits", action="store_true",
                       help="enforce no limit (time, RAM, GPU), for debugging; everything is still measured")
    group.add_argument("--resume", metavar="OUTPUT_DIR",
                       help="continue the run in OUTPUT_DIR after its last complete batch")


def interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reporter = output.setup(args.verbose, args.quiet)
    signal.signal(signal.SIGTERM, interrupted)  # a SIGTERM ends the run like Ctrl-C: the model's processes too
    try:
        return local_run(LocalOptions(**vars(args)), reporter)
    except KitError as exc:
        return reporter.fail(exc)


if __name__ == "__main__":
    sys.exit(main())
