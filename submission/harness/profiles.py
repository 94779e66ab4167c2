"""Hardware profiles (``profiles.yaml``) and the limits a run enforces.

A ``Profile`` is what the grader's machine is: GPUs and their memory, CPUs, RAM, the seconds allowed
per sample and the wall-clock budget of each track. ``Limits`` is what one run enforces: a profile's
numbers after ``--time-scale``, for the track whose budget applies, or nothing at all (``--no-limits``).
Profile files are read with ``submission.yamlio``: every mistake names the file, the line and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError, suggest
from ..scoring.data import ALL_AROUND, TRACKS, Question
from ..yamlio import read_mapping, reject_unknown, where

PROFILES_FILE = Path(__file__).with_name("profiles.yaml")
DEFAULT_PROFILE = "phase2"
ALL_TRACKS = TRACKS + (ALL_AROUND,)
GIB = 1024**3


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    gpus: int
    gpu_name: str | None
    gpu_memory_gib: float | None
    compute_capability: str | None
    bfloat16: bool | None
    flash_attention_2: bool | None
    vcpus: int
    ram_gb: float
    seconds_per_sample: float
    track_minutes: Mapping[str, float]
    disk_gb: float | None = None  # the model's scratch space (/tmp, ~/.cache; a per-run TMPDIR locally)
    output_mb: float | None = None  # what the run may write to the output folder besides predictions.jsonl


@dataclass(frozen=True)
class Limits:
    """What one run enforces. ``None`` means not enforced. Times are already multiplied by time_scale."""

    profile: str
    budget_track: str
    time_scale: float = 1.0
    seconds_per_sample: float | None = None
    budget_s: float | None = None
    gpus: int | None = None
    gpu_memory_bytes: int | None = None  # per card, the whole process tree's memory (NVML): the card's usable total
    ram_bytes: int | None = None
    vcpus: int | None = None
    gpu_name: str | None = None  # the profile's card, whose rules the model must follow on any host
    compute_capability: str | None = None  # e.g. "7.5": the model may use nothing a higher one allows
    bfloat16: bool | None = None
    flash_attention_2: bool | None = None
    disk_bytes: int | None = None  # scratch space: each of the container's /tmp and ~/.cache; a local run's TMPDIR
    output_bytes: int | None = None  # the output folder, predictions.jsonl and the harness's own files aside

    def batch_limit_s(self, n_prompts: int) -> float | None:
        return None if self.seconds_per_sample is None else self.seconds_per_sample * n_prompts

    @property
    def enforced(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name not in
                   ("profile", "budget_track", "time_scale"))


UNLIMITED = Limits(profile="none", budget_track=ALL_AROUND)

OPTIONAL = ("disk_gb", "output_mb")  # profiles written before these existed still load: no disk limit
_REQUIRED = {f.name for f in fields(Profile)} - {"name", "description", *OPTIONAL}
_TYPES: dict[str, tuple[type, ...]] = {
    "gpus": (int,), "vcpus": (int,), "ram_gb": (int, float), "seconds_per_sample": (int, float),
    "gpu_name": (str, type(None)), "gpu_memory_gib": (int, float, type(None)),
    "compute_capability": (str, type(None)), "bfloat16": (bool, type(None)),
    "flash_attention_2": (bool, type(None)), "description": (str,), "track_minutes": (dict,),
    "disk_gb": (int, float, type(None)), "output_mb": (int, float, type(None)),
}


def _check_value(key: str, value: Any, place: str) -> None:
    allowed = _TYPES[key]
    wrong_bool = isinstance(value, bool) and bool not in allowed
    if wrong_bool or not isinstance(value, allowed):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise ConfigError(f"{place}: '{key}' must be {names}, got {value!r}")
    _check_range(key, value, place)


def _check_range(key: str, value: Any, place: str) -> None:
    positive = ("ram_gb", "seconds_per_sample", "disk_gb", "output_mb")
    if key in ("gpus", "vcpus") and value < 0 or key in positive and value is not None and value <= 0:
        raise ConfigError(f"{place}: '{key}' must be positive, got {value!r}")
    if key == "compute_capability" and value is not None and not re.fullmatch(r"\d+\.\d+", value):
        raise ConfigError(f"{place}: 'compute_capability' must be MAJOR.MINOR such as \"7.5\", got {value!r}")


def _track_minutes(value: dict, place: str) -> dict[str, float]:
    unknown = [k for k in value if k not in ALL_TRACKS]
    if unknown:
        raise ConfigError(f"{place}: unknown track '{unknown[0]}' in track_minutes; "
                          f"{suggest(str(unknown[0]), ALL_TRACKS)}known: {', '.join(ALL_TRACKS)}")
    missing = [t for t in ALL_TRACKS if t not in value]
    if missing:
        raise ConfigError(f"{place}: track_minutes lacks {', '.join(missing)}; give all five tracks' budgets")
    for track, minutes in value.items():
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
            raise ConfigError(f"{place}: track_minutes['{track}'] must be a positive number of minutes")
    return {t: float(value[t]) for t in ALL_TRACKS}


def profile_from_dict(name: str, raw: Any, source: str, lines: Mapping[str, int] | None = None) -> Profile:
    """One profile from its YAML mapping, refusing unknown and missing keys and wrong types; errors name
    ``source``, the line of the key (``lines``: ``yamlio``'s, of the whole file) and the profile."""
    lines = lines or {}
    at = f"profiles.{name}."

    def place(key: str = "") -> str:
        return f"{where(source, lines, at + key if key else at[:-1])}: profile '{name}'"

    if not isinstance(raw, dict):
        raise ConfigError(f"{place()}: expected a mapping of profile fields")
    reject_unknown(raw, list(_TYPES), source, lines, at=at, context=f": profile '{name}'")
    missing = sorted(_REQUIRED - set(raw))
    if missing:
        raise ConfigError(f"{place()}: missing key(s) {', '.join(missing)}")
    for key, value in raw.items():
        _check_value(key, value, place(key))
    if raw["gpus"] > 0 and raw["gpu_memory_gib"] is None:
        raise ConfigError(f"{place('gpu_memory_gib')}: gpus is {raw['gpus']} but gpu_memory_gib is null; give the "
                          "per-card memory")
    values = {**raw, "track_minutes": _track_minutes(raw["track_minutes"], place("track_minutes"))}
    return Profile(name=name, description=raw.get("description", ""), **{
        k: v for k, v in values.items() if k != "description"})


def load_profiles(*paths: str | Path) -> dict[str, Profile]:
    """The kit's profiles, then each file's in turn (a later profile of the same name replaces an earlier)."""
    profiles: dict[str, Profile] = {}
    for path in (PROFILES_FILE, *paths):
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such profiles file")
        document = read_mapping(path, "profiles file")
        if set(document.data) != {"profiles"} or not isinstance(document.data["profiles"], dict):
            raise ConfigError(f"{path}: expected one top-level key 'profiles' mapping names to profiles")
        for name, raw in document.data["profiles"].items():
            profiles[str(name)] = profile_from_dict(str(name), raw, str(path), document.lines)
    return profiles


def get_profile(name: str, profiles: Mapping[str, Profile]) -> Profile:
    if name not in profiles:
        raise ConfigError(f"unknown profile '{name}'; {suggest(name, list(profiles))}known: {', '.join(profiles)}"
                          "; add your own with --profiles-file")
    return profiles[name]


def budget_track_for(questions: Sequence[Question], requested: str | None = None) -> str:
    """The track whose budget applies: the one asked for, else the data's only track, else all-around."""
    if requested is not None:
        if requested not in ALL_TRACKS:
            raise ConfigError(f"--track '{requested}': {suggest(requested, ALL_TRACKS)}known: {', '.join(ALL_TRACKS)}")
        return requested
    tracks = {q.track for q in questions if q.track is not None}
    return tracks.pop() if len(tracks) == 1 else ALL_AROUND


def limits_for(profile: Profile, budget_track: str, time_scale: float = 1.0, enabled: bool = True) -> Limits:
    """The profile's limits for a run on ``budget_track``; time limits multiplied by ``time_scale``."""
    if not (time_scale > 0 and math.isfinite(time_scale)):
        raise ConfigError(f"--time-scale must be a positive number, got {time_scale}")
    if not enabled:
        return Limits(profile=profile.name, budget_track=budget_track, time_scale=time_scale)
    gpu_bytes = None if profile.gpu_memory_gib is None else int(profile.gpu_memory_gib * GIB)
    return Limits(
        profile=profile.name, budget_track=budget_track, time_scale=time_scale,
        seconds_per_sample=profile.seconds_per_sample * time_scale,
        budget_s=profile.track_minutes[budget_track] * 60 * time_scale,
        gpus=profile.gpus, gpu_memory_bytes=gpu_bytes, ram_bytes=int(profile.ram_gb * 1e9), vcpus=profile.vcpus,
        disk_bytes=None if profile.disk_gb is None else int(profile.disk_gb * 1e9),
        output_bytes=None if profile.output_mb is None else int(profile.output_mb * 1e6), **_card(profile),
    )


def _card(profile: Profile) -> dict[str, Any]:
    """The profile's card rules, carried only when it has a card (a CPU profile has none to apply)."""
    if not profile.gpus:
        return {}
    return {"gpu_name": profile.gpu_name, "compute_capability": profile.compute_capability,
            "bfloat16": profile.bfloat16, "flash_attention_2": profile.flash_attention_2}


def profile_name_for_aicrowd(config: Mapping[str, Any]) -> str:
    """The profile the grader gives a submission, from its aicrowd.json: ``cpu`` when "gpu" is false."""
    return "cpu" if config.get("gpu") is False else DEFAULT_PROFILE
