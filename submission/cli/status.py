"""``python -m submission status``: where every grade stands (queued, running, done, failed) and the live
workers, from the result backend (``submission/grading/status.py``); this module parses the command line.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from ..grading.queue import producer_app
from ..grading.status import collect, format_status
from . import output


def build_parser(prog: str = "python -m submission status") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Where every grade stands: queued, running, done, "
                                     "failed, per submission and track; and the live workers.")
    parser.add_argument("--broker", required=True, help="broker URL, as given to the workers")
    parser.add_argument("--backend", help="result backend, a Redis URL (default: the broker, when that is Redis)")
    parser.add_argument("--results", metavar="DIR", help="the workers' results folder: adds each grade's run folder")
    parser.add_argument("--json", action="store_true", help="print the grades and workers as JSON")
    output.add_flags(parser)
    return parser


def main(argv: list[str], prog: str = "python -m submission status") -> int:
    """0 (a broker that does not answer: a KitError, 2 in ``cli.main``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    reporter = output.setup(args.verbose, args.quiet)
    app, _ = producer_app(args.broker, args.backend)
    rows, workers = collect(app, Path(args.results) if args.results else None)
    if args.json:
        reporter.result(json.dumps({"grades": [asdict(r) for r in rows], "workers": workers}, indent=2, default=str))
    else:
        reporter.result(format_status(rows, workers, time.time()))
    return 0
