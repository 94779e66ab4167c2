"""``python -m submission leaderboard DIR...``: graded runs merged into a Markdown, CSV and HTML leaderboard."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..fileio import replace_file
from ..grading.leaderboard import find_score_files, load_run, merge, to_csv, to_markdown
from ..grading.leaderboard_html import write_html
from . import output

EPILOG = """examples:
  python -m submission leaderboard graded/                      # every scores.json under graded/
  python -m submission leaderboard graded/team-a graded/team-b --output-dir leaderboard/
  python -m submission leaderboard --results /shared/results --output-dir public/   # the workers' results

Prints the Markdown table; with --output-dir also writes leaderboard.md, leaderboard.csv and leaderboard.html.
"""


def build_parser(prog: str = "python -m submission leaderboard") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Merge graded runs into a leaderboard.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", metavar="DIR", help="graded run folders (or scores.json files)")
    parser.add_argument("--results", action="append", default=[], metavar="DIR",
                        help="a workers' results folder (python -m submission worker --results DIR)")
    parser.add_argument("--output-dir", help="write leaderboard.md, leaderboard.csv and leaderboard.html here")
    output.add_flags(parser)
    return parser


def main(argv: list[str], prog: str = "python -m submission leaderboard") -> int:
    """0 (no scores.json found, or a broken one: a KitError, 2 in ``cli.main``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not args.paths and not args.results:
        parser.error("name the graded runs: DIR ... or --results DIR")
    reporter = output.setup(args.verbose, args.quiet)
    rows = merge([load_run(path) for path in find_score_files(args.paths + args.results)])
    markdown = to_markdown(rows)
    reporter.result(markdown)
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        replace_file(out / "leaderboard.md", markdown + "\n")
        replace_file(out / "leaderboard.csv", to_csv(rows))
        page = write_html(out, rows)
        reporter.result(f"\nwrote {out / 'leaderboard.md'}, {out / 'leaderboard.csv'} and {page}")
    return 0
