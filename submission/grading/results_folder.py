"""The workers' results folder: one published run per submission and track, each grade counted once.

    RESULTS/<submission>/<track>/     the run of the latest grade: scores.json, results.json,
                                      predictions.jsonl, report.html, container/, grade.log and grade.json
                                      (which grade, which worker, which devices, when)
    RESULTS/.staging/<grade id>/      a grade being written; never read by the leaderboard
    RESULTS/.trash/                   a replaced run, for the moment of the swap
    RESULTS/.failed/<grade id>/       what a grade that failed wrote (grade.log says why)

A grade is written into its staging folder and published by renaming that folder into place, under a
lock of the submission's folder: a reader sees the old run or the new one, never a mix. A staging folder
left by a worker that died is removed when the grade starts again (replaced, never merged), and a grade
whose run is already published (the worker died after publishing, before the broker heard of it) is not
published twice: ``publish`` keeps the run there and says so. Of two grades of one submission and
track, the one enqueued later stays published. Folders starting with '.' are the workers' own; the
leaderboard skips them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..jsonio import write_json
from .leaderboard import SCORES_FILE

STAGING = ".staging"
TRASH = ".trash"
FAILED = ".failed"
GRADE_FILE = "grade.json"
LOG_FILE = "grade.log"
LOCK_FILE = ".lock"


def run_folder(results: Path, submission: str, track: str) -> Path:
    return results / submission / track


def staging_folder(results: Path, grade_id: str) -> Path:
    return results / STAGING / grade_id


def fresh_staging(results: Path, grade_id: str) -> Path:
    """An empty staging folder for the grade; what a dead worker left there is removed first."""
    folder = staging_folder(results, grade_id)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def published_grade(folder: Path) -> dict[str, Any] | None:
    """grade.json of the run published in ``folder``, or None."""
    return read_json(folder / GRADE_FILE)


@contextlib.contextmanager
def submission_lock(results: Path, submission: str) -> Iterator[None]:
    """An exclusive POSIX lock (lockf: it holds across hosts on NFS with lockd) on the submission's folder."""
    folder = results / submission
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def publish(results: Path, staging: Path, submission: str, track: str, record: dict[str, Any]) -> tuple[Path, str]:
    """Move the staged run into place: (the run folder, what happened). "published": it replaced what was
    there; "already": this grade's run was there (the staging folder is dropped); "superseded": a grade
    enqueued later is there, and it stays (the staging folder is dropped)."""
    final = run_folder(results, submission, track)
    with submission_lock(results, submission):
        existing = published_grade(final)
        if existing is not None and existing.get("grade_id") == record["grade_id"]:
            shutil.rmtree(staging, ignore_errors=True)
            return final, "already"
        if existing is not None and float(existing.get("enqueued_at") or 0) > float(record["enqueued_at"]):
            shutil.rmtree(staging, ignore_errors=True)
            return final, "superseded"
        old = None
        if final.exists():
            old = results / TRASH / f"{record['grade_id']}-{time.time_ns()}"
            old.parent.mkdir(parents=True, exist_ok=True)
            os.rename(final, old)
        os.rename(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final, "published"


def set_aside(results: Path, staging: Path, grade_id: str) -> Path:
    """Move a failed grade's staging folder to RESULTS/.failed/<grade id>/ (replacing an older one)."""
    folder = results / FAILED / grade_id
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, folder)
    return folder


def write_grade_record(folder: Path, record: dict[str, Any]) -> None:
    write_json(folder / GRADE_FILE, record)


def summary(folder: Path) -> dict[str, Any] | None:
    """What a finished grade returns (and status shows): its record, score and verdict, from the run folder."""
    scores, record = read_json(folder / SCORES_FILE), published_grade(folder)
    if scores is None or record is None:
        return None
    return {**record, "score": scores.get("score"), "partial_score": scores.get("partial_score"),
            "verdict": scores.get("verdict"), "wall_s": scores.get("wall_s"), "graded_at": scores.get("graded_at"),
            "n_answered": scores.get("n_answered"), "n_questions": scores.get("n_questions"),
            "run_folder": str(folder), "scores": scores}


def find_published(results: Path) -> list[dict[str, Any]]:
    """The summary of every published run under ``results`` (the workers' folders skipped)."""
    found = []
    for record in sorted(results.glob(f"*/*/{GRADE_FILE}")):
        if not any(part.startswith(".") for part in record.relative_to(results).parts):
            done = summary(record.parent)
            if done is not None:
                found.append(done)
    return found
