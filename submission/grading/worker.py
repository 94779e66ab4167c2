"""``python -m submission worker``: a compute worker for one host, a Celery worker that runs grades.

It serves the tracks of ``--tracks-dir`` (one folder per track id with ``truth.json`` and optionally
``inputs.json``; the truth never leaves the host) and takes grades from the queues its GPUs can run:
one queue per GPU count among the profiles it grades (``--profile``; by default every profile its GPUs
fit: those without GPUs on a worker without ``--gpus``, those with 1 to N on a worker with N), as many
grades at once as GPUs (``--concurrency`` caps it), each grade holding the devices its profile needs.

At start it removes the containers that a worker of the same name left on this host (killed with
``kill -9``: its grades go back on the queue). SIGTERM is Celery's warm shutdown: it takes no new
grade and exits once the running ones are written. SIGQUIT (or Ctrl-C twice) is the cold one: the
running grades are stopped and go back on the queue. After either, the worker removes any container of
its grades still there. Every pool process dies with the worker (``PR_SET_PDEATHSIG``), and every grade
process with its pool process.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, KitError, suggest
from ..harness.profiles import ALL_TRACKS, get_profile, load_profiles
from .gpu_slots import device_ids
from .grade_task import (
    WORKER_LABEL,
    TrackFiles,
    WorkerConfig,
    configure,
    die_with_parent,
    grade_task,
)
from .grader import aligned_inputs
from .queue import (
    HEARTBEAT_S,
    TASK_NAME,
    forget_worker,
    queue_for,
    write_heartbeat,
)

log = logging.getLogger(__name__)

TRUTH_FILE, INPUTS_FILE = "truth.json", "inputs.json"
DEFAULT_GRACE_S = 60.0
REDELIVERY_MARGIN_S = 600.0

def read_tracks(folder: Path) -> tuple[TrackFiles, ...]:
    """The tracks of ``--tracks-dir``, each truth (and inputs) checked now rather than at the first grade."""
    if not folder.is_dir():
        raise ConfigError(f"--tracks-dir {folder}: no such folder")
    tracks = []
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if child.name not in ALL_TRACKS:
            raise ConfigError(f"{child}: not a track id; {suggest(child.name, ALL_TRACKS)}the folders of --tracks-dir "
                              f"are named after the tracks: {', '.join(ALL_TRACKS)}")
        truth, inputs = child / TRUTH_FILE, child / INPUTS_FILE
        if not truth.is_file():
            raise ConfigError(f"{truth}: no such file; each track folder holds {TRUTH_FILE} (development format, "
                              f"with the answers) and optionally {INPUTS_FILE} (test format)")
        aligned_inputs(inputs if inputs.is_file() else None, truth)  # DataError naming the file and line
        tracks.append(TrackFiles(child.name, truth.resolve(), inputs.resolve() if inputs.is_file() else None))
    if not tracks:
        raise ConfigError(f"--tracks-dir {folder} holds no track folder; make one per track id, e.g. "
                          f"{folder / ALL_TRACKS[-1] / TRUTH_FILE}")
    return tuple(tracks)


def served_profiles(names: list[str], gpus: tuple[str, ...], files: tuple[str, ...]) -> tuple[str, ...]:
    """--profile, checked to fit the worker's GPUs; by default every profile that fits: with GPUs, those
    with 1 to N of them; without, those with none."""
    profiles = load_profiles(*files)
    for name in names:
        profile = get_profile(name, profiles)  # ConfigError naming the known ones
        if profile.gpus > len(gpus):
            raise ConfigError(f"--profile {name} needs {profile.gpus} GPU(s) and --gpus gives this worker "
                              f"{len(gpus)}")
    if names:
        return tuple(dict.fromkeys(names))
    fits = tuple(p.name for p in profiles.values() if (0 < p.gpus <= len(gpus) if gpus else p.gpus == 0))
    if not fits:
        raise ConfigError(f"no profile fits a worker with {len(gpus)} GPU(s); name one with --profile")
    return fits


def longest_grade_s(config: WorkerConfig) -> tuple[float, str]:
    """The longest time a grade this worker may take may keep its container (budget plus grace), and which."""
    longest, which = 0.0, "none"
    profiles = load_profiles(*config.profiles_files)
    for profile in (profiles[name] for name in config.profiles):
        for track in config.tracks:
            seconds = profile.track_minutes[track.track] * 60 * config.time_scale + config.grace_s
            if seconds > longest:
                longest, which = seconds, f"profile {profile.name} on {track.track}"
    return longest, which


def check_gpus(gpus: tuple[str, ...]) -> None:
    """--gpus against this host's GPUs: an index it lacks is an error; no GPU at all, a warning."""
    from ..harness.gpu import host_gpu_count

    if not gpus:
        return
    count = host_gpu_count()
    if count == 0:
        log.warning("no NVIDIA GPU on this host: --gpus %s routes grades and holds devices, but the containers get "
                    "no GPU", ",".join(gpus))
        return
    absent = [g for g in gpus if g.isdigit() and int(g) >= count]
    if absent:
        raise ConfigError(f"--gpus {','.join(gpus)}: this host has {count} GPU(s), numbered 0 to {count - 1}; "
                          f"no device {absent[0]}")


