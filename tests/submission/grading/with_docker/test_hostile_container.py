"""Hostile submissions against the grader, in real containers (issue 19): the host is the judge, so a forged
report, a killed supervisor, symlinks in the container's output folder, garbage and floods on the channel or
in the log, and signals to the grader all end with the host's own verdict, nothing of the host written
through the container's files, and no container left. Each test failed when the judge ran in the container
(checked against the tree at 334a88b)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from docker_daemon import image_tag
from kit_paths import ROOT, SAMPLE_DATA, TESTS

from submission import cli
from submission.grading.container_runner import ContainerSettings, run_container
from submission.grading.images import BuildOptions, build_image
from submission.harness.profiles import limits_for, load_profiles
from submission.harness.protocol import MAX_LINE_BYTES
from submission.scoring.data import ALL_AROUND, load_questions

pytestmark = pytest.mark.docker

FORGER_TAG = image_tag("forger")


def docker_run(out: Path, image: str, model: str, profiles: Path, *args: str) -> int:
    return cli.main(["docker", "run", "--image", image, "--output-dir", str(out), "--grace-s", "1", "--model",
                     f"models.docker_test_models:{model}", "--data", str(SAMPLE_DATA), "--limit", "12",
                     "--profile", "docker-test", "--profiles-file", str(profiles), *args])


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


# ---------------------------------------------------------------- the attack: a forged grade


@pytest.fixture(scope="module")
def forger_image(docker_client, base_image, dummy_image, dummy_submission, tmp_path_factory) -> str:
    repo = tmp_path_factory.mktemp("forger") / "forger"
    shutil.copytree(dummy_submission, repo)
    (repo / "models" / "user_config.py").write_text("from models.docker_test_models import ForgesItsGrade\n\n"
                                                     "UserModel = ForgesItsGrade\n")
    build_image(docker_client, repo, BuildOptions(FORGER_TAG, base_image=base_image))
    return FORGER_TAG


@pytest.mark.parametrize("fifos", [False, True])
def test_a_forged_report_symlinks_and_a_killed_supervisor_get_no_score_and_touch_nothing_on_the_host(forger_image,
                                                                                                     tmp_path, fifos):
    """The issue's attack: an ok report, predictions.jsonl pointing at another team's graded run, container.log
    at a host file (or both FIFOs, which once blocked the host writing the log), the supervisor killed."""
    questions = [json.loads(line) for line in SAMPLE_DATA.read_text().splitlines()[:8]]
    graded = tmp_path / "graded"
    team_b = graded / "team-b" / "all-around" / "predictions.jsonl"  # another team's graded run: perfect answers
    team_b.parent.mkdir(parents=True)
    team_b.write_text("".join(json.dumps({"row": i, "output": q["output_field"]}) + "\n"
                              for i, q in enumerate(questions)))
    victim = tmp_path / "host-file.txt"
    victim.write_text("the host's own file\n")
    questions[0]["input_field"] += (f"\nTEAM-B-PATH: ../../../team-b/all-around/predictions.jsonl"
                                    f"\nVICTIM-PATH: {victim}\nFIFOS: {'yes' if fifos else 'no'}")
    truth = tmp_path / "truth.jsonl"
    truth.write_text("".join(json.dumps(q) + "\n" for q in questions))
    out = graded / "team-a" / "all-around"
    code = cli.main(["grade", "--image", forger_image, "--track", ALL_AROUND, "--truth", str(truth),
                     "--output-dir", str(out), "--name", "team-a"])
    scores = json.loads((out / "scores.json").read_text())
    assert code == 1 and scores["score"] is None and scores["partial_score"] is None
    assert scores["verdict"]["status"] == "crashed" and scores["n_answered"] == 0, scores["verdict"]
    assert re.search(r"the container's model loop ended with exit code \d+ during batch 0 ",
                     scores["verdict"]["detail"])
    assert victim.read_text() == "the host's own file\n"
    assert json.loads(team_b.read_text().splitlines()[0])["output"] == questions[0]["output_field"]
    log = out / "container" / "container.log"
    assert log.is_file() and not log.is_symlink()
    assert "MODEL-LINE: written through the grader's symlink" in log.read_text()
    assert not list(out.rglob("run_report.json"))
    assert all(p.is_file() or p.is_dir() for p in out.rglob("*")) and not any(p.is_symlink() for p in out.rglob("*"))


# ---------------------------------------------------------------- the channel and the log


class PeakRss(threading.Thread):
    """This process's resident memory, sampled every 10 ms while it runs: the peak above the start."""

    def __init__(self):
        super().__init__(daemon=True)
        self.start_rss = self.peak = self.rss()
        self.done = threading.Event()

    @staticmethod
    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> PeakRss:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()

    @property
    def grown(self) -> int:
        return self.peak - self.start_rss


