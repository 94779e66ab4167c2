#!/usr/bin/env python3
"""The grading queue's own overhead per grade, against the grade itself.

20 grades of a model that answers at once, across two workers (real processes, Celery on a Redis
started here on a free port, the real Docker daemon). Grades are enqueued as a worker comes free (at
most two outstanding), so no grade waits for a busy worker and what is measured is the queue's and the
worker's own time. Per grade, from the clocks of this host:

  enqueue -> container start   the grade put on the queue until Docker starts its container (the broker's
                               delivery, the worker's task, starting `python -m submission grade`, the
                               grader reading the image's aicrowd.json and creating the container)
    of which enqueue -> task   until the worker's pool process starts the task (grade.json's started_at)
  container                    the container's run, start to exit (Docker's events)
  grade                        the whole `python -m submission grade` process, as the worker ran it
  scores written -> visible    scores.json written until the result is in the backend (the grade
                               process ends, the worker writes grade.json, publishes the run folder,
                               Celery stores the result; polled here every 10 ms)
    of which the grade's exit  until the grade process has exited (the grader's own, not the queue's)

    python benchmarks/queue_overhead.py                          # 20 grades, 2 workers
    python benchmarks/queue_overhead.py --grades 40 --image team-a:v3 --json figures.json

The image must hold a model that answers at once: by default the dummy submission that the Docker
tests build (pytest tests/submission/grading/with_docker -k build), shopbench-test-dummy:latest.
Needs redis-server (./setup.sh --system installs it) and a Docker daemon. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from submission.environment import KIT_ROOT
from submission.grading.queue import new_request, producer_app, send
from submission.grading.results_folder import GRADE_FILE, run_folder
from submission.scoring.data import ALL_AROUND

PROFILE = "cpu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed (apt-get install redis-server; ./setup.sh --system does)")
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    sys.exit("redis-server did not start")


def write_track(folder: Path, questions: int) -> Path:
    """--tracks-dir with the all-around track: the kit's sample split without embedding metrics."""
    rows = [line for line in (KIT_ROOT / "data" / "sample.json").read_text().splitlines()
            if line.strip() and "sent-transformer" not in line][:questions]
    (folder / ALL_AROUND).mkdir(parents=True)
    (folder / ALL_AROUND / "truth.json").write_text("\n".join(rows) + "\n")
    return folder


def start_worker(name: str, broker: str, results: Path, tracks: Path, logs: Path) -> subprocess.Popen:
    log = (logs / f"{name}.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "submission", "worker", "--broker", broker, "--results",
                                str(results), "--tracks-dir", str(tracks), "--name", name],
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while b" ready." not in (logs / f"{name}.log").read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"worker {name} did not start: {(logs / f'{name}.log').read_text()[-2000:]}")
        time.sleep(0.2)
    return process


class ContainerClock:
    """Docker's start and die events of the grades' containers, by grade id (the container's label)."""

    def __init__(self, client):
        self.started: dict[str, float] = {}
        self.died: dict[str, float] = {}
        self.stream = client.events(decode=True, filters={"type": "container", "label": "shopbench.grade"})
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for event in self.stream:
                grade = event.get("Actor", {}).get("Attributes", {}).get("shopbench.grade")
                when = event.get("timeNano", 0) / 1e9
                if grade and event.get("status") == "start":
                    self.started[grade] = when
                elif grade and event.get("status") == "die":
                    self.died[grade] = when
        except Exception:  # noqa: BLE001 - the stream is closed at the end
            pass

    def close(self) -> None:
        self.stream.close()


def run(args, base: Path) -> list[dict]:
    import docker

    redis, broker = start_redis(base)
    results, tracks = base / "results", write_track(base / "tracks", args.questions)
    workers = []
    clock = ContainerClock(docker.from_env())
    try:
        workers = [start_worker(f"bench-{i}@{socket.gethostname()}", broker, results, tracks, base)
                   for i in range(args.workers)]
        app, where = producer_app(broker, None)
        visible: dict[str, float] = {}
        outstanding: list[str] = []
        requests = {}
        for index in range(args.grades):
            while len(outstanding) >= args.workers:
                poll_results(app, outstanding, visible)
            request = new_request(f"bench-{index:03d}", ALL_AROUND, PROFILE, 0, args.image, None)
            send(app, request, where)
            requests[request.grade_id] = request
            outstanding.append(request.grade_id)
        while outstanding:
            poll_results(app, outstanding, visible)
        time.sleep(1)  # the last die events
        return [measure(requests[g], results, clock, visible[g]) for g in requests]
    finally:
        clock.close()
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(timeout=120)
        redis.terminate()
        redis.wait()


