"""The grading queue without Docker: enqueue's errors, routing by GPU count and priority on a real Redis
(and a real RabbitMQ where installed), status of queued grades, a saved image's aicrowd.json read without
Docker, and what a grade request may hold. The workers themselves: with_docker/test_workers.py."""

import io
import json
import tarfile

import pytest
from brokers import RabbitServer, RedisServer, free_port, why_missing
from kit_paths import ROOT

from submission import cli
from submission.grading.image_tar import read_from_saved_image
from submission.grading.queue import (
    REGISTRY_KEY,
    TASK_NAME,
    GradeFailed,
    GradeRequest,
    endpoints,
    make_app,
    queue_for,
    registry,
)
from submission.scoring.data import ALL_AROUND

PROFILES = ROOT / "tests" / "submission" / "grading" / "with_docker" / "fixtures" / "queue_profiles.yaml"
AICROWD = "home/aicrowd/aicrowd.json"


# ---------------------------------------------------------------- a saved image, made by hand


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def saved_image(path, *layers: dict[str, bytes]):
    """A tarball in `docker save`'s layout: manifest.json and one tar per layer (bottom first)."""
    names = [f"layer{i}/layer.tar" for i in range(len(layers))]
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["t:1"], "Layers": names}]).encode()
    path.write_bytes(_tar({"manifest.json": manifest, "config.json": b"{}",
                           **{name: _tar(layer) for name, layer in zip(names, layers, strict=True)}}))
    return path


def aicrowd(gpu: bool) -> bytes:
    return json.dumps({"challenge_id": ALL_AROUND, "authors": ["t"], "gpu": gpu}).encode()


def test_a_saved_images_file_comes_from_its_topmost_layer(tmp_path):
    image = saved_image(tmp_path / "a.tar", {AICROWD: aicrowd(False), "etc/x": b"x"}, {"home/aicrowd/models/m.py": b""},
                        {AICROWD: aicrowd(True)})
    assert json.loads(read_from_saved_image(image, "/" + AICROWD))["gpu"] is True
    deleted = saved_image(tmp_path / "b.tar", {AICROWD: aicrowd(False)}, {"home/aicrowd/.wh.aicrowd.json": b""})
    assert read_from_saved_image(deleted, "/" + AICROWD) is None
    opaque = saved_image(tmp_path / "c.tar", {AICROWD: aicrowd(False)}, {"home/.wh..wh..opq": b""})
    assert read_from_saved_image(opaque, "/" + AICROWD) is None
    (tmp_path / "d.tar").write_bytes(b"not a tarball")
    with pytest.raises(Exception, match=r"d.tar: not a readable `docker save` tarball"):
        read_from_saved_image(tmp_path / "d.tar", "/" + AICROWD)
    (tmp_path / "e.tar").write_bytes(_tar({"x": b""}))
    with pytest.raises(Exception, match=r"e.tar: no manifest.json listing layers"):
        read_from_saved_image(tmp_path / "e.tar", "/" + AICROWD)


# ---------------------------------------------------------------- errors found before anything is sent


