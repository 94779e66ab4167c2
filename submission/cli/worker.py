"""``python -m submission worker``: a compute worker for this host (a Celery worker that runs grades).

The worker itself is ``submission/grading/worker.py``; this module parses the command line.
"""

from __future__ import annotations

import argparse

from ..grading.queue import check_reachable, endpoints, make_app, safe_url
from ..grading.worker import DEFAULT_GRACE_S, build_config, remove_leftovers, run_worker
from . import output

EPILOG = """examples:
  python -m submission worker --broker redis://broker.example:6379/0 --results /shared/results \\
      --tracks-dir /secret/tracks --gpus 0,1,2,3 --profile phase2
  python -m submission worker --broker amqp://grader:PASSWORD@rabbit.example:5672// \\
      --backend redis://broker.example:6379/0 --results /shared/results --tracks-dir /secret/tracks

--tracks-dir holds one folder per track id (amazon-kdd-cup-24-all-around, ...), each with truth.json
(development format, the answers) and optionally inputs.json (test format; default: made from the truth).
Each grade is written to --results DIR/<submission>/<track>/. Stop with SIGTERM (or Ctrl-C): running
grades finish first. SIGQUIT (or Ctrl-C twice) puts them back on the queue at once. See
docs/grading-at-scale.md.
"""


def build_parser(prog: str = "python -m submission worker") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="A compute worker: takes grades from the queue and "
                                     "runs each with the grader, on this host.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True, help="broker URL: redis://HOST:PORT/DB or amqp://USER:PASS@HOST/VHOST")
    parser.add_argument("--backend", help="result backend, a Redis URL (default: the broker, when that is Redis)")
    parser.add_argument("--results", required=True, metavar="DIR", help="where each grade's run folder goes")
    parser.add_argument("--tracks-dir", required=True, metavar="DIR", help="one folder per track id with truth.json")
    parser.add_argument("--gpus", metavar="IDS", help="the host's GPUs this worker hands out, e.g. 0,1,2,3 (default: "
                        "none: CPU profiles only)")
    parser.add_argument("--concurrency", type=int, help="grades at once (default: one per GPU; 1 without GPUs)")
    parser.add_argument("--name", help="the worker's name, unique per host (default: shopbench@HOSTNAME)")
    parser.add_argument("--profile", action="append", default=[], metavar="NAME",
                        help="grade this profile (repeatable; default: every profile its GPUs fit, e.g. phase1 and "
                             "phase2 with 4)")
    parser.add_argument("--profiles-file", action="append", default=[], metavar="YAML", help="more profiles, as grade")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X", help="multiply every time limit by X")
    parser.add_argument("--grace-s", type=float, default=DEFAULT_GRACE_S, metavar="S",
                        help="a container is killed at the track budget plus S seconds (default: 60)")
    parser.add_argument("--redelivery-s", type=float, metavar="S", help="Redis hands a grade whose worker died to "
                        "another worker after S seconds (default: twice the longest budget plus grace, plus 10 min)")
    parser.add_argument("--embedding-model", action="append", default=[], metavar="METRIC=PATH",
                        help="local folder of a metric's embedding model, passed to grade")
    output.add_flags(parser)
    return parser


def main(argv: list[str], prog: str = "python -m submission worker") -> int:
    """Runs until a shutdown; its exit status (bad input: a KitError, 2 in ``cli.main``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    output.setup(args.verbose, args.quiet, daemon=True)  # a service's log: timestamps, INFO by default
    where = endpoints(args.broker, args.backend)
    config = build_config(args, where.redis_broker)
    app = make_app(where, config.redelivery_s)
    check_reachable(app, where)
    removed = remove_leftovers(config.name)
    return run_worker(app, config, args, removed, safe_url(where.broker))
