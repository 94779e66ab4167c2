"""One grade on a worker: what a worker's pool process does with each message of the queue.

The grade itself is ``python -m submission grade`` in a process of its own (its flags are the grader's
stable interface), given the track's truth from the worker's ``--tracks-dir``, the submission's profile,
the host's GPUs chosen for it (``--gpus``) and the worker's name on its container (``--label``):

1. A grade already finished is not graded again: a redelivered message whose result is in the backend,
   or whose run is published in the results folder, returns that result.
2. Its GPUs are taken from the host's pool (``gpu_slots``); a grade that cannot get them early enough to
   finish before its redelivery time goes back on the queue.
3. The grade writes into a fresh staging folder (a dead worker's half-written one is removed), then the
   run is published by one rename (``results_folder``).

The grade's process dies with the pool process that started it (``PR_SET_PDEATHSIG``), which dies with
the worker; a container it leaves behind carries the worker's name, and the next start of that worker
on the host removes it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..fileio import open_append
from ..harness.profiles import load_profiles
from .gpu_slots import NONE_HELD, HeldGpus, acquire
from .leaderboard import SCORES_FILE
from .queue import GradeFailed, GradeRequest
from .results_folder import (
    LOG_FILE,
    fresh_staging,
    publish,
    published_grade,
    run_folder,
    set_aside,
    summary,
    write_grade_record,
)

log = logging.getLogger(__name__)

WORKER_LABEL = "shopbench.worker"  # on the containers of a worker's grades: its name
GRADE_LABEL = "shopbench.grade"  # and the grade's id
HOST_ALLOWANCE_S = 1800.0  # beyond the container's deadline: loading the image, scoring, writing
LOG_TAIL_LINES = 15
REQUEUED = "REQUEUED"  # the task's state when a worker put it back on the queue
REQUEUE_PAUSE_S = 30.0  # before a grade this host cannot run goes back on the queue
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class TrackFiles:
    track: str
    truth: Path  # development format, with the answers: never leaves the host
    inputs: Path | None  # test format; None: made from the truth


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker's pool processes need to run a grade (set before they fork)."""

    name: str
    results: Path
    tracks: tuple[TrackFiles, ...]
    gpus: tuple[str, ...]  # the host's devices this worker hands out; () for a CPU worker
    profiles_files: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()  # the profiles it grades (their GPU counts are its queues)
    time_scale: float = 1.0
    grace_s: float = 60.0
    redelivery_s: float = 3600.0
    embedding_models: tuple[str, ...] = ()  # METRIC=PATH, passed on to grade
    redis_broker: bool = True  # Redis redelivers after redelivery_s: no grade may run longer

    def track_files(self, track: str) -> TrackFiles | None:
        return next((t for t in self.tracks if t.track == track), None)


_CONFIG: WorkerConfig | None = None


def configure(config: WorkerConfig) -> None:
    global _CONFIG
    _CONFIG = config


