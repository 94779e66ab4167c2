#!/usr/bin/env python3
"""The container's entry point: run the participant's model over the mounted questions, under the limits
the runner passed, and write the predictions and a run report to the mounted output folder.

    python3 docker/entrypoint.py --input /shopbench/input --output /shopbench/output

The inputs (read-only) hold questions.jsonl in test format and job.json (model, seed, limits); see
submission/grading/container_contract.py. Scoring happens on the host, outside the container: nothing here imports torch
or the scorers, and the answers are never mounted.

Exit status: 0 every question answered within the limits; 1 a failure verdict; 2 a bad job or model name.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(APP_DIR))

from submission.errors import KitError  # noqa: E402
from submission.grading.container_contract import outcome_to_report, read_inputs, write_report  # noqa: E402
from submission.harness.outcome import ModelSpec, Progress
from submission.harness.runner import run_model  # noqa: E402


class ProgressLog:
    """A line on stdout (the container's log) at most every ``every_s`` seconds."""

    def __init__(self, every_s: float = 30.0):
        self.every_s, self.shown = every_s, time.monotonic()

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self.shown >= self.every_s or progress.answered == progress.total:
            self.shown = now
            print(f"answered {progress.answered:,} of {progress.total:,} in {progress.elapsed_s:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="folder holding questions.jsonl and job.json (read-only)")
    parser.add_argument("--output", required=True, help="folder for predictions.jsonl and run_report.json")
    args = parser.parse_args(argv)
    out_dir = Path(args.output)
    try:
        questions, job = read_inputs(args.input)
        spec = ModelSpec(model=job.model, repo=str(APP_DIR), seed=job.seed)
        print(f"running {job.model or 'models.user_config:UserModel'} on {len(questions):,} questions, "
              f"profile {job.limits.profile}", flush=True)
        outcome = run_model(spec, questions, out_dir, job.limits, on_progress=ProgressLog())
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        write_report(out_dir, outcome_to_report(None, error=str(exc)))
        return 2
    write_report(out_dir, outcome_to_report(outcome))
    print(f"verdict: {outcome.verdict}", flush=True)
    return 0 if outcome.verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
