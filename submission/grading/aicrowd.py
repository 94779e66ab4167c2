"""aicrowd.json: a submission's metadata, validated where it enters the kit.

    {"challenge_id": "amazon-kdd-cup-24-all-around", "authors": ["your-aicrowd-username"],
     "gpu": true, "description": "..."}

``challenge_id`` names the track (and so the time budget of ``profiles.yaml``); ``"gpu": false`` gives the
submission the ``cpu`` profile instead of the GPU grader's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, suggest
from ..harness.profiles import ALL_TRACKS, profile_name_for_aicrowd

AICROWD_FILE = "aicrowd.json"
REQUIRED = ("challenge_id", "authors", "gpu")
OPTIONAL = ("description", "debug")
PLACEHOLDER_AUTHOR = "your-aicrowd-username"


@dataclass(frozen=True)
class AicrowdConfig:
    challenge_id: str
    authors: tuple[str, ...]
    gpu: bool
    description: str = ""

    @property
    def track(self) -> str:
        return self.challenge_id

    @property
    def profile_name(self) -> str:
        """The hardware profile the grader gives this submission: ``cpu`` when gpu is false, else phase2."""
        return profile_name_for_aicrowd({"gpu": self.gpu})

    @property
    def placeholder_authors(self) -> bool:
        return PLACEHOLDER_AUTHOR in self.authors


def parse_aicrowd(raw: Any, where: str) -> AicrowdConfig:
    """Validate the parsed content of an aicrowd.json; ``where`` names the file in error messages."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a JSON object with {', '.join(REQUIRED)}")
    unknown = [k for k in raw if k not in REQUIRED + OPTIONAL]
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'; {suggest(unknown[0], REQUIRED + OPTIONAL)}"
                          f"known: {', '.join(REQUIRED + OPTIONAL)}")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        example = {"challenge_id": ALL_TRACKS[-1], "authors": ["your-aicrowd-username"], "gpu": True}
        raise ConfigError(f"{where}: missing {', '.join(repr(m) for m in missing)}; e.g. "
                          f"{json.dumps({k: example[k] for k in missing})}")
    challenge = raw["challenge_id"]
    if not isinstance(challenge, str) or challenge not in ALL_TRACKS:
        hint = suggest(challenge, ALL_TRACKS) if isinstance(challenge, str) else ""
        raise ConfigError(f"{where}: unknown challenge_id {json.dumps(challenge)}; {hint}"
                          f"valid: {', '.join(ALL_TRACKS)}")
    authors = raw["authors"]
    if not isinstance(authors, list) or not authors or not all(isinstance(a, str) and a.strip() for a in authors):
        raise ConfigError(f"{where}: 'authors' must be a non-empty list of AIcrowd usernames, got "
                          f"{json.dumps(authors)}; e.g. \"authors\": [\"your-aicrowd-username\"]")
    if not isinstance(raw["gpu"], bool):
        raise ConfigError(f"{where}: 'gpu' must be true (the GPU grader) or false (CPU only), "
                          f"got {json.dumps(raw['gpu'])}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: 'description' must be a string")
    return AicrowdConfig(challenge, tuple(a.strip() for a in authors), raw["gpu"], description)


def load_aicrowd(repo: str | Path) -> AicrowdConfig:
    """The repository's aicrowd.json, validated; ConfigError names the file and what to fix."""
    path = Path(repo) / AICROWD_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; a submission needs an aicrowd.json at its root with "
                          f"{', '.join(REQUIRED)}")
    return loads_aicrowd(path.read_text(encoding="utf-8"), str(path))


def loads_aicrowd(text: str, where: str) -> AicrowdConfig:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    return parse_aicrowd(raw, where)