def poll_results(app, outstanding: list[str], visible: dict[str, float], every_s: float = 0.01) -> None:
    for grade_id in list(outstanding):
        meta = app.backend.get_task_meta(grade_id)
        if meta.get("status") == "SUCCESS":
            visible[grade_id] = time.time()
            outstanding.remove(grade_id)
        elif meta.get("status") == "FAILURE":
            sys.exit(f"grade {grade_id} failed: {meta.get('result')}")
    time.sleep(every_s)


def measure(request, results: Path, clock: ContainerClock, visible_at: float) -> dict:
    folder = run_folder(results, request.submission, request.track)
    record = json.loads((folder / GRADE_FILE).read_text())
    scores_written = (folder / "scores.json").stat().st_mtime
    started = clock.started[request.grade_id]
    return {
        "grade_id": request.grade_id, "worker": record["worker"],
        "enqueue_to_task_s": record["started_at"] - request.enqueued_at,
        "enqueue_to_container_start_s": started - request.enqueued_at,
        "container_s": clock.died[request.grade_id] - started,
        "grade_s": record["finished_at"] - record["started_at"],
        "scores_written_to_visible_s": visible_at - scores_written,
        "scores_written_to_grade_end_s": record["finished_at"] - scores_written,
    }


COLUMNS = (("enqueue -> container start", "enqueue_to_container_start_s"),
           ("  of which enqueue -> task", "enqueue_to_task_s"),
           ("container (start to exit)", "container_s"),
           ("grade (the grade process)", "grade_s"),
           ("scores written -> visible", "scores_written_to_visible_s"),
           ("  of which the grade's exit", "scores_written_to_grade_end_s"))


def report(rows: list[dict], args, wall_s: float) -> str:
    workers = sorted({r["worker"] for r in rows})
    lines = [f"{len(rows)} grades of {args.image} ({args.questions} questions, profile {PROFILE}) across "
             f"{len(workers)} workers, {wall_s:.1f} s in all; {os.cpu_count()} CPUs, load average "
             f"{os.getloadavg()[0]:.1f} at the end",
             f"{'per grade, seconds':<28}{'median':>9}{'p90':>9}{'max':>9}"]
    for label, key in COLUMNS:
        values = sorted(r[key] for r in rows)
        p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
        lines.append(f"{label:<28}{statistics.median(values):>9.3f}{p90:>9.3f}{values[-1]:>9.3f}")
    overhead = statistics.median(r["enqueue_to_container_start_s"] + r["scores_written_to_visible_s"] for r in rows)
    lines.append(f"queue overhead (enqueue -> container start + scores -> visible), median: {overhead:.3f} s, "
                 f"{overhead / statistics.median(r['grade_s'] for r in rows):.0%} of the median grade")
    lines.append("grades per worker: " + ", ".join(f"{w}: {sum(r['worker'] == w for r in rows)}" for w in workers))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grades", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--questions", type=int, default=50, help="questions per grade (the sample split has 50 "
                        "without embedding metrics)")
    parser.add_argument("--image", default="shopbench-test-dummy:latest", help="a model that answers at once")
    parser.add_argument("--json", metavar="FILE", help="also write every grade's figures here")
    args = parser.parse_args()
    import docker

    try:
        docker.from_env().images.get(args.image)
    except docker.errors.ImageNotFound:
        sys.exit(f"{args.image}: no such image; build it with the Docker tests (pytest tests/submission/grading/"
                 "with_docker -k build) or pass --image")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shopbench-queue-bench-") as tmp:
        rows = run(args, Path(tmp))
    print(report(rows, args, time.monotonic() - started))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