@pytest.mark.parametrize("model, said", [
    ("SendsMalformedJson", "the model's process sent a line that is not JSON: b'{not json'"),
    ("ForgesAnsweredClock", "the model's process sent a \"answered\" message while batch 1 (3 prompts) was asked"),
    ("FloodsItsChannel", f"the model's process sent a line of more than {MAX_LINE_BYTES:,} bytes"),
])
def test_garbage_and_floods_on_the_channel_end_the_run_with_a_protocol_verdict(dummy_image, test_profiles, tmp_path,
                                                                               model, said):
    out = tmp_path / "run"
    code = docker_run(out, dummy_image, model, test_profiles)
    run = results(out)
    assert code == 1 and run["verdict"]["status"] == "protocol", run["verdict"]
    assert run["verdict"]["detail"].startswith(said)
    assert run["n_answered"] == 4 and run["partial"] is True and not run["docker"]["killed_at_deadline"]


def test_the_host_holds_at_most_about_one_line_of_a_channel_flood(docker_client, dummy_image, test_profiles,
                                                                  tmp_path):
    limits = limits_for(load_profiles(test_profiles)["docker-test"], ALL_AROUND)
    questions = load_questions(SAMPLE_DATA)[:12]
    settings = ContainerSettings(dummy_image, "models.docker_test_models:FloodsItsChannel", grace_s=1)
    run_container(docker_client, questions, tmp_path / "warm-up", limits, settings)  # imports, caches: not counted
    with PeakRss() as memory:
        run = run_container(docker_client, questions, tmp_path / "run", limits, settings)
    assert run.outcome.verdict.status == "protocol" and run.outcome.n_answered == 4
    assert memory.grown < 3 * MAX_LINE_BYTES, f"{memory.grown:,} bytes"  # 200 MB were sent


def test_a_log_flood_is_cut_at_the_cap_with_a_note_and_the_run_scores(dummy_image, test_profiles, tmp_path):
    out = tmp_path / "run"
    code = docker_run(out, dummy_image, "FloodsItsLog", test_profiles, "--time-scale", "8")
    run = results(out)
    assert code == 0 and run["verdict"]["status"] == "ok" and run["n_answered"] == 12, run["verdict"]
    log = out / "container" / "container.log"
    assert log.stat().st_size < 2_000_000 + 1000  # the docker-test profile's output_mb
    assert run["docker"]["log_dropped_bytes"] > 25_000_000
    assert "more bytes past the log's cap of 2,000,000 bytes; they were dropped" in log.read_text()[-300:]


# ---------------------------------------------------------------- signals to the grader


def containers_of(docker_client, pid: int) -> list:
    label = f"shopbench.judge={socket.gethostname()}:{pid}"
    return docker_client.containers.list(all=True, filters={"label": label})


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_grader_removes_the_container_and_keeps_the_answers_so_far(docker_client, dummy_image,
                                                                                   tmp_path, sig, status):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    grader = subprocess.Popen(
        [sys.executable, "-m", "submission", "docker", "run", "--image", dummy_image, "--model",
         "models.docker_test_models:SleepsInBatch", "--data", str(SAMPLE_DATA), "--limit", "12", "--no-limits",
         "--output-dir", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        predictions = out / "predictions.jsonl"
        while time.monotonic() < deadline and not (predictions.exists() and
                                                   len(predictions.read_text().splitlines()) >= 4):
            time.sleep(0.1)
        assert containers_of(docker_client, grader.pid), "the grader's container is not running"
        grader.send_signal(sig)
        _, stderr = grader.communicate(timeout=300)  # the container stopped at once; scoring loads its models
    finally:
        if grader.poll() is None:
            grader.kill()
        for left in containers_of(docker_client, grader.pid):
            left.remove(force=True)
    assert grader.returncode == status, stderr[-2000:]
    run = results(out)
    assert run["verdict"]["status"] == "interrupted" and signal.Signals(sig).name in run["verdict"]["detail"]
    assert run["n_answered"] == 4 and run["partial"] is True
    assert containers_of(docker_client, grader.pid) == []


# ---------------------------------------------------------------- GPU memory, measured on the host


def test_the_host_measures_the_containers_gpu_memory_itself(dummy_image, test_profiles, tmp_path, monkeypatch):
    """A fake NVML on the host lists every process of the machine running the kit's model loop with 20 GiB (other
    runs' too, on a shared daemon): only the container's own (matched by its cgroup) count, and past the 1 GiB
    cap the host stops it."""
    sys.path.insert(0, str(TESTS / "submission" / "harness"))
    from fake_nvml import GIB, Device, FakeNvml

    import submission.grading.container_channel as channel

    def entry_points():
        found = []
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
                if argv[0].endswith(b"python3") and argv[1:2] == [b"/home/aicrowd/docker/entrypoint.py"]:
                    found.append((int(name), 20 * GIB))  # the model's loop (not docker-init, which starts it)
            except OSError:
                continue
        return found

    monkeypatch.setattr(channel, "load_nvml", lambda: FakeNvml([Device("GPU-0aaa-0", processes=entry_points)]))
    out = tmp_path / "run"
    code = docker_run(out, dummy_image, "SleepsInBatch", test_profiles, "--profile", "docker-test-gpu")
    run = results(out)
    assert code == 1 and run["verdict"]["status"] == "gpu_memory", run["verdict"]
    assert run["verdict"]["detail"] == ("GPU 0 (NVIDIA H200): peak 20.00 GiB of the container's processes, "
                                        "cap 1.00 GiB")
    assert run["peak_memory"]["gpus"][0]["peak_bytes"] == 20 * GIB
