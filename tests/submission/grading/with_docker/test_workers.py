"""Grading at scale with real parts: Redis from Debian on a free port (RabbitMQ too where installed),
workers as real processes, the real Docker daemon and small submission images built from the test base
image: one that answers at once, one that pauses 10 s first (so a grade can be interrupted mid-way).

Every wait is generous and nothing asserts on speed: the machine is shared.
"""

import json
import shutil
from pathlib import Path

import pytest
from brokers import RabbitServer, RedisServer
from kit_paths import SAMPLE_DATA
from queue_workers import (
    Worker,
    containers_of,
    enqueue,
    grades,
    kit,
    wait_for_container,
    wait_until,
)

from submission.grading.images import BuildOptions, build_image, save_image
from submission.grading.results_folder import FAILED, GRADE_FILE, STAGING, TRASH
from submission.scoring.data import ALL_AROUND

pytestmark = pytest.mark.docker

PAUSE_TAG = "shopbench-issue-21-workers-pause:latest"
ABSENT_TAG = "shopbench-issue-21-workers-absent:latest"


@pytest.fixture(scope="module")
def pause_image(docker_client, base_image, dummy_image, dummy_submission, tmp_path_factory) -> str:
    """The dummy submission with a code-only change: its UserModel pauses 10 s before answering."""
    repo = tmp_path_factory.mktemp("pause") / "pause"
    shutil.copytree(dummy_submission, repo)
    (repo / "models" / "user_config.py").write_text(
        "from models.docker_test_models import AnswersAfterAPause\n\nUserModel = AnswersAfterAPause\n")
    build_image(docker_client, repo, BuildOptions(PAUSE_TAG, base_image=base_image))
    return PAUSE_TAG


@pytest.fixture(scope="module")
def tracks(tmp_path_factory) -> Path:
    """--tracks-dir: the all-around track, 8 sample questions without embedding metrics, truth and inputs."""
    folder = tmp_path_factory.mktemp("tracks") / ALL_AROUND
    folder.mkdir()
    rows = [json.loads(line) for line in SAMPLE_DATA.read_text().splitlines()
            if line.strip() and "sent-transformer" not in line][:8]
    (folder / "truth.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "inputs.json").write_text("".join(json.dumps({k: r[k] for k in ("input_field", "is_multiple_choice")})
                                                + "\n" for r in rows))
    return folder.parent


@pytest.fixture
def redis(tmp_path):
    try:
        server = RedisServer(tmp_path / "redis")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server.url
    server.stop()


@pytest.fixture
def workers(tmp_path):
    """Start workers with ``start(name, broker, *flags)``; every one still running is stopped at the end."""
    started = []

    def start(name, broker, *extra, results=None, tracks_dir=None):
        worker = Worker(name, broker, results or tmp_path / "results", tracks_dir, tmp_path, *extra)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.stop()


def finished(names):
    return lambda status: all(status["grades"].get(n, {}).get("state") in ("done", "failed") for n in names)


