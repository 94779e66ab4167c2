"""``python -m submission compare RUN_A RUN_B``: the comparison table, and compare.html."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..fileio import replace_file
from ..reports.compare import COMPARE_FILE, delta_chart, format_comparison, render_compare
from ..reports.comparison import compare_folders
from ..reports.intervals import RESAMPLES
from . import output

PROG = "python -m submission compare"
DESCRIPTION = "Compare two runs on the same questions: is the difference real, and which questions changed?"
EPILOG = """examples:
  python -m submission compare runs/baseline runs/new-prompt      # writes runs/new-prompt/compare.html
  python -m submission compare runs/a runs/b --output runs/a-vs-b.html --resamples 5000 --seed 1
  python -m submission compare grader-out/ runs/local --data data/development.json

reading it: delta = B - A. The interval is a 95% paired bootstrap interval (the same resampled
questions for both runs); when it excludes 0 the difference is unlikely to be noise. p is the
two-sided bootstrap p-value: twice the share of resampled deltas on the other side of 0 (0 itself
counted there), at most 1; "<0.002" means no resample of 1,000 crossed 0.
"""


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", metavar="RUN_A", help="output folder of the first run (the baseline)")
    parser.add_argument("run_b", metavar="RUN_B", help="output folder of the second run (the change)")
    parser.add_argument("--output", metavar="FILE",
                        help=f"HTML file to write (default: RUN_B/{COMPARE_FILE}, in the folder of the change)")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, metavar="N",
                        help=f"paired bootstrap resamples (default: {RESAMPLES})")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the resampling (default: 0)")
    parser.add_argument("--data", metavar="FILE", help="the data file both runs used, when the path in their "
                        "results.json is not on this machine (e.g. a grader's container path)")
    output.add_flags(parser)
    return parser


def main(argv: list[str], prog: str = PROG) -> int:
    """Print the comparison and write the HTML; 0 (bad input raises a KitError: exit status 2 in ``cli.main``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error("--resamples must be at least 1")
    reporter = output.setup(args.verbose, args.quiet)
    comparison = compare_folders(args.run_a, args.run_b, args.data, seed=args.seed, resamples=args.resamples)
    path = Path(args.output) if args.output else Path(args.run_b) / COMPARE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, render_compare(comparison, delta_chart(comparison)))
    reporter.result(format_comparison(comparison))
    reporter.result(f"\nwrote {path}")
    return 0