def enqueue(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["enqueue", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_enqueue_errors_name_the_problem_and_the_fix(tmp_path, capsys):
    closed = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    image = saved_image(tmp_path / "team.tar", {AICROWD: aicrowd(False)})
    base = ["--broker", closed, "--submission", "team-a"]
    code, _, err = enqueue(capsys, *base, "--image-file", str(image), "--track", "amazon-kdd-cup-24-all-arund")
    assert code == 2 and "unknown track; did you mean 'amazon-kdd-cup-24-all-around'?" in err
    code, _, err = enqueue(capsys, *base, "--image-file", str(tmp_path / "absent.tar"), "--track", ALL_AROUND)
    assert code == 2 and f"--image-file {tmp_path / 'absent.tar'}: no such file" in err
    code, _, err = enqueue(capsys, *base, "--image-file", str(image), "--track", ALL_AROUND)
    assert code == 2 and "the broker at redis://:***@127.0.0.1:" in err and "does not answer" in err
    assert "s3cret-pw" not in err
    code, _, err = enqueue(capsys, "--broker", closed, "--submission", "../escape", "--image-file", str(image),
                           "--track", ALL_AROUND)
    assert code == 2 and "submission name '../escape'" in err
    code, _, err = enqueue(capsys, *base, "--image-file", str(image), "--track", ALL_AROUND, "--profile", "phase3")
    assert code == 2 and "phase3" in err and "phase2" in err
    amqp = f"amqp://grader:s3cret-pw@127.0.0.1:{free_port()}//"
    code, _, err = enqueue(capsys, "--broker", amqp, "--submission", "team-a", "--image-file", str(image),
                           "--track", ALL_AROUND)
    assert code == 2 and "is not Redis: pass --backend redis://" in err and "s3cret-pw" not in err
    code, _, err = enqueue(capsys, "--broker", amqp, "--backend", closed, "--submission", "team-a", "--image-file",
                           str(image), "--track", ALL_AROUND)
    assert code == 2 and "the broker at amqp://grader:***@127.0.0.1:" in err and "s3cret-pw" not in err


def test_a_grade_request_read_from_the_queue_is_checked():
    good = GradeRequest("id", "team-a", ALL_AROUND, "cpu", 0, image="t:1").payload()
    assert GradeRequest.from_payload(good).image == "t:1"
    for bad, why in ((None, "not a grade request"), ({**good, "submission": "a/b"}, "submission name"),
                     ({**good, "track": "x"}, "unknown track"), ({**good, "image_file": "/f"}, "exactly one"),
                     ({**good, "gpus": -1}, "gpus must be a count"), ({**good, "priority": 11}, "priority")):
        with pytest.raises(GradeFailed, match=why):
            GradeRequest.from_payload(bad)


def test_the_backend_must_be_redis():
    with pytest.raises(Exception, match="the result backend must be Redis"):
        endpoints("redis://127.0.0.1:1/0", "db+sqlite:///x.db")
    with pytest.raises(Exception, match="expected a redis://"):
        endpoints("http://127.0.0.1:1/0")
    assert endpoints("redis://127.0.0.1:1/0").backend == "redis://127.0.0.1:1/0"


# ---------------------------------------------------------------- routing and priority on real brokers


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis"), password="pw-of-the-test")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server.url
    server.stop()


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def broker(request, redis_url, tmp_path_factory):
    """(broker URL, backend URL): Redis alone, or RabbitMQ with Redis as the result backend."""
    if request.param == "redis":
        yield redis_url.replace("/0", "/1"), None
        return
    try:
        server = RabbitServer(tmp_path_factory.mktemp("rabbitmq"))
    except RuntimeError as exc:
        pytest.skip(f"RabbitMQ: {exc}" if "not installed" in str(exc) else why_missing("rabbitmq-server") + str(exc))
    yield server.url, redis_url.replace("/0", "/2")
    server.stop()


def drain(app, queue: str) -> list[dict]:
    """The grade requests waiting in ``queue``, in the order a worker gets them (taken off the queue)."""
    requests = []
    with app.connection_for_read() as connection:
        with connection.SimpleQueue(app.amqp.queues[queue]) as simple:
            while True:
                try:
                    message = simple.get(timeout=1.5)
                except simple.Empty:
                    return requests
                assert message.headers["task"] == TASK_NAME
                requests.append(message.decode()[0][0])
                message.ack()


def test_grades_go_to_the_queue_of_their_gpu_count_highest_priority_first(broker, tmp_path, capsys):
    url, backend = broker
    where = endpoints(url, backend)
    app = make_app(where, 3600)
    app.backend.client.delete(REGISTRY_KEY)
    cpu = saved_image(tmp_path / "cpu.tar", {AICROWD: aicrowd(False)})
    gpu = saved_image(tmp_path / "gpu.tar", {AICROWD: aicrowd(True)})
    common = ["--broker", url, "--track", ALL_AROUND] + (["--backend", backend] if backend else [])
    ids = {}
    for name, image, extra in (("low", cpu, ["--priority", "1"]), ("high", cpu, ["--priority", "9"]),
                               ("middle", cpu, []), ("phase2", gpu, []),
                               ("one-gpu", cpu, ["--profile", "fake-1gpu", "--profiles-file", str(PROFILES)])):
        code, out, err = enqueue(capsys, *common, "--submission", name, "--image-file", str(image), *extra)
        assert code == 0, err
        ids[name] = out.strip()
        assert "note: no live worker takes" in err
    code, out, err = enqueue(capsys, *common, "--submission", "low", "--image-file", str(cpu), "--priority", "1")
    assert code == 0 and "low was enqueued on this track before (1 time(s))" in err
    ids["low-again"] = out.strip()
    assert [r.grade_id for r in registry(app)] == list(ids.values())

    code = cli.main(["status", "--broker", url, "--json"] + (["--backend", backend] if backend else []))
    shown = json.loads(capsys.readouterr().out)
    assert code == 0 and shown["workers"] == {}
    assert {(g["submission"], g["state"], g["grade_id"]) for g in shown["grades"]} == {
        (name, "queued", ids[name]) for name in ("high", "middle", "phase2", "one-gpu")} | {
        ("low", "queued", ids["low-again"])}  # the latest grade of each submission and track
    assert next(g for g in shown["grades"] if g["submission"] == "low")["earlier"] == 1

    cpu_queue = drain(app, queue_for(0))
    assert [r["submission"] for r in cpu_queue] == ["high", "middle", "low", "low"]  # 9, 5, then the two 1s in order
    assert [r["grade_id"] for r in cpu_queue[2:]] == [ids["low"], ids["low-again"]]
    assert all(r["profile"] == "cpu" and r["gpus"] == 0 for r in cpu_queue)
    (phase2,) = drain(app, queue_for(4))
    assert (phase2["submission"], phase2["profile"], phase2["image_file"]) == ("phase2", "phase2", str(gpu))
    (one,) = drain(app, queue_for(1))
    assert (one["submission"], one["profile"], one["gpus"]) == ("one-gpu", "fake-1gpu", 1)


def test_status_names_a_broker_that_does_not_answer_without_its_password(capsys):
    closed = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    assert cli.main(["status", "--broker", closed]) == 2
    err = capsys.readouterr().err
    assert "redis://:***@127.0.0.1:" in err and "does not answer" in err and "s3cret-pw" not in err
