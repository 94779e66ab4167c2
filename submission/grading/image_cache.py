"""What a build leaves behind, and what the image is made of.

The classic builder keeps every stage's images. ``tidy_after_build`` removes what no later build needs
(the context stage's image, which holds the whole build context; the images that the build's tags
pointed to before, once untagged) and tags each dependency stage's last image
``<repository>-build-cache:<stage>``, so that it is neither a dangling ``<none>`` image nor lost: the next
build reuses its layers. ``remove_after_failure`` removes what a failed build left untagged (Docker
refuses to remove an image that another image or a container still uses). ``largest_layers`` reads
``docker history``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .build_log import Stage

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.images import Image

logger = logging.getLogger(__name__)

CONTEXT_STAGE = "context"  # the Dockerfile's stage holding the whole build context
CACHE_SUFFIX = "-build-cache"
LARGEST_LAYERS = 4


@dataclass(frozen=True)
class Layer:
    size_bytes: int
    created_by: str  # the instruction, as ``docker history`` shows it


def image_id(client: DockerClient, ref: str) -> str | None:
    import docker

    try:
        return client.images.get(ref).id
    except docker.errors.ImageNotFound:
        return None


def cache_tag(tag: str, stage: str) -> str:
    """``<repository>-build-cache:<stage>`` for an image tagged ``<repository>:<tag>``."""
    last = tag.rsplit("/", 1)[-1]
    repository = tag.rsplit(":", 1)[0] if ":" in last else tag
    return f"{repository}{CACHE_SUFFIX}:{stage}"


def cache_stages(image: Image, stages: Sequence[Stage]) -> list[Stage]:
    """The named stages (the context stage aside) whose last image the built ``image`` does not descend
    from: untagged, they would be dangling ``<none>`` images, and a cleanup would lose the build cache."""
    ancestors = {h.get("Id", "").removeprefix("sha256:") for h in image.history()}
    return [s for s in stages[:-1] if s.name and s.name.lower() != CONTEXT_STAGE and s.image_id
            and not any(a.startswith(s.image_id) for a in ancestors)]


def _remove(client: DockerClient, image: str) -> bool:
    """Remove an image and its untagged parents that nothing else uses; False when Docker refuses (a
    container or a child image still uses it)."""
    import docker

    try:
        client.images.remove(image, noprune=False)
        return True
    except docker.errors.APIError as exc:
        logger.debug("kept %s: %s", image, exc)
        return False


def remove_context_stage(client: DockerClient, stages: Sequence[Stage]) -> list[str]:
    """The context stage's image (the whole build context: weights, wheelhouse, code): no image needs it."""
    found = [s.image_id for s in stages if s.name.lower() == CONTEXT_STAGE and s.image_id]
    return [f"{image[:12]} (the {CONTEXT_STAGE} stage)" for image in found if _remove(client, image)]


def remove_after_failure(client: DockerClient, stages: Sequence[Stage]) -> list[str]:
    """After a failed build: each stage's last image that nothing tagged and nothing builds on (the steps
    done before the failure, the wheelhouse copied in among them), with its untagged parents."""
    removed = []
    for stage in stages:
        if stage.image_id and _tags(client, stage.image_id) == [] and _remove(client, stage.image_id):
            removed.append(f"{stage.image_id[:12]} (the {stage.name or 'last'} stage)")
    return removed


def tidy_after_build(client: DockerClient, image: Image, tag: str, stages: Sequence[Stage],
                     before: dict[str, str | None]) -> list[str]:
    """After a successful build of ``image`` as ``tag``: the dependency stages tagged as cache, the context
    stage's image removed, and the images that ``before`` (ref -> image id before the build) named, once
    untagged, removed. Returns what was removed."""
    before = dict(before)
    for stage in cache_stages(image, stages):
        ref = cache_tag(tag, stage.name)
        before.setdefault(ref, image_id(client, ref))
        repository, _, name = ref.rpartition(":")
        client.api.tag(stage.image_id, repository, name, force=True)
    removed = remove_context_stage(client, stages)
    keep = {image_id(client, ref) for ref in before}
    for ref, old in before.items():
        if old is None or old in keep or _tags(client, old) != []:
            continue
        if _remove(client, old):
            removed.append(f"{old[7:19]} (was {ref})")
    return removed


def _tags(client: DockerClient, image: str) -> list[str] | None:
    import docker

    try:
        return client.images.get(image).tags
    except docker.errors.ImageNotFound:
        return None


def largest_layers(image: Image, n: int = LARGEST_LAYERS) -> tuple[Layer, ...]:
    """The image's ``n`` largest layers, from ``docker history``."""
    layers = [Layer(int(h.get("Size") or 0), instruction(h.get("CreatedBy") or "") or "(the base image)")
              for h in image.history()]
    return tuple(sorted((layer for layer in layers if layer.size_bytes), key=lambda layer: -layer.size_bytes)[:n])


def instruction(created_by: str) -> str:
    text = re.sub(r"^/bin/sh -c #\(nop\)\s*", "", created_by.strip())
    text = re.sub(r"\s*(?:dir|file|multi):[0-9a-f]{16,}\s*", " ... ", text)  # content hashes: noise here
    return re.sub(r"^/bin/sh -c ", "RUN ", text).strip()
