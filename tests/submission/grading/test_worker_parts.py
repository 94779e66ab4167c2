"""A worker's parts, without a broker or Docker: the host's GPUs handed out (real locks, a real process
killed with kill -9), the results folder's publishing, the tracks folder and the worker's settings,
and the grade command a worker runs."""

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from kit_paths import ROOT, SAMPLE_DATA

from submission.errors import ConfigError, DataError
from submission.grading.gpu_slots import acquire
from submission.grading.grade_task import (
    GradeFailed,
    TrackFiles,
    WorkerConfig,
    grade_command,
    track_budget_s,
)
from submission.grading.queue import GradeRequest
from submission.grading.results_folder import (
    GRADE_FILE,
    STAGING,
    find_published,
    fresh_staging,
    publish,
    run_folder,
)
from submission.grading.worker import (
    build_config,
    longest_grade_s,
    queues_for,
    read_tracks,
)
from submission.scoring.data import ALL_AROUND

PROFILES = str(ROOT / "tests" / "submission" / "grading" / "with_docker" / "fixtures" / "queue_profiles.yaml")
POOL = ("0", "1", "2", "3")


# ---------------------------------------------------------------- GPUs


def test_grades_get_disjoint_devices_and_wait_when_none_are_free(tmp_path):
    a = acquire(POOL, 2, wait_s=0, folder=tmp_path)
    b = acquire(POOL, 2, wait_s=0, folder=tmp_path)
    assert a.device_ids == ("0", "1") and b.device_ids == ("2", "3")
    assert acquire(POOL, 1, wait_s=0.3, poll_s=0.05, folder=tmp_path) is None
    a.release()
    c = acquire(POOL, 1, wait_s=0, folder=tmp_path)
    assert c.device_ids == ("0",)
    assert acquire(POOL, 4, wait_s=0.2, poll_s=0.05, folder=tmp_path) is None  # nothing kept from a failed wait
    for held in (b, c):
        held.release()
    assert acquire(POOL, 4, wait_s=0, folder=tmp_path).device_ids == POOL


def test_a_process_killed_with_kill_9_frees_its_devices(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom submission.grading.gpu_slots import acquire\n"
        f"held = acquire({POOL!r}, 3, wait_s=0, folder=Path({str(tmp_path)!r}))\n"
        "print(','.join(held.device_ids), flush=True)\ntime.sleep(600)\n")],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "0,1,2"
        assert acquire(POOL, 2, wait_s=0.2, poll_s=0.05, folder=tmp_path) is None
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        assert acquire(POOL, 4, wait_s=10, folder=tmp_path).device_ids == POOL
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


# ---------------------------------------------------------------- the results folder


def staged(results, grade_id, score, enqueued_at=1.0):
    folder = fresh_staging(results, grade_id)
    (folder / "scores.json").write_text(json.dumps({"score": score, "verdict": {"status": "ok"}}))
    record = {"grade_id": grade_id, "enqueued_at": enqueued_at, "submission": "team-a", "track": ALL_AROUND}
    (folder / GRADE_FILE).write_text(json.dumps(record))
    return folder, record


def published_score(results):
    return json.loads((run_folder(results, "team-a", ALL_AROUND) / "scores.json").read_text())["score"]