def test_three_submissions_graded_by_two_workers_make_a_leaderboard_of_three_rows(
        docker_client, dummy_image, pause_image, tracks, redis, workers, tmp_path):
    image_file = tmp_path / "shared" / "team-c.tar"
    save_image(docker_client, dummy_image, image_file)
    junk = tmp_path / "shared" / "team-e.tar"  # not an image: `grade` fails, writing no scores
    junk.write_bytes(b"not a docker save tarball\n")
    results = tmp_path / "results"
    a = workers("a", redis, tracks_dir=tracks)
    b = workers("b", redis, tracks_dir=tracks)
    ids = {"team-b": enqueue(redis, "team-b", "--image", pause_image, "--profile", "queue-cpu"),
           "team-a": enqueue(redis, "team-a", "--image", dummy_image, "--profile", "queue-cpu"),
           "team-c": enqueue(redis, "team-c", "--image-file", str(image_file)),  # profile: its aicrowd.json
           "team-d": enqueue(redis, "team-d", "--image", ABSENT_TAG, "--profile", "queue-cpu"),
           "team-e": enqueue(redis, "team-e", "--image-file", str(junk), "--profile", "queue-cpu")}
    running = wait_until(lambda s: s["grades"]["team-b"]["state"] == "running", "team-b running", redis, every_s=0.5)
    seen = running["grades"]["team-b"]
    assert seen["worker"] in (a.full_name, b.full_name) and seen["grade_id"] == ids["team-b"]
    assert set(running["workers"]) == {a.full_name, b.full_name}
    status = wait_until(finished(ids), "every grade finished", redis)["grades"]

    for team in ("team-a", "team-b", "team-c"):
        grade = status[team]
        assert (grade["state"], grade["verdict"], grade["grade_id"]) == ("done", "ok", ids[team]), grade
        assert isinstance(grade["score"], float)
        record = json.loads((results / team / ALL_AROUND / GRADE_FILE).read_text())
        assert record["grade_id"] == ids[team] and record["worker"] == grade["worker"]
        assert json.loads((results / team / ALL_AROUND / "scores.json").read_text())["submission"] == team
    assert {status[t]["worker"] for t in ("team-a", "team-b", "team-c")} == {a.full_name, b.full_name}
    assert json.loads((results / "team-c" / ALL_AROUND / GRADE_FILE).read_text())["profile"] == "cpu"  # aicrowd.json
    failed = status["team-d"]
    assert failed["state"] == "failed" and f"image {ABSENT_TAG} is not on worker" in failed["detail"]
    assert "could not be pulled" in failed["detail"] and not (results / "team-d" / ALL_AROUND).exists()
    broken = status["team-e"]
    assert broken["state"] == "failed" and "the grade ended with exit code 2 and no scores" in broken["detail"]
    log = results / FAILED / ids["team-e"] / "grade.log"
    assert str(log) in broken["detail"] and "error: Docker refused" in log.read_text()
    assert list((results / STAGING).iterdir()) == [] and not (results / TRASH).exists()

    text = kit("status", "--broker", redis, "--results", str(results)).stdout
    assert "3 done, 2 failed" in text and str(results / "team-a" / ALL_AROUND) in text
    assert "team-d" in text and "failed" in text
    board = tmp_path / "board"
    kit("leaderboard", "--results", str(results), "--output-dir", str(board))
    markdown = (board / "leaderboard.md").read_text()
    assert sum(line.startswith("| ") and line.split("|")[1].strip().isdigit() for line in markdown.splitlines()) == 3
    page = (board / "leaderboard.html").read_text()
    assert page[page.index("<tbody>"):].count("<tr>") == 3
    assert all(f">{team}<" in page for team in ("team-a", "team-b", "team-c"))
    for worker in (a, b):
        assert worker.stop() == 0 and containers_of(docker_client, worker.full_name) == []


def test_a_grade_whose_worker_is_killed_is_finished_once_by_another(
        docker_client, base_image, pause_image, tracks, redis, workers, tmp_path):
    results = tmp_path / "results"
    a = workers("a", redis, "--redelivery-s", "40", tracks_dir=tracks)
    grade_id = enqueue(redis, "team-p", "--image", pause_image, "--profile", "queue-cpu")
    container = wait_for_container(docker_client, grade_id)
    assert container.labels["shopbench.worker"] == a.full_name
    processes = a.descendants()  # its pool process and the grade's process
    assert len(processes) >= 2
    a.kill9()
    import psutil

    still = []
    for pid in processes:
        try:
            still.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(still, timeout=60)
    assert alive == [], f"processes of the killed worker still run: {alive}"

    planted = docker_client.containers.create(base_image, command=["true"],
                                              labels={"shopbench.worker": a.full_name})  # as if left by a
    b = workers("b", redis, "--redelivery-s", "40", tracks_dir=tracks)
    status = wait_until(finished(["team-p"]), "the grade finished", redis)["grades"]["team-p"]
    assert (status["state"], status["verdict"], status["worker"]) == ("done", "ok", b.full_name)
    record = json.loads((results / "team-p" / ALL_AROUND / GRADE_FILE).read_text())
    assert record["grade_id"] == grade_id and record["worker"] == b.full_name
    assert list((results / STAGING).iterdir()) == []
    assert sorted(p.name for p in results.iterdir()) == [STAGING, "team-p"]
    assert b.tail(None).count(f"Task shopbench.grade[{grade_id}] succeeded") == 1
    assert "succeeded" not in a.tail(None)
    assert containers_of(docker_client, b.full_name) == []

    again = workers("a", redis, tracks_dir=tracks)  # its next start on this host removes what it left
    assert containers_of(docker_client, a.full_name) == []
    assert "removing container" in again.tail(None) and planted.short_id in again.tail(None)
    assert len(json.loads(kit("status", "--broker", redis, "--json").stdout)["grades"]) == 1


