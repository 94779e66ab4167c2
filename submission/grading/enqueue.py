"""``python -m submission enqueue``: put one grade on the queue and print its id.

Everything that can be checked here is checked before anything is sent, each with a clear error (exit
status 2): the track, the submission's name, the image file (it must exist; its ``aicrowd.json`` is read
from the tarball itself, without Docker), the profile and its GPUs (which pick the queue), and whether the
broker and the result backend answer (their URLs shown without passwords).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError, KitError, suggest
from ..harness.profiles import ALL_TRACKS, get_profile, load_profiles
from .aicrowd import AICROWD_FILE, loads_aicrowd
from .container_contract import CONTAINER_HOME
from .image_tar import read_from_saved_image
from .queue import (
    GradeRequest,
    live_workers,
    new_request,
    registry,
)

log = logging.getLogger(__name__)


AICROWD_PATH = f"{CONTAINER_HOME}/{AICROWD_FILE}"


def check_track(track: str) -> str:
    if track not in ALL_TRACKS:
        raise ConfigError(f"--track {track}: unknown track; {suggest(track, ALL_TRACKS)}known: {', '.join(ALL_TRACKS)}")
    return track


def profile_of_image(args: argparse.Namespace) -> str:
    """--profile, else the profile of the image's aicrowd.json (read from the file, or from local Docker)."""
    if args.profile:
        return args.profile
    if args.image_file:
        text, where = read_from_saved_image(args.image_file, AICROWD_PATH), f"{args.image_file}:{AICROWD_PATH}"
    else:
        text, where = _aicrowd_from_local_docker(args.image), f"{args.image}:{AICROWD_PATH}"
    if text is None:
        raise ConfigError(f"{where}: no such file in the image; pass --profile NAME to grade it anyway")
    return loads_aicrowd(text, where).profile_name


def _aicrowd_from_local_docker(image: str) -> str | None:
    import docker

    from .images import connect, read_file_from_image

    hint = ("pass --profile NAME (the workers pull the image when they grade it), or enqueue the image as a "
            "file with --image-file")
    try:
        client = connect()
    except KitError:
        raise ConfigError(f"--image {image}: no Docker daemon here to read its {AICROWD_FILE}; {hint}") from None
    try:
        return read_file_from_image(client, image, AICROWD_PATH)
    except docker.errors.ImageNotFound:
        raise ConfigError(f"--image {image}: not in this host's Docker, so its {AICROWD_FILE} cannot be read; "
                          f"{hint}") from None


def build_request(args: argparse.Namespace) -> GradeRequest:
    track = check_track(args.track)
    if args.image_file:
        path = Path(args.image_file)
        if not path.is_file():
            raise ConfigError(f"--image-file {path}: no such file; save the image with `python -m submission docker "
                              "build --save FILE` (or docker save) onto storage every worker reads")
    profiles = load_profiles(*args.profiles_file)
    profile = get_profile(profile_of_image(args), profiles)
    image_file = str(Path(args.image_file).resolve()) if args.image_file else None
    return new_request(args.submission, track, profile.name, profile.gpus, args.image, image_file, args.priority)


def notes_before_sending(app: Any, request: GradeRequest) -> list[str]:
    """What the organiser may want to know: no live worker serves the queue or the track; a duplicate."""
    notes = []
    workers = live_workers(app.backend.client)
    serving = [w for w in workers.values() if request.queue in w.get("queues", [])]
    if not serving:
        notes.append(f"no live worker takes {request.queue} now: the grade waits until one starts")
    elif not any(request.track in w.get("tracks", []) for w in serving):
        notes.append(f"no live worker on {request.queue} serves {request.track} (their --tracks-dir lacks it)")
    same = [r for r in registry(app) if (r.submission, r.track) == (request.submission, request.track)]
    if same:
        notes.append(f"{request.submission} was enqueued on this track before ({len(same)} time(s)); the grade "
                     "enqueued last is the one the results folder keeps")
    return notes

