"""``python -m submission status``: where every grade stands, per submission and track, and the workers.

Read from the result backend alone (the registry of enqueued grades, each grade's Celery state and the
workers' heartbeats): queued (for how long), running (on which worker, for how long, on which devices),
done (score and verdict), failed (why). ``--results DIR`` adds the run folder of each finished grade and
the runs published there that the backend does not know (graded with ``grade`` by hand, or by workers of
another backend).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..scoring.data import short_track
from .grade_task import REQUEUED
from .queue import GradeRequest, live_workers, registry
from .results_folder import find_published


@dataclass(frozen=True)
class GradeStatus:
    submission: str
    track: str
    state: str  # queued, running, done, failed
    grade_id: str | None
    since: float | None  # enqueued (queued), started (running), finished (done, failed)
    worker: str | None = None
    devices: tuple[str, ...] = ()
    score: float | None = None
    verdict: str | None = None
    detail: str = ""  # the verdict's detail, why it failed, or what a running grade is doing
    run_folder: str | None = None
    earlier: int = 0  # older grades of the same submission and track


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min" if seconds < 5400 else \
        f"{seconds / 3600:.1f} h"


def status_of(request: GradeRequest, meta: dict[str, Any], workers: dict[str, dict]) -> GradeStatus:
    state, info = meta.get("status"), meta.get("result")
    base: dict[str, Any] = {"submission": request.submission, "track": request.track, "grade_id": request.grade_id}
    if state == "SUCCESS" and isinstance(info, dict):
        verdict = info.get("verdict") or {}
        return GradeStatus(**base, state="done", since=info.get("finished_at"), worker=info.get("worker"),
                           devices=tuple(info.get("devices") or ()), score=info.get("score"),
                           verdict=verdict.get("status"), detail=str(verdict.get("detail", "")),
                           run_folder=info.get("run_folder"))
    if state == "FAILURE":
        return GradeStatus(**base, state="failed", since=_timestamp(meta.get("date_done")),
                           worker=(meta.get("worker") or None), detail=str(info))
    if state == "STARTED" and isinstance(info, dict):
        worker = info.get("worker")
        detail = str(info.get("phase", "")) + (", redelivered" if info.get("redelivered") else "")
        if worker not in workers:
            detail += (f"; worker {worker} is gone: the grade is back on the queue at once if it was stopped, "
                       "after the redelivery time if it was killed")
        return GradeStatus(**base, state="running", since=info.get("started_at"), worker=worker,
                           devices=tuple(info.get("devices") or ()), detail=detail)
    detail = f"profile {request.profile}, {request.queue}, priority {request.priority}"
    if state == REQUEUED and isinstance(info, dict):
        detail += f"; put back by {info.get('worker')}: {info.get('why')}"
    elif state == "RETRY":
        detail += "; retrying"
    return GradeStatus(**base, state="queued", since=request.enqueued_at, detail=detail)


def _timestamp(value: Any) -> float | None:
    from datetime import datetime, timezone

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def collect(app: Any, results: Path | None) -> tuple[list[GradeStatus], dict[str, dict]]:
    """The latest grade of each submission and track, and the live workers."""
    workers = live_workers(app.backend.client)
    latest: dict[tuple[str, str], GradeStatus] = {}
    counts: dict[tuple[str, str], int] = {}
    for request in registry(app):  # oldest first: the last one of each key stays
        key = (request.submission, request.track)
        counts[key] = counts.get(key, 0) + 1
        latest[key] = status_of(request, app.backend.get_task_meta(request.grade_id), workers)
    known = {s.grade_id for s in latest.values()}
    if results is not None:
        for run in find_published(results):
            submission, track = run.get("submission"), run.get("track")
            if not isinstance(submission, str) or not isinstance(track, str):
                continue  # no grade's record
            key = (submission, track)
            if run.get("grade_id") not in known and key not in latest:
                verdict = run.get("verdict") or {}
                latest[key] = GradeStatus(submission, track, "done", run.get("grade_id"), run.get("finished_at"),
                                          run.get("worker"), tuple(run.get("devices") or ()), run.get("score"),
                                          verdict.get("status"), str(verdict.get("detail", "")), run["run_folder"])
            elif key in latest and latest[key].state == "done" and run.get("grade_id") == latest[key].grade_id:
                latest[key] = GradeStatus(**{**asdict(latest[key]), "run_folder": run["run_folder"]})
    rows = [GradeStatus(**{**asdict(s), "earlier": counts.get(k, 1) - 1}) for k, s in latest.items()]
    return sorted(rows, key=lambda s: (s.submission, s.track)), workers


def describe(row: GradeStatus, now: float) -> str:
    age = _ago(now - row.since) if row.since else "?"
    if row.state == "queued":
        return f"queued for {age} ({row.detail})"
    if row.state == "running":
        devices = f" on devices {','.join(row.devices)}" if row.devices else ""
        return f"running on {row.worker}{devices} for {age} ({row.detail})"
    if row.state == "failed":
        return f"failed {age} ago: {row.detail}"
    score = "no score" if row.score is None else f"score {row.score:.4f}"
    verdict = row.verdict if row.verdict == "ok" else f"{row.verdict}: {row.detail}"
    return f"done {age} ago on {row.worker}: {score}, verdict {verdict}"


def format_status(rows: list[GradeStatus], workers: dict[str, dict], now: float) -> str:
    lines = [f"workers ({len(workers)} live):"]
    for name, info in sorted(workers.items()):
        gpus = ",".join(info.get("gpus") or []) or "none"
        lines.append(f"  {name}: GPUs {gpus}; {info.get('concurrency')} at once; {', '.join(info.get('queues', []))}; "
                     f"seen {_ago(now - info.get('seen_at', now))} ago")
    if not workers:
        lines.append("  none: start one on each GPU host with `python -m submission worker ...`")
    counts = {state: sum(r.state == state for r in rows) for state in ("queued", "running", "done", "failed")}
    lines += ["", "grades (the latest of each submission and track): " +
              ", ".join(f"{n} {state}" for state, n in counts.items())]
    width = max([len(r.submission) for r in rows] + [10])
    for row in rows:
        earlier = f" [+{row.earlier} earlier]" if row.earlier else ""
        lines.append(f"  {row.submission:<{width}}  {short_track(row.track):<30}  {describe(row, now)}{earlier}")
        if row.run_folder:
            lines.append(f"  {'':<{width}}  {'':<30}  {row.run_folder}")
    return "\n".join(lines)