def test_a_warm_shutdown_finishes_the_running_grade_and_leaves_no_container(
        docker_client, pause_image, tracks, redis, workers, tmp_path):
    worker = workers("w", redis, tracks_dir=tracks)
    grade_id = enqueue(redis, "team-w", "--image", pause_image, "--profile", "queue-cpu")
    wait_for_container(docker_client, grade_id)
    assert worker.stop() == 0  # SIGTERM during the grade: it finishes first
    status = grades(redis)["grades"]["team-w"]
    assert (status["state"], status["verdict"], status["worker"]) == ("done", "ok", worker.full_name)
    assert containers_of(docker_client, worker.full_name) == []
    assert (tmp_path / "results" / "team-w" / ALL_AROUND / "scores.json").is_file()
    assert grades(redis)["workers"] == {}  # its heartbeat is removed with it


def test_a_4_gpu_grade_never_runs_on_a_1_gpu_worker_and_a_4_gpu_worker_runs_two_at_once(
        docker_client, dummy_image, pause_image, tracks, redis, workers, tmp_path):
    """Fake GPU counts on a host without GPUs: the grader gives the containers none (with a note), but the
    queues, the devices each grade is handed and how many run at once are the workers' own."""
    small = workers("one", redis, "--gpus", "7", tracks_dir=tracks)
    four = enqueue(redis, "four-gpus", "--image", dummy_image, "--profile", "fake-4gpu")
    enqueue(redis, "one-gpu", "--image", dummy_image, "--profile", "fake-1gpu")
    status = wait_until(finished(["one-gpu"]), "the 1-GPU grade", redis)
    assert status["grades"]["one-gpu"]["worker"] == small.full_name
    assert status["grades"]["one-gpu"]["devices"] == ["7"]
    assert status["workers"][small.full_name]["queues"] == ["shopbench.gpus-1"]
    assert status["grades"]["four-gpus"]["state"] == "queued"  # the idle 1-GPU worker left it
    assert small.stop() == 0
    assert grades(redis)["grades"]["four-gpus"]["state"] == "queued"

    big = workers("four", redis, "--gpus", "0,1,2,3", "--concurrency", "2", tracks_dir=tracks)
    status = wait_until(finished(["four-gpus"]), "the 4-GPU grade", redis)["grades"]["four-gpus"]
    assert (status["worker"], status["devices"], status["verdict"]) == (big.full_name, ["0", "1", "2", "3"], "ok")
    assert status["grade_id"] == four
    for name in ("pause-1", "pause-2"):
        enqueue(redis, name, "--image", pause_image, "--profile", "fake-1gpu")
    both = wait_until(lambda s: sum(s["grades"].get(n, {}).get("state") == "running" for n in ("pause-1", "pause-2"))
                      == 2, "two 1-GPU grades running at once", redis, every_s=0.5)["grades"]
    assert both["pause-1"]["worker"] == both["pause-2"]["worker"] == big.full_name
    status = wait_until(finished(["pause-1", "pause-2"]), "the two 1-GPU grades", redis)["grades"]
    devices = [status[n]["devices"] for n in ("pause-1", "pause-2")]
    assert all(len(d) == 1 for d in devices) and devices[0] != devices[1], devices
    records = [json.loads((tmp_path / "results" / n / ALL_AROUND / GRADE_FILE).read_text())
               for n in ("pause-1", "pause-2")]
    assert records[0]["started_at"] < records[1]["finished_at"] and records[1]["started_at"] < records[0]["finished_at"]
    assert grades(redis)["workers"][big.full_name]["queues"] == [f"shopbench.gpus-{n}" for n in (1, 2, 4)]


def test_a_grade_through_rabbitmq(docker_client, dummy_image, tracks, redis, workers, tmp_path):
    try:
        rabbit = RabbitServer(tmp_path / "rabbitmq")
    except RuntimeError as exc:
        pytest.skip(f"RabbitMQ: {exc}")
    try:
        worker = workers("r", rabbit.url, "--backend", redis, tracks_dir=tracks)
        enqueue(rabbit.url, "team-r", "--backend", redis, "--image", dummy_image, "--profile", "queue-cpu")
        status = wait_until(finished(["team-r"]), "the grade through RabbitMQ", redis)["grades"]["team-r"]
        assert (status["state"], status["verdict"], status["worker"]) == ("done", "ok", worker.full_name)
        assert worker.stop() == 0
    finally:
        rabbit.stop()
    shutil.rmtree(tmp_path / "rabbitmq", ignore_errors=True)
