"""``python -m submission enqueue``: put one grade on the queue and print its id (stdout; notes on stderr).

Every input is checked first (``submission/grading/enqueue.py``); this module parses the command line.
"""

from __future__ import annotations

import argparse

from ..grading.enqueue import build_request, notes_before_sending
from ..grading.queue import DEFAULT_PRIORITY, MAX_PRIORITY, producer_app, send
from . import output

EPILOG = """examples:
  python -m submission enqueue --broker redis://broker.example:6379/0 --image-file /shared/images/team-a-v3.tar \\
      --track amazon-kdd-cup-24-all-around --submission team-a
  python -m submission enqueue --broker redis://broker.example:6379/0 --image registry.example/team-b:v1 \\
      --profile phase2 --track amazon-kdd-cup-24-shopping-knowledge-reasoning --submission team-b --priority 8

Prints the grade's id on stdout. --image-file must be on storage every worker reads (the same path
on each); --image must be an image the workers have or can pull. The profile (and so the queue: one per
GPU count) comes from the image's aicrowd.json ("gpu": false -> cpu, else phase2) unless --profile.
"""


def build_parser(prog: str = "python -m submission enqueue") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Put one grade on the queue; prints its id.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True, help="broker URL: redis://HOST:PORT/DB or amqp://USER:PASS@HOST/VHOST")
    parser.add_argument("--backend", help="result backend, a Redis URL (default: the broker, when that is Redis)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="an image tag the workers have or can pull")
    source.add_argument("--image-file", help="a `docker save` tarball on storage every worker reads")
    parser.add_argument("--track", required=True, help="the track graded (a challenge_id)")
    parser.add_argument("--submission", required=True, help="the submission's name (a folder of the results)")
    parser.add_argument("--priority", type=int, default=DEFAULT_PRIORITY, choices=range(MAX_PRIORITY + 1),
                        metavar=f"0-{MAX_PRIORITY}", help=f"higher goes first (default: {DEFAULT_PRIORITY})")
    parser.add_argument("--profile", help="the hardware profile (default: from the image's aicrowd.json)")
    parser.add_argument("--profiles-file", action="append", default=[], metavar="YAML",
                        help="more profiles, the same file the workers are given")
    output.add_flags(parser)
    return parser


def main(argv: list[str], prog: str = "python -m submission enqueue") -> int:
    """0 queued (bad input, a broker that does not answer: a KitError, 2 in ``cli.main``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    reporter = output.setup(args.verbose, args.quiet)
    request = build_request(args)
    app, where = producer_app(args.broker, args.backend)
    for note in notes_before_sending(app, request):
        reporter.step(f"note: {note}")
    send(app, request, where)
    reporter.step(f"queued {request.submission} on {request.track}: profile {request.profile}, queue {request.queue}, "
          f"priority {request.priority}")
    reporter.result(request.grade_id)
    return 0
