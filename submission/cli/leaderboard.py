"""``python -m submission leaderboard DIR...``: graded runs merged into a Markdown and CSV leaderboard."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..fileio import replace_file
from ..grading.leaderboard import find_score_files, load_run, merge, to_csv, to_markdown
from . import output

EPILOG = """examples:
  python -m submission leaderboard graded/                      # every scores.json under graded/
  python -m submission leaderboard graded/team-a graded/team-b --output-dir leaderboard/

Prints the Markdown table; with --output-dir also writes leaderboard.md and leaderboard.csv.
"""


def main(argv: list[str], prog: str = "python -m submission leaderboard") -> int:
    """0 (no scores.json found, or a broken one: a KitError, 2 in ``cli.main``)."""
    parser = argparse.ArgumentParser(prog=prog, description="Merge graded runs into a leaderboard.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="DIR", help="graded run folders (or scores.json files)")
    parser.add_argument("--output-dir", help="write leaderboard.md and leaderboard.csv here")
    output.add_flags(parser)
    args = parser.parse_args(argv)
    reporter = output.setup(args.verbose, args.quiet)
    rows = merge([load_run(path) for path in find_score_files(args.paths)])
    markdown = to_markdown(rows)
    reporter.result(markdown)
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        replace_file(out / "leaderboard.md", markdown + "\n")
        replace_file(out / "leaderboard.csv", to_csv(rows))
        reporter.result(f"\nwrote {out / 'leaderboard.md'} and {out / 'leaderboard.csv'}")
    return 0
