"""``python -m submission check``: what the grader would refuse, found before you push."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..grading.check import MAX_SUBMISSION_BYTES, SAMPLE_DATA, CheckOptions, format_results, run_checks
from . import output

EPILOG = """examples:
  python -m submission check                      # the current folder
  python -m submission check --repo ../my-submission --no-smoke

exit status: 0 no check failed (warnings allowed); 1 a check failed.
"""


def main(argv: list[str], prog: str = "python -m submission check") -> int:
    """0 no check failed (warnings allowed), 1 a check failed."""
    parser = argparse.ArgumentParser(prog=prog, description="Validate a submission before pushing it.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=".", help="the submission's repository (default: the current folder)")
    parser.add_argument("--no-smoke", action="store_true", help="skip the smoke run of the model")
    parser.add_argument("--data", default=str(SAMPLE_DATA), help="where the smoke run's questions come from "
                        "(default: the kit's data/sample.json)")
    parser.add_argument("--max-gb", type=float, default=MAX_SUBMISSION_BYTES / 1e9,
                        help=f"the size cap in GB (default: {MAX_SUBMISSION_BYTES / 1e9:g}, the competition's)")
    output.add_flags(parser)
    args = parser.parse_args(argv)
    reporter = output.setup(args.verbose, args.quiet)
    options = CheckOptions(smoke=not args.no_smoke, data=Path(args.data), max_bytes=int(args.max_gb * 1e9))
    results = run_checks(args.repo, options)
    reporter.result(format_results(results))
    return 1 if any(r.status == "fail" for r in results) else 0