def build_config(args: argparse.Namespace, redis_broker: bool) -> WorkerConfig:
    gpus = device_ids(args.gpus) or ()
    check_gpus(gpus)
    if args.grace_s < 0 or args.time_scale <= 0:
        raise ConfigError("--grace-s must be at least 0 and --time-scale above 0")
    name = args.name or f"shopbench@{socket.gethostname()}"
    name = name if "@" in name else f"{name}@{socket.gethostname()}"
    results = Path(args.results).resolve()
    results.mkdir(parents=True, exist_ok=True)
    if not os.access(results, os.W_OK):
        raise ConfigError(f"--results {results}: not writable by this user")
    files = tuple(args.profiles_file)
    config = WorkerConfig(name, results, read_tracks(Path(args.tracks_dir)), gpus, files,
                          served_profiles(args.profile, gpus, files), args.time_scale, args.grace_s, 0.0,
                          tuple(args.embedding_model), redis_broker)
    longest, which = longest_grade_s(config)
    redelivery = args.redelivery_s if args.redelivery_s is not None else 2 * longest + REDELIVERY_MARGIN_S
    if redelivery <= longest:
        log.warning("--redelivery-s %.0f is not above the %.0f s that a grade of %s may take: a Redis broker would "
                    "hand such a grade to a second worker while the first still runs it (this worker refuses "
                    "them)", redelivery, longest, which)
    return dataclasses.replace(config, redelivery_s=float(redelivery))


def queues_for(config: WorkerConfig) -> list[str]:
    """One queue per GPU count among the profiles it grades."""
    profiles = load_profiles(*config.profiles_files)
    return [queue_for(n) for n in sorted({profiles[name].gpus for name in config.profiles})]


def remove_leftovers(name: str) -> int:
    """Remove the containers of this worker's grades on this host (left by a killed or stopped run); how many."""
    from .images import connect

    client = connect()
    leftovers = client.containers.list(all=True, filters={"label": f"{WORKER_LABEL}={name}"})
    for container in leftovers:
        log.warning("removing container %s (grade %s) of worker %s", container.short_id,
                    container.labels.get("shopbench.grade", "?"), name)
        container.remove(force=True)
    return len(leftovers)


class Heartbeat:
    """The worker's heartbeat in the backend, written every HEARTBEAT_S seconds by a thread until ``stop``."""

    def __init__(self, url: str, name: str, info: dict):
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        self.name, self.info, self.errors = name, info, (redis.RedisError,)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="shopbench-heartbeat", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _beat(self) -> None:
        while not self.stopped.is_set():
            try:
                write_heartbeat(self.client, self.name, self.info)
            except self.errors as exc:
                log.warning("heartbeat not written: %s", exc)
            self.stopped.wait(HEARTBEAT_S)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=15)
        try:
            forget_worker(self.client, self.name)
        except self.errors:
            pass


def pool_processes_die_with_worker() -> None:
    from celery import signals

    main_pid = os.getpid()

    @signals.worker_process_init.connect(weak=False)
    def _pool_process_dies_with_worker(**_: Any) -> None:
        die_with_parent(signal.SIGKILL)
        if os.getppid() != main_pid:
            os._exit(1)


def no_container_left(name: str) -> None:
    """After a shutdown: a cold one stopped the grades, whose containers may still run; remove them."""
    import docker

    try:
        removed = remove_leftovers(name)
    except (KitError, docker.errors.DockerException) as exc:
        log.warning("could not check for containers left running: %s", exc)
        return
    if removed:
        log.warning("removed %d container(s) of grades stopped by the shutdown", removed)


def register_task(app: Any) -> Any:
    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)
    def grade(self: Any, payload: dict[str, Any]) -> dict[str, Any]:
        return grade_task(self, payload)

    return grade


def run_worker(app: Any, config: WorkerConfig, args: argparse.Namespace, removed: int, broker: str) -> int:
    from celery import signals

    if config.gpus:  # a GPU grade needs at least one device: no more grades at once than devices
        concurrency = min(args.concurrency or len(config.gpus), len(config.gpus))
    else:
        concurrency = args.concurrency or 1
    queues = queues_for(config)
    configure(config)
    register_task(app)
    pool_processes_die_with_worker()
    tracks = [t.track for t in config.tracks]
    info: dict[str, Any] = {
        "name": config.name, "host": socket.gethostname(), "pid": os.getpid(), "gpus": list(config.gpus),
        "concurrency": concurrency, "queues": queues, "profiles": list(config.profiles), "tracks": tracks,
        "redelivery_s": config.redelivery_s, "started_at": time.time(), "broker": broker}
    print(f"worker {config.name}: profiles {', '.join(config.profiles)}; queues {', '.join(queues)}; "
          f"{concurrency} grade(s) at once; tracks "
          f"{', '.join(tracks)}; results {config.results}; redelivery after {config.redelivery_s:.0f} s"
          + (f"; removed {removed} container(s) left by its last run" if removed else ""), flush=True)
    heartbeat = Heartbeat(app.conf.result_backend, config.name, info)
    signals.worker_ready.connect(lambda **_: heartbeat.start(), weak=False)  # once the pool has forked
    worker = app.Worker(hostname=config.name, queues=queues, concurrency=concurrency, pool_cls="prefork",
                        loglevel="DEBUG" if args.verbose else "INFO", optimization="fair", without_mingle=True,
                        without_gossip=True, without_heartbeat=True, quiet=True)
    try:
        worker.start()
    finally:
        heartbeat.stop()
        no_container_left(config.name)
    return worker.exitcode or 0
