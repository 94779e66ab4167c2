"""What ``docker run`` and ``grade`` share: their flags, the image to run, the run with its progress bar
and the report printed after it; and Docker's refusals as kit errors (``error: Docker refused: ...``)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, KitError
from ..grading.container_channel import Interrupt
from ..grading.container_runner import DEFAULT_GRACE_S, ContainerSettings
from ..grading.grader import RunRequest, ScoredRun, run_and_score
from ..grading.images import BuildOptions, BuildResult, build_image, default_tag, describe_build, load_image
from ..harness.profiles import Limits, Profile, budget_track_for, get_profile, limits_for, load_profiles
from ..reports.run_folder import written_files
from ..reports.table import format_model_info, format_table
from ..scoring.data import Question, short_track
from .output import REPORTER

if TYPE_CHECKING:
    from docker import DockerClient


def parser(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_limit_arguments(parser: argparse.ArgumentParser, track_help: str) -> None:
    group = parser.add_argument_group("grader limits (submission/harness/profiles.yaml)")
    group.add_argument("--profile", help="hardware profile (default: from aicrowd.json: 'gpu': false -> cpu, "
                       "else phase2)")
    group.add_argument("--profiles-file", action="append", default=[], metavar="YAML",
                       help="add (or replace) profiles from this YAML file, same shape as "
                       "submission/harness/profiles.yaml")
    group.add_argument("--track", help=track_help)
    group.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                       help="multiply every time limit by X (default: 1)")
    group.add_argument("--grace-s", type=float, default=None, metavar="S",
                       help="the container is killed at the track budget plus S seconds (default: 60)")
    group.add_argument("--shm-gb", type=float, metavar="GB", help="size of /dev/shm (default: half the profile's RAM)")
    group.add_argument("--embedding-model", action="append", default=[], metavar="METRIC=PATH",
                       help="local folder of a metric's embedding model (for scoring on the host)")
    group.add_argument("--seed", type=int, default=0, help="SHOPBENCH_SEED for the model (default: 0)")


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("building (when no image is given)")
    group.add_argument("--base-image", help="BASE_IMAGE build argument (default: the Dockerfile's CUDA 12 image; "
                       "offline: make one with docker/make_offline_base_image.sh)")
    group.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="more build arguments")
    group.add_argument("--tag", help="image tag (default: shopbench-<repository folder>:latest)")


def key_values(pairs: Sequence[str], flag: str) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise KitError(f"{flag} '{pair}': expected KEY=VALUE")
        values[key.strip()] = value.strip()
    return values


@contextlib.contextmanager
def docker_refusals() -> Iterator[None]:
    """Docker's own errors (no daemon, a failed pull, a refused option) as kit errors: exit status 2."""
    import docker

    try:
        yield
    except docker.errors.DockerException as exc:
        raise KitError(f"Docker refused: {exc}") from exc


def resolve_limits(args: argparse.Namespace, profile_name: str, questions: Sequence[Question], track: str | None,
                   enabled: bool = True) -> tuple[Profile, Limits]:
    profile = get_profile(args.profile or profile_name, load_profiles(*args.profiles_file))
    return profile, limits_for(profile, budget_track_for(questions, track), args.time_scale, enabled)


def settings_from(args: argparse.Namespace, image: str, model: str | None = None) -> ContainerSettings:
    if args.grace_s is not None and args.grace_s < 0:
        raise ConfigError(f"--grace-s must be at least 0, got {args.grace_s}")
    shm = None if args.shm_gb is None else int(args.shm_gb * 1e9)
    grace = DEFAULT_GRACE_S if args.grace_s is None else args.grace_s
    return ContainerSettings(image=image, model=model, seed=args.seed, grace_s=grace, shm_bytes=shm)


def image_or_build(client: DockerClient, args: argparse.Namespace, repo: Path | None) -> str:
    """--image (checked to exist), --image-file (loaded) or the image built from ``repo``."""
    import docker

    if getattr(args, "image_file", None):
        ref = load_image(client, args.image_file)
        REPORTER.info(f"loaded {ref} from {args.image_file}")
        return ref
    if args.image:
        try:
            client.images.get(args.image)
        except docker.errors.ImageNotFound:
            raise ConfigError(f"--image {args.image}: no such image here; build it with `python -m submission docker "
                              "build` or load it with `docker load -i FILE`") from None
        return args.image
    if repo is None:  # the commands' flags always give an image, an image file or a repository
        raise ConfigError("no image to run: give --image, --image-file or --repo")
    options = BuildOptions(args.tag or default_tag(repo), args.base_image, key_values(args.build_arg, "--build-arg"))
    return build(client, repo, options).tag


