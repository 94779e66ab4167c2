"""``check``'s smoke run: the model answers a few sample questions, in the submission's own image.

In the image (the default): the image is built from the repository (or ``--image`` is used) and run the
grader's way (``container_runner.run_container``: no network, read-only root, the profile of aicrowd.json) with
the time limits replaced by one budget. A package, a file or a converted model the image lacks fails here
as it would fail the grader. Where no Docker daemon answers, the run happens in this Python environment
instead and the result is at best a warning that says so: it cannot catch what the image lacks.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, KitError
from ..harness.outcome import RunOutcome
from ..harness.profiles import (
    DEFAULT_PROFILE,
    Limits,
    get_profile,
    limits_for,
    load_profiles,
)
from ..scoring.data import ALL_AROUND, Question
from .images import DOCKERFILE, BaseImageUnavailable, DockerUnavailable, PackageIndexUnreachable

if TYPE_CHECKING:
    from docker import DockerClient

LOG_LINES = 12  # of the container's log, shown when the smoke run fails
NOT_IN_IMAGE = "a package or file that the image lacks is not caught"


@dataclass(frozen=True)
class SmokeResult:
    status: str  # ok | warn | fail
    detail: str


@dataclass(frozen=True)
class SmokeOptions:
    where: str = "image"  # image (host when no Docker daemon answers, with a warning) | host
    timeout_s: float = 600.0
    image: str | None = None  # run this image instead of building the repository
    tag: str | None = None  # the tag to build (default: shopbench-<folder>:latest)
    base_image: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)


def smoke_run(repo: Path, questions: Sequence[Question], options: SmokeOptions) -> SmokeResult:
    if options.where == "host":
        return on_host(repo, questions, options, "--smoke-in host")
    from .images import connect

    try:
        client = connect()
    except DockerUnavailable as exc:
        return on_host(repo, questions, options, f"no Docker daemon: {exc}")
    return in_image(client, repo, questions, options)


# ---------------------------------------------------------------- in the image


def smoke_limits(repo: Path, timeout_s: float) -> Limits:
    """The grader's limits for the submission's profile (RAM, CPUs, scratch, the card's rules), its time
    limits replaced by one budget of ``timeout_s``."""
    from .aicrowd import load_aicrowd

    try:
        name = load_aicrowd(repo).profile_name
    except ConfigError:
        name = DEFAULT_PROFILE  # aicrowd.json's own check reports it
    limits = limits_for(get_profile(name, load_profiles()), ALL_AROUND)
    return dataclasses.replace(limits, seconds_per_sample=None, budget_s=timeout_s)


def _image(client: DockerClient, repo: Path, options: SmokeOptions) -> tuple[str, str]:
    """The image to run and how it was had; KitError when it cannot be built."""
    from .images import BuildOptions, build_image, default_tag, describe_build

    if options.image:
        client.images.get(options.image)
        return options.image, f"image {options.image}"
    if not (repo / DOCKERFILE).is_file():
        raise ConfigError(f"{repo / DOCKERFILE}: no such file; the grader builds the image from it (copy docker/ "
                          "from the ShopBench kit)")

    def echo(line: str) -> None:
        if line.startswith("Step "):
            print(line, file=sys.stderr, flush=True)

    print(f"smoke run: building the image of {repo} ...", file=sys.stderr, flush=True)
    build = BuildOptions(options.tag or default_tag(repo), options.base_image, dict(options.build_args))
    result = build_image(client, repo, build, echo)
    print(describe_build(result), file=sys.stderr, flush=True)
    return result.tag, f"image {result.tag} ({result.size_bytes / 1e9:.2f} GB, built in {result.seconds:.0f} s)"


def in_image(client: DockerClient, repo: Path, questions: Sequence[Question], options: SmokeOptions) -> SmokeResult:
    import docker

    from ..evaluate.pipeline import kept_answers
    from .container_runner import ContainerSettings, run_container
    from .grader import container_model_run

    try:
        image, how = _image(client, repo, options)
    except docker.errors.ImageNotFound:
        return SmokeResult("fail", f"--image {options.image}: no such image here; build it with `python -m "
                           "submission docker build`, or leave --image out to build it now")
    # this machine's problem, not the submission's: still not checked
    except (BaseImageUnavailable, PackageIndexUnreachable) as exc:
        return SmokeResult("fail", f"the image could not be built here, so the model did not run: {exc}")
    except KitError as exc:
        return SmokeResult("fail", f"the image did not build, so the grader's would not either: {exc}")
    limits = smoke_limits(repo, options.timeout_s)
    with tempfile.TemporaryDirectory(prefix="shopbench-check-") as tmp:
        try:
            run = run_container(client, questions, Path(tmp) / "container", limits, ContainerSettings(image=image))
            answers = kept_answers(run.records, questions, run.predictions_path)  # the host judge's own record
            outcome = container_model_run(run).judge(answers)
            records = answers.records
        except (KitError, docker.errors.DockerException) as exc:  # the model loop refused, GPUs absent, ...
            return SmokeResult("fail", f"in {how}: {exc}")
    if not outcome.verdict.ok:
        log = "\n".join(run.log_tail.splitlines()[-LOG_LINES:])
        return SmokeResult("fail", f"{outcome.verdict} (on {len(questions)} sample questions, in {how}, run the "
                           f"grader's way){f'; the container log ends:{chr(10)}{log}' if log else ''}")
    return SmokeResult("ok", f"{_answers(records, outcome)} in {how}, run the grader's way (no network, read-only "
                       f"root, profile {limits.profile})")


def _answers(records: Sequence[dict], outcome: RunOutcome) -> str:
    shown = ", ".join(json.dumps(r["output"][:30], ensure_ascii=False) for r in records)
    init = f"built in {outcome.init_s:.1f} s, " if outcome.init_s is not None else ""
    return f"{len(records)} answers ({init}{outcome.wall_s:.1f} s in all): {shown}"


# ---------------------------------------------------------------- in this Python environment


def on_host(repo: Path, questions: Sequence[Question], options: SmokeOptions, why: str) -> SmokeResult:
    """The smoke run in this process's Python environment: a failure fails, a success is only a warning."""
    from ..harness.outcome import ModelSpec
    from ..harness.predictions import PREDICTIONS_FILE, read_records
    from ..harness.runner import run_model

    limits = Limits(profile="check", budget_track=ALL_AROUND, budget_s=options.timeout_s)
    before = repository_state(repo)
    with tempfile.TemporaryDirectory(prefix="shopbench-check-") as tmp:
        outcome = run_model(ModelSpec(repo=str(repo)), questions, tmp, limits)
        records = read_records(Path(tmp) / PREDICTIONS_FILE) if (Path(tmp) / PREDICTIONS_FILE).is_file() else []
    written = sorted(path for path, state in repository_state(repo).items() if before.get(path) != state)
    where = f"in this Python environment, NOT in the submission's image ({why})"
    if not outcome.verdict.ok:
        return SmokeResult("fail", f"{outcome.verdict} (on {len(questions)} sample questions, {where}; see the "
                           "traceback above)")
    text = f"{_answers(records, outcome)}; but {where}: {NOT_IN_IMAGE}; run check where Docker runs"
    if written:
        more = f" (and {len(written) - 3} more)" if len(written) > 3 else ""
        text += (f"; and the model wrote into the repository ({', '.join(written[:3])}{more}), which is read-only in "
                 "the grader's container: write to /tmp or ~/.cache (size-capped scratch space) instead")
    return SmokeResult("warn", text)


SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".pytest_cache"}
RUNS_DIR = "runs"


def repository_state(repo: Path) -> dict[str, tuple[int, int]]:
    """Path -> (size, modification time) of the repository's files, Python's byte-code caches and runs/
    aside (Python skips writing byte-code on a read-only root)."""
    import os

    state = {}
    for folder, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not (d == RUNS_DIR and Path(folder) == repo)]
        for name in files:
            path = Path(folder) / name
            if path.suffix == ".pyc":
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            state[path.relative_to(repo).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return state
