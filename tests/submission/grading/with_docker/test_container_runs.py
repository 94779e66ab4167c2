"""Submissions built and run in real containers: the same scores as local_evaluation.py, and every limit
ending the run with its verdict, judged on the host (the per-batch deadline and the budget by the host's
clocks, the RAM by the container's cgroup, the disk by its tmpfs)."""

import json
import re
from pathlib import Path

import pytest
from kit_paths import SAMPLE_DATA

import local_evaluation
from submission import cli

pytestmark = pytest.mark.docker

SEED = "3"


def docker_run(out: Path, image: str, *args: str) -> int:
    return cli.main(["docker", "run", "--image", image, "--output-dir", str(out), "--grace-s", "1", *args])


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_dummy_in_a_container_scores_as_local_evaluation(dummy_image, dummy_submission, tmp_path, capsys):
    local, container = tmp_path / "local", tmp_path / "container"
    assert local_evaluation.main(["--model", "models.dummy_model:DummyModel", "--data", str(SAMPLE_DATA),
                                  "--seed", SEED, "--profile", "cpu", "--output-dir", str(local)]) == 0
    local_table = capsys.readouterr().out
    assert docker_run(container, dummy_image, "--repo", str(dummy_submission), "--data", str(SAMPLE_DATA),
                      "--seed", SEED) == 0
    container_table = capsys.readouterr().out
    mine, theirs = results(container), results(local)
    assert mine["tasks"] == theirs["tasks"]
    assert (mine["all_around"], mine["tracks"], mine["task_mean"]) == (theirs["all_around"], theirs["tracks"],
                                                                      theirs["task_mean"])
    assert set(mine) - set(theirs) == {"docker", "container"}  # one pipeline: the same results.json, with the
    assert set(theirs) <= set(mine)                             # container's side added
    assert mine["verdict"]["status"] == "ok" and mine["profile"]["name"] == "cpu"  # "gpu": false
    assert mine["container"]["uid"] == 1001 and mine["docker"]["given"]["network_mode"] == "none"
    assert scored_outputs(container) == scored_outputs(local)
    assert table(container_table) == table(local_table)  # the same report on the terminal


def scored_outputs(out: Path) -> list[tuple]:
    return [(r["row"], r["output"], r["score"]) for r in map(json.loads, (out / "predictions.jsonl").open())]


def table(printed: str) -> str:
    return printed[printed.index("task "):printed.index("parse failures")]


def test_a_batch_past_its_deadline_is_a_timeout_with_the_first_batch_scored(dummy_image, test_profiles, tmp_path,
                                                                           capsys):
    out = tmp_path / "run"
    code = docker_run(out, dummy_image, "--model", "models.docker_test_models:SleepsInBatch", "--limit", "12",
                      "--profile", "docker-test", "--profiles-file", str(test_profiles), "--data", str(SAMPLE_DATA))
    assert code == 1
    run = results(out)
    assert run["verdict"]["status"] == "timeout" and run["verdict"]["detail"].startswith("batch 1 (")
    printed = "".join(capsys.readouterr())
    own = printed.split("last lines of the container's log")[0]  # the log's tail quotes the container verbatim
    assert own.count(run["verdict"]["detail"]) == 1  # the verdict, once
    assert f"error: timeout: {run['verdict']['detail']}" in own and "PARTIAL RESULTS: 4 of 12" in own
    assert run["n_answered"] == 4 and run["partial"] is True
    assert not run["docker"]["killed_at_deadline"]  # the host's batch clock stopped it, not the outer deadline
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 4


def test_a_model_that_freezes_its_parent_cannot_stop_the_hosts_clock(dummy_image, test_profiles, tmp_path):
    """SIGSTOP to its parent froze the judge when the judge ran in the container (then only the outer deadline,
    budget plus grace, ended the run); the judge is on the host now, and its batch clock ends it."""
    out = tmp_path / "run"
    code = docker_run(out, dummy_image, "--model", "models.docker_test_models:StopsItsSupervisor", "--limit", "12",
                      "--profile", "docker-test", "--profiles-file", str(test_profiles), "--data", str(SAMPLE_DATA))
    assert code == 1
    run = results(out)
    docker = run["docker"]
    assert not docker["killed_at_deadline"] and docker["deadline_s"] == pytest.approx(0.1 * 60 + 1)
    assert docker["wall_s"] < docker["deadline_s"]
    assert run["verdict"]["status"] == "timeout"
    assert re.fullmatch(r"batch 1 \(3 prompts\) was stopped after 1\.\d s, limit 1.5 s", run["verdict"]["detail"])
    assert run["n_answered"] == 4  # the batch answered before the freeze is kept and scored
    assert sum(t["n"] for t in run["tasks"].values()) == 4


def test_memory_beyond_the_container_limit_is_a_memory_verdict(dummy_image, test_profiles, tmp_path):
    out = tmp_path / "run"
    code = docker_run(out, dummy_image, "--model", "models.docker_test_models:HogsMemory", "--limit", "12",
                      "--profile", "docker-test", "--profiles-file", str(test_profiles), "--data", str(SAMPLE_DATA))
    assert code == 1
    run = results(out)
    assert run["docker"]["given"]["memory_bytes"] == 250_000_000 == run["docker"]["given"]["memory_swap_bytes"]
    assert run["docker"]["oom_killed"]  # the model lifted its RLIMIT_AS: the cgroup limit stopped it
    assert run["verdict"]["status"] == "memory", run["verdict"]
    assert run["n_answered"] == 4


def host_free(path: Path) -> int:
    import shutil

    return shutil.disk_usage(path).free


@pytest.mark.parametrize("model, where", [("FillsTmp", "No space left on device; the scratch cap is 20.0 MB"),
                                          ("FillsOutput", "/shopbench/output, a tmpfs of 2.0 MB")])
def test_writing_past_a_disk_cap_is_a_disk_verdict_with_the_answers_kept(dummy_image, test_profiles, tmp_path, model,
                                                                          where):
    out = tmp_path / "run"
    before = host_free(tmp_path)
    code = docker_run(out, dummy_image, "--model", f"models.docker_test_models:{model}", "--limit", "12",
                      "--profile", "docker-test", "--profiles-file", str(test_profiles), "--data", str(SAMPLE_DATA))
    run = results(out)
    assert code == 1 and run["verdict"]["status"] == "disk", run["verdict"]
    assert where in run["verdict"]["detail"] and run["n_answered"] == 4
    assert run["docker"]["given"]["read_only_root"] is True
    assert set(run["docker"]["given"]["tmpfs"]) == {"/tmp", "/home/aicrowd/.cache", "/shopbench/output"}
    assert "size=20000000" in run["docker"]["given"]["tmpfs"]["/tmp"]
    assert "size=2000000" in run["docker"]["given"]["tmpfs"]["/shopbench/output"]
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [  # only the host's files: none of the model's
        "container.log", "predictions.jsonl", "report.html", "results.json", "scores.png"]
    assert host_free(tmp_path) > before - 5_000_000


def test_a_model_that_writes_a_little_within_the_caps_scores_normally(dummy_image, test_profiles, tmp_path):
    out = tmp_path / "run"
    code = docker_run(out, dummy_image, "--model", "models.docker_test_models:WritesALittle", "--limit", "8",
                      "--profile", "docker-test", "--profiles-file", str(test_profiles), "--data", str(SAMPLE_DATA),
                      "--time-scale", "4")
    run = results(out)
    assert code == 0 and run["verdict"]["status"] == "ok" and run["n_answered"] == 8