def build(client: DockerClient, repo: Path, options: BuildOptions, verbose: bool = False) -> BuildResult:
    """build_image, showing each step as it starts (every line with ``verbose``) and the summary."""
    if not (repo / ".dockerignore").is_file():
        REPORTER.step(f"note: {repo / '.dockerignore'} is missing: .git, data and runs go into the build context; "
                      "copy docker/dockerignore.template there")

    def echo(line: str) -> None:
        if verbose or line.startswith("Step "):
            REPORTER.step(line)

    result = build_image(client, repo, options, echo)
    REPORTER.result(describe_build(result))
    return result


class ContainerProgress:
    """A progress bar fed with the count of lines in the container's predictions.jsonl."""

    def __init__(self, total: int, budget_s: float | None) -> None:
        self.bar, self.total = REPORTER.progress(total, "container"), total
        self.budget_s, self.shown = budget_s, ""

    def __call__(self, answered: int, elapsed_s: float) -> None:
        text = f"{elapsed_s / 60:.1f} of {self.budget_s / 60:g} min budget" if self.budget_s else ""
        if text != self.shown:
            self.shown = text
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(min(answered, self.total) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def describe_run(limits: Limits, image: str) -> str:
    if not limits.enforced:
        return f"image {image}; limits: none (--no-limits)"
    return (f"image {image}; profile {limits.profile}: {_shown(limits.seconds_per_sample, 's')} per sample, budget "
            f"{_shown(limits.budget_s, 'min', 60)} for {short_track(limits.budget_track)}, "
            f"RAM {_shown(limits.ram_bytes, 'GB', 1e9)}, {limits.vcpus} CPUs, {limits.gpus} GPU(s); no network")


def _shown(value: float | None, unit: str, per_unit: float = 1.0) -> str:
    """A limit as shown: the value divided by ``per_unit``, in ``unit``; "none" where none applies."""
    return "none" if value is None else f"{value / per_unit:g} {unit}"


def execute(client: DockerClient, request: RunRequest) -> tuple[ScoredRun, int | None]:
    """run_and_score with a progress bar, then the report; and the exit status a signal to this process asks
    for (130 after SIGINT, 143 after SIGTERM or SIGHUP: the container stopped and removed, the answers so far
    scored and written with the verdict ``interrupted``), or None."""
    REPORTER.info(describe_run(request.limits, request.settings.image))
    bar = ContainerProgress(len(request.questions), request.limits.budget_s)
    with Interrupt() as interrupt:
        try:
            scored = run_and_score(client, request, on_progress=bar, interrupt=interrupt)
        finally:
            bar.close()
        for note in scored.container.resources.notes:
            REPORTER.note(note)
        report(scored, request.out_dir)
    return scored, interrupt.exit_status


def report(scored: ScoredRun, out_dir: Path) -> None:
    """What local_evaluation.py prints after a run, plus the container's log when it failed."""
    outcome = scored.outcome
    failed = not outcome.verdict.ok
    if failed:
        REPORTER.result(f"\nPARTIAL RESULTS: {scored.n_answered} of {outcome.n_questions} questions answered")
    if scored.result is not None:
        REPORTER.result(format_table(scored.result, scored.results.get("intervals")))
    summary = format_model_info(scored.results.get("model_info"))
    if summary:
        REPORTER.result("\n" + "\n".join(summary))
    if failed:  # the verdict, once: on stderr, with the container's last lines
        what = "the model broke the interface" if outcome.verdict.status == "bad_output" else outcome.verdict.status
        REPORTER.error(f"{what}: {outcome.verdict.detail}")
        if scored.container.log_tail:
            REPORTER.error(f"last lines of the container's log ({scored.container.log_path}):\n"
                           f"{scored.container.log_tail}", prefix=False)
    else:
        REPORTER.result(f"\nverdict: {outcome.verdict}")
    REPORTER.result(f"container: {scored.container.wall_s:.1f} s wall time, exit code {scored.container.exit_code}")
    REPORTER.result(f"\nwrote {', '.join(written_files(scored.result))} in {out_dir}")