def test_a_run_is_published_once_replacing_the_older_one_never_merged(tmp_path):
    first, record = staged(tmp_path, "g1", 0.1)
    (first / "only-in-the-first-run.txt").write_text("x")
    assert publish(tmp_path, first, "team-a", ALL_AROUND, record)[1] == "published"
    leftover = fresh_staging(tmp_path, "g2")  # a dead worker's half-written run of g2 ...
    (leftover / "predictions.jsonl").write_text("half")
    second, record = staged(tmp_path, "g2", 0.2, enqueued_at=2.0)  # ... replaced when g2 starts again
    assert not (second / "predictions.jsonl").exists()
    final, what = publish(tmp_path, second, "team-a", ALL_AROUND, record)
    assert what == "published" and published_score(tmp_path) == 0.2
    assert sorted(p.name for p in final.iterdir()) == [GRADE_FILE, "scores.json"]  # nothing of g1's run
    again, record = staged(tmp_path, "g2", 0.9, enqueued_at=2.0)  # g2 graded twice (redelivered after publishing)
    assert publish(tmp_path, again, "team-a", ALL_AROUND, record)[1] == "already"
    assert published_score(tmp_path) == 0.2 and not again.exists()
    late, record = staged(tmp_path, "g0", 0.5, enqueued_at=0.5)  # enqueued before g2, finished after it
    assert publish(tmp_path, late, "team-a", ALL_AROUND, record)[1] == "superseded"
    assert published_score(tmp_path) == 0.2
    assert [r["grade_id"] for r in find_published(tmp_path)] == ["g2"]
    assert list((tmp_path / STAGING).iterdir()) == []


# ---------------------------------------------------------------- the worker's settings


def tracks_dir(tmp_path):
    folder = tmp_path / "tracks" / ALL_AROUND
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "truth.json").write_text(SAMPLE_DATA.read_text())
    return tmp_path / "tracks"


def test_the_tracks_folder_is_checked_at_start(tmp_path):
    folder = tracks_dir(tmp_path)
    (track,) = read_tracks(folder)
    assert track.track == ALL_AROUND and track.inputs is None
    (folder / "amazon-kdd-cup-24-all-arund").mkdir()
    with pytest.raises(ConfigError, match="all-arund: not a track id; did you mean 'amazon-kdd-cup-24-all-around'"):
        read_tracks(folder)
    (folder / "amazon-kdd-cup-24-all-arund").rmdir()
    (folder / "amazon-kdd-cup-24-shopping-knowledge-reasoning").mkdir()
    with pytest.raises(ConfigError, match="reasoning/truth.json: no such file; each track folder holds truth.json"):
        read_tracks(folder)
    (folder / "amazon-kdd-cup-24-shopping-knowledge-reasoning" / "truth.json").write_text('{"input_field": 1}\n')
    with pytest.raises(DataError, match="reasoning/truth.json"):
        read_tracks(folder)
    with pytest.raises(ConfigError, match="no such folder"):
        read_tracks(tmp_path / "absent")


def args(tmp_path, **given):
    values = {"gpus": None, "grace_s": 5.0, "time_scale": 1.0, "name": "w1", "results": str(tmp_path / "results"),
              "tracks_dir": str(tracks_dir(tmp_path)), "profiles_file": [PROFILES], "embedding_model": [],
              "redelivery_s": None, "profile": [], **given}
    return SimpleNamespace(**values)


def test_queues_and_the_redelivery_time_follow_the_profiles_and_the_longest_grade(tmp_path):
    cpu = build_config(args(tmp_path), redis_broker=True)
    assert cpu.name.startswith("w1@") and cpu.profiles == ("cpu", "queue-cpu")
    assert queues_for(cpu) == ["shopbench.gpus-0"]
    assert longest_grade_s(cpu) == (140 * 60 + 5, f"profile cpu on {ALL_AROUND}")  # the built-in cpu profile
    assert cpu.redelivery_s == 2 * (140 * 60 + 5) + 600
    four = build_config(args(tmp_path, gpus="0,1,2,3", time_scale=0.5), redis_broker=True)
    assert four.profiles == ("phase2", "phase1", "fake-1gpu", "fake-4gpu")  # every profile its 4 GPUs fit
    assert queues_for(four) == [f"shopbench.gpus-{n}" for n in (1, 2, 4)]
    assert longest_grade_s(four) == (300 * 60 * 0.5 + 5, f"profile phase1 on {ALL_AROUND}")  # 2 GPUs: phase1 fits
    phase2 = build_config(args(tmp_path, gpus="0,1,2,3", profile=["phase2"]), redis_broker=True)
    assert queues_for(phase2) == ["shopbench.gpus-4"] and phase2.redelivery_s == 2 * (140 * 60 + 5) + 600
    with pytest.raises(ConfigError, match="--profile phase2 needs 4 GPU.* gives this worker 1"):
        build_config(args(tmp_path, gpus="0", profile=["phase2"]), redis_broker=True)
    with pytest.raises(ConfigError, match="phase3"):
        build_config(args(tmp_path, profile=["phase3"]), redis_broker=True)
    with pytest.raises(ConfigError, match="--gpus '0,x'"):
        build_config(args(tmp_path, gpus="0,x"), redis_broker=True)


