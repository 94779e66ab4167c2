"""Images: reaching the Docker daemon, building a submission's image, saving, loading and reading it.

``build_image`` builds ``docker/Dockerfile`` of a repository (its ``.dockerignore`` respected) and says
which steps came from the cache; ``save_image`` and ``load_image`` move an image as a tarball (what
``grade --image-file`` reads); ``read_file_from_image`` reads a file without starting the image.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from ..errors import ConfigError, KitError
from ..fileio import replacing

DOCKERFILE = "docker/Dockerfile"
DEFAULT_BASE_IMAGE = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"  # the Dockerfile's default BASE_IMAGE
LOG_TAIL = 40  # lines of a failed build's log shown


class DockerUnavailable(KitError):
    """No Docker daemon answers."""


def connect():
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


@dataclass(frozen=True)
class BuildOptions:
    tag: str
    base_image: str | None = None  # None: the Dockerfile's default (the CUDA image)
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False


@dataclass(frozen=True)
class BuildStep:
    number: int
    instruction: str
    cached: bool


@dataclass(frozen=True)
class BuildResult:
    tag: str
    image_id: str
    size_bytes: int
    seconds: float
    steps: tuple[BuildStep, ...]

    def cached_steps(self, prefix: str) -> list[bool]:
        """Whether each step whose instruction starts with ``prefix`` came from the cache."""
        return [s.cached for s in self.steps if s.instruction.startswith(prefix)]


def default_tag(repo: str | Path) -> str:
    name = re.sub(r"[^a-z0-9_.-]+", "-", Path(repo).resolve().name.lower()).strip("-.") or "submission"
    return f"shopbench-{name}:latest"


def build_image(client, repo: str | Path, options: BuildOptions, echo: Callable[[str], None] | None = None
                ) -> BuildResult:
    """Build ``repo``/docker/Dockerfile with ``repo`` as the context; raises KitError if it fails."""
    repo = Path(repo).resolve()
    if not (repo / DOCKERFILE).is_file():
        raise ConfigError(f"{repo / DOCKERFILE}: no such file; copy docker/ from the ShopBench kit into your "
                          "repository")
    args = dict(options.build_args)
    if options.base_image:
        args["BASE_IMAGE"] = options.base_image
    started = time.perf_counter()
    steps: list[BuildStep] = []
    current: tuple[int, str] | None = None
    tail: list[str] = []
    image_id = None
    stream = client.api.build(path=str(repo), dockerfile=DOCKERFILE, tag=options.tag, buildargs=args, rm=True,
                              forcerm=True, decode=True, nocache=options.no_cache, pull=False)
    for chunk in stream:
        if "error" in chunk:
            raise KitError(f"docker build of {repo} failed: {chunk['error'].strip()}\n" + "".join(tail[-LOG_TAIL:]))
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        text = chunk.get("stream", "")
        if not text:
            continue
        tail.append(text)
        if echo:
            echo(text.rstrip("\n"))
        match = re.match(r"Step (\d+)/\d+ : (.*)", text.strip())
        if match:
            if current:
                steps.append(BuildStep(current[0], current[1], False))
            current = (int(match.group(1)), match.group(2))
        elif current and text.strip() == "---> Using cache":
            steps.append(BuildStep(current[0], current[1], True))
            current = None
    if current:
        steps.append(BuildStep(current[0], current[1], False))
    image = client.images.get(image_id or options.tag)
    return BuildResult(options.tag, image.id, int(image.attrs.get("Size", 0)), time.perf_counter() - started,
                       tuple(steps))


def save_image(client, ref: str, path: str | Path) -> int:
    """Write the image as a tarball that ``docker load -i`` (and ``grade --image-file``) reads; its size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = client.images.get(ref)
    with replacing(path, fsync=False) as handle:  # never through a link or a FIFO at the name
        for chunk in image.save(named=True):
            handle.write(chunk)
    return path.stat().st_size


def load_image(client, path: str | Path) -> str:
    """Load a tarball written by ``save_image`` (or ``docker save``); the loaded image's reference."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--image-file {path}: no such file")
    with path.open("rb") as handle:
        images = client.images.load(handle)
    if not images:
        raise ConfigError(f"{path}: holds no image; make it with `python -m submission docker build --save FILE`")
    image = images[0]
    return image.tags[0] if image.tags else image.id


def read_file_from_image(client, ref: str, path: str) -> str | None:
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
    return (f"built {result.tag} ({result.image_id[7:19]}): {result.size_bytes / 1e9:.2f} GB, "
            f"in {result.seconds:.1f} s; {cached} of {len(result.steps)} steps from the cache")
