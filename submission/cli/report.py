"""``python -m submission report RUN_DIR``: (re)write report.html and scores.png for a run folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..reports.html import CHART_FILE, REPORT_FILE, write_reports_from_run_dir
from ..reports.intervals import RESAMPLES
from ..reports.results import RESULTS_FILE
from . import output

EPILOG = """examples:
  python -m submission report runs/try1
  python -m submission report grader-out/ --data data/development.json
"""


def build_parser(prog: str = "python -m submission report") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Write report.html and scores.png into a run folder of local_evaluation.py, the "
        "Docker runner or the grader.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (results.json, predictions.jsonl)")
    parser.add_argument("--data", metavar="FILE", help="the data file, when the path in results.json is not here")
    parser.add_argument("--seed", type=int, metavar="S", help="seed of the resampling (default: the run's seed)")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, metavar="N",
                        help=f"bootstrap resamples (default: {RESAMPLES})")
    output.add_flags(parser)
    return parser


def main(argv: list[str], prog: str = "python -m submission report") -> int:
    """Write the report; 0 (bad input raises a KitError: exit status 2 in ``cli.main``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error("--resamples must be at least 1")
    reporter = output.setup(args.verbose, args.quiet)
    intervals = write_reports_from_run_dir(args.run_dir, args.data, args.seed, args.resamples)
    results = json.loads((Path(args.run_dir) / RESULTS_FILE).read_text(encoding="utf-8"))
    low, high = intervals["all_around"]
    level = f"{intervals['confidence']:.0%}"
    reporter.result(f"all-around score: {results['all_around']:.4f}  {level} interval [{low:.4f}, {high:.4f}]")
    reporter.result(f"wrote {Path(args.run_dir) / REPORT_FILE} and {Path(args.run_dir) / CHART_FILE}")
    return 0