def die_with_parent(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        log.warning("PR_SET_PDEATHSIG is not available: a grade may outlive its worker")


# ---------------------------------------------------------------- the task


def grade_task(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The body of the ``shopbench.grade`` task (bound: ``task`` is the Celery task)."""
    config = _CONFIG
    if config is None:
        raise GradeFailed("this process was not started by `python -m submission worker`")
    request = GradeRequest.from_payload(payload)
    grade_id = task.request.id or request.grade_id
    started = time.time()
    done = finished_before(task, config, request, grade_id)
    if done is not None:
        log.info("grade %s was finished before (%s): not graded again", grade_id, done["run_folder"])
        return done
    track = config.track_files(request.track)
    if track is None:
        raise GradeFailed(f"worker {config.name} serves no track {request.track} (its --tracks-dir has "
                          f"{', '.join(t.track for t in config.tracks) or 'none'})")
    budget_s = track_budget_s(config, request)
    state = {"worker": config.name, "started_at": started, "submission": request.submission, "track": request.track,
             "redelivered": bool((task.request.delivery_info or {}).get("redelivered"))}
    task.update_state(state="STARTED", meta={**state, "phase": "waiting for GPUs" if request.gpus else "starting"})
    held = take_gpus(task, config, request, budget_s, started)
    try:
        image = image_arguments(config, request)
        staging = fresh_staging(config.results, grade_id)
        task.update_state(state="STARTED", meta={**state, "phase": "grading", "devices": list(held.device_ids)})
        command = grade_command(config, request, track, staging, held.device_ids, image, grade_id)
        code = graded(config, command, staging, held, budget_s + config.grace_s + HOST_ALLOWANCE_S, grade_id)
    finally:
        held.release()
    record = {"grade_id": grade_id, "worker": config.name, "devices": list(held.device_ids),
              "submission": request.submission, "track": request.track, "profile": request.profile,
              "image": request.image, "image_file": request.image_file, "enqueued_at": request.enqueued_at,
              "started_at": started, "finished_at": time.time(), "exit_code": code}
    write_grade_record(staging, record)
    result = summary(staging)
    final, what = publish(config.results, staging, request.submission, request.track, record)
    if what == "already":
        return {**(summary(final) or {}), "published": what}
    return {**(result or {}), "run_folder": str(final) if what == "published" else None, "published": what}


def graded(config: WorkerConfig, command: list[str], staging: Path, held: HeldGpus, timeout_s: float,
           grade_id: str) -> int:
    """Run the grade process into ``staging``; its exit code once scores.json is there. A grade that wrote no
    scores fails, and what it wrote is set aside in RESULTS/.failed/<grade id>/ with its log."""
    try:
        code = run_grade_process(command, staging / LOG_FILE, held.fds, timeout_s)
        if not (staging / SCORES_FILE).is_file():
            raise GradeFailed(f"the grade ended with exit code {code} and no scores")
    except GradeFailed as exc:
        folder = set_aside(config.results, staging, grade_id)
        raise GradeFailed(f"{exc} ({folder / LOG_FILE}): {log_tail(folder / LOG_FILE)}") from None
    return code


def finished_before(task: Any, config: WorkerConfig, request: GradeRequest, grade_id: str) -> dict[str, Any] | None:
    """The result of this grade if a worker finished it before: in the backend, or published."""
    meta = task.app.backend.get_task_meta(grade_id)
    if meta.get("status") == "SUCCESS" and isinstance(meta.get("result"), dict):
        return meta["result"]
    folder = run_folder(config.results, request.submission, request.track)
    record = published_grade(folder)
    if record is not None and record.get("grade_id") == grade_id:
        return {**(summary(folder) or {}), "published": "already"}
    return None


def track_budget_s(config: WorkerConfig, request: GradeRequest) -> float:
    """The track's time budget under the grade's profile, checked against the worker's own profiles."""
    profiles = load_profiles(*config.profiles_files)
    profile = profiles.get(request.profile)
    if profile is None:
        raise GradeFailed(f"worker {config.name} has no profile {request.profile} (known: {', '.join(profiles)}); "
                          "start it with the same --profiles-file as enqueue")
    if request.profile not in config.profiles:
        raise GradeFailed(f"worker {config.name} grades profiles {', '.join(config.profiles)}, not "
                          f"{request.profile}, though it takes {request.queue}: start it with --profile "
                          f"{request.profile} too, or give that queue to workers that do")
    if profile.gpus != request.gpus:
        raise GradeFailed(f"profile {request.profile} has {profile.gpus} GPU(s) on worker {config.name} but "
                          f"{request.gpus} where the grade was enqueued: give both the same --profiles-file")
    if request.gpus > len(config.gpus):
        raise GradeFailed(f"the grade needs {request.gpus} GPU(s) and worker {config.name} has "
                          f"{len(config.gpus)}: it took a queue it should not serve")
    budget_s = profile.track_minutes[request.track] * 60 * config.time_scale
    if config.redis_broker and budget_s + config.grace_s >= config.redelivery_s:
        raise GradeFailed(f"a grade of profile {request.profile} on {request.track} may run "
                          f"{budget_s + config.grace_s:.0f} s, not less than worker {config.name}'s redelivery time "
                          f"({config.redelivery_s:.0f} s): "
                          "Redis would give it to a second worker while this one runs it; restart the worker with a "
                          "larger --redelivery-s")
    return budget_s


def back_on_the_queue(config: WorkerConfig, why: str) -> None:
    """Put the grade back on the queue (after a pause, so that a broken host does not spin on it)."""
    from celery import current_task
    from celery.exceptions import Reject

    log.error("grade %s goes back on the queue: %s", current_task.request.id, why)
    current_task.update_state(state=REQUEUED, meta={"worker": config.name, "why": why, "at": time.time()})
    time.sleep(REQUEUE_PAUSE_S)
    raise Reject(why, requeue=True)


def take_gpus(task: Any, config: WorkerConfig, request: GradeRequest, budget_s: float, started: float) -> HeldGpus:
    """The grade's GPUs; back on the queue when they do not come free while the grade can still finish
    before the broker would hand it to another worker."""
    if request.gpus == 0:
        return NONE_HELD
    wait_s = max(0.0, config.redelivery_s - (budget_s + config.grace_s) - 60.0 - (time.time() - started))
    held = acquire(config.gpus, request.gpus, wait_s)
    if held is None:
        from celery.exceptions import Reject

        task.update_state(state=REQUEUED, meta={"worker": config.name, "why": f"{request.gpus} GPU(s) not free "
                                                f"within {wait_s:.0f} s", "at": time.time()})
        log.warning("grade %s: %d GPU(s) not free within %.0f s: back on the queue", task.request.id,
                    request.gpus, wait_s)
        raise Reject(f"{request.gpus} GPU(s) not free in time", requeue=True)
    return held


def image_arguments(config: WorkerConfig, request: GradeRequest) -> list[str]:
    """grade's image flags; GradeFailed when this host can neither find nor pull the image."""
    if request.image_file is not None:
        if not os.access(request.image_file, os.R_OK):
            raise GradeFailed(f"the image file {request.image_file} is not readable on worker {config.name}: image "
                              "files must be on storage every worker reads (a shared folder)")
        return ["--image-file", request.image_file]
    assert request.image is not None  # a request names an image or an image file (GradeRequest)
    import docker

    from .images import DockerUnavailable, connect

    try:
        client = connect()
    except DockerUnavailable as exc:  # this host's fault, not the submission's: let another worker grade it
        back_on_the_queue(config, f"no Docker daemon answers on this host ({exc})")
    try:
        client.images.get(request.image)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(request.image)
        except docker.errors.DockerException as exc:
            raise GradeFailed(f"image {request.image} is not on worker {config.name}'s host and could not be pulled "
                              f"({exc}); push it to a registry the workers reach, or enqueue a docker save file "
                              "with --image-file") from None
    return ["--image", request.image]


def grade_command(config: WorkerConfig, request: GradeRequest, track: TrackFiles, out_dir: Path,
                  devices: tuple[str, ...], image: list[str], grade_id: str) -> list[str]:
    command = [sys.executable, "-m", "submission", "grade", *image, "--track", request.track,
               "--truth", str(track.truth), "--output-dir", str(out_dir), "--name", request.submission,
               "--profile", request.profile, "--time-scale", f"{config.time_scale:g}", "--grace-s",
               f"{config.grace_s:g}", "--label", f"{WORKER_LABEL}={config.name}", "--label",
               f"{GRADE_LABEL}={grade_id}"]
    if track.inputs is not None:
        command += ["--inputs", str(track.inputs)]
    if devices:
        command += ["--gpus", ",".join(devices)]
    for path in config.profiles_files:
        command += ["--profiles-file", path]
    for pair in config.embedding_models:
        command += ["--embedding-model", pair]
    return command


def run_grade_process(command: list[str], log_path: Path, fds: tuple[int, ...], timeout_s: float) -> int:
    """Run the grade with its output in ``log_path``; it gets SIGTERM if this process dies, and is stopped
    (its whole process group) past ``timeout_s`` or when this process is told to stop."""
    parent = os.getpid()

    def in_child() -> None:
        die_with_parent(signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    with open_append(log_path, truncate=True) as out:  # never through a link, never waiting on a FIFO
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   pass_fds=fds, start_new_session=True,
                                   preexec_fn=in_child)  # noqa: PLW1509 - a prefork pool process runs no thread
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop(process)
        raise GradeFailed(f"the grade process did not end within {timeout_s:.0f} s (the track budget, the grace and "
                          f"{HOST_ALLOWANCE_S:.0f} s for the host's work); stopped") from None
    except BaseException:
        stop(process)
        raise


def stop(process: subprocess.Popen, wait_s: float = 30.0) -> None:
    """SIGTERM to the grade's process group (the grader removes its container on it), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in lines[-LOG_TAIL_LINES:] if line.strip())[-2000:] or "(empty log)"