def request(profile="queue-cpu", gpus=0):
    return GradeRequest("g1", "team-a", ALL_AROUND, profile, gpus, image="t:1")


def config(tmp_path, **given):
    values = {"name": "w1@h", "results": tmp_path, "tracks": (TrackFiles(ALL_AROUND, tmp_path / "truth.json", None),),
              "gpus": (), "profiles_files": (PROFILES,), "profiles": ("queue-cpu", "fake-1gpu", "fake-4gpu"),
              "grace_s": 5.0, "redelivery_s": 100.0, **given}
    return WorkerConfig(**values)


def test_a_worker_refuses_grades_it_cannot_run_safely(tmp_path):
    assert track_budget_s(config(tmp_path), request()) == 30
    with pytest.raises(GradeFailed, match="may run 35 s, not less than worker w1@h's redelivery time"):
        track_budget_s(config(tmp_path, redelivery_s=35.0), request())
    assert track_budget_s(config(tmp_path, redelivery_s=35.0, redis_broker=False), request()) == 30  # RabbitMQ
    with pytest.raises(GradeFailed, match="has no profile queue-cpu"):
        track_budget_s(config(tmp_path, profiles_files=()), request())
    with pytest.raises(GradeFailed, match="grades profiles cpu, not queue-cpu, though it takes shopbench.gpus-0"):
        track_budget_s(config(tmp_path, profiles=("cpu",)), request())
    with pytest.raises(GradeFailed, match="fake-4gpu has 4 GPU.* but 1 where the grade was enqueued"):
        track_budget_s(config(tmp_path, gpus=POOL), request("fake-4gpu", 1))
    with pytest.raises(GradeFailed, match="needs 4 GPU.* has 1"):
        track_budget_s(config(tmp_path, gpus=("0",)), request("fake-4gpu", 4))


def test_the_grade_command_carries_the_devices_labels_and_limits(tmp_path):
    command = grade_command(config(tmp_path, gpus=POOL, time_scale=0.5), request("fake-1gpu", 1),
                            TrackFiles(ALL_AROUND, tmp_path / "truth.json", tmp_path / "inputs.json"),
                            tmp_path / "out", ("2",), ["--image", "t:1"], "g1")
    assert command[:6] == [sys.executable, "-m", "submission", "grade", "--image", "t:1"]
    pairs = {command[i]: command[i + 1] for i in range(4, len(command) - 1) if command[i].startswith("--")}
    assert pairs["--gpus"] == "2" and pairs["--profile"] == "fake-1gpu" and pairs["--time-scale"] == "0.5"
    assert pairs["--inputs"] == str(tmp_path / "inputs.json") and pairs["--profiles-file"] == PROFILES
    assert [command[i + 1] for i, c in enumerate(command) if c == "--label"] == [
        "shopbench.worker=w1@h", "shopbench.grade=g1"]


def test_a_grade_process_dies_with_the_process_that_started_it(tmp_path):
    """The chain a worker relies on: a parent killed with kill -9 takes its grade process with it."""
    script = ("import time\nfrom pathlib import Path\nfrom submission.grading.grade_task import run_grade_process\n"
              f"run_grade_process(['sleep', '600'], Path({str(tmp_path / 'log')!r}), (), 600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        child = None
        for _ in range(200):
            out = subprocess.run(["pgrep", "-P", str(parent.pid), "sleep"], capture_output=True, text=True)
            if out.stdout.strip():
                child = int(out.stdout.split()[0])
                break
            time.sleep(0.1)
        assert child is not None, "the grade process did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        for _ in range(300):
            if not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2]:
                break
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
