"""``python -m submission check``: what the grader would refuse, found before you push."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..grading.check import MAX_SUBMISSION_BYTES, SAMPLE_DATA, CheckOptions, format_results, run_checks
from . import output
from .containers import key_values

EPILOG = """examples:
  python -m submission check                      # the current folder; the smoke run builds its image
  python -m submission check --base-image shopbench-base:bookworm     # offline (docker/make_offline_base_image.sh)
  python -m submission check --repo ../my-submission --image team-a:v3
  python -m submission check --repo ../my-submission --no-smoke

The smoke run answers 3 sample questions in the submission's image, built from docker/Dockerfile and run
the grader's way, so that a package or a file that the image lacks fails here. Without a Docker daemon
(or with --smoke-in host) it runs in this Python environment instead: a warning at best.

exit status: 0 no check failed (warnings allowed); 1 a check failed.
"""


def build_parser(prog: str = "python -m submission check") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Validate a submission before pushing it.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=".", help="the submission's repository (default: the current folder)")
    parser.add_argument("--no-smoke", action="store_true", help="skip the smoke run of the model")
    parser.add_argument("--data", default=str(SAMPLE_DATA), help="where the smoke run's questions come from "
                        "(default: the kit's data/sample.json)")
    parser.add_argument("--max-gb", type=float, default=MAX_SUBMISSION_BYTES / 1e9,
                        help=f"the size cap in GB (default: {MAX_SUBMISSION_BYTES / 1e9:g}, the competition's)")
    smoke = parser.add_argument_group("the smoke run's image")
    smoke.add_argument("--smoke-in", choices=("image", "host"), default="image",
                       help="image: build the image and answer inside it (default; this Python environment when no "
                       "Docker daemon answers, with a warning); host: this Python environment")
    smoke.add_argument("--image", help="answer in this image instead of building the repository")
    smoke.add_argument("--tag", help="the tag to build (default: shopbench-<repository folder>:latest)")
    smoke.add_argument("--base-image", help="BASE_IMAGE build argument (default: the Dockerfile's CUDA image; offline: "
                       "make one with docker/make_offline_base_image.sh)")
    smoke.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="more build arguments")
    output.add_flags(parser)
    return parser


def main(argv: list[str], prog: str = "python -m submission check") -> int:
    """0 no check failed (warnings allowed), 1 a check failed."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    reporter = output.setup(args.verbose, args.quiet)
    options = CheckOptions(smoke=not args.no_smoke, data=Path(args.data), max_bytes=int(args.max_gb * 1e9),
                           smoke_in=args.smoke_in, image=args.image, tag=args.tag, base_image=args.base_image,
                           build_args=key_values(args.build_arg, "--build-arg"))
    results = run_checks(args.repo, options)
    reporter.result(format_results(results))
    return 1 if any(r.status == "fail" for r in results) else 0
