"""An --output-dir given again: a folder that holds a run is refused with the choices (--resume when it can
continue, another folder, --overwrite), --overwrite clears the run's files and keeps the rest, and a
symlink or a FIFO at a name the run writes is refused by name before the model runs. local_evaluation.py
runs in a subprocess with a timeout wherever a FIFO could make it wait; docker run and grade refuse
before they reach Docker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from kit_paths import ROOT, SAMPLE_DATA, TESTS

import local_evaluation
from submission import cli
from submission.reports.reuse import KIT_FILES, previous_run

DUMMY = "models.dummy_model:DummyModel"
MARKS = "fake_models.models:TouchesFileEachBatch"  # creates FAKE_MARKER once it has answered a batch
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}


def evaluate(out, *flags) -> int:
    return local_evaluation.main(["--model", DUMMY, "--data", str(SAMPLE_DATA), "--no-limits", "--output-dir",
                                  str(out), *flags])


def evaluate_in_subprocess(out, *flags, marker=None) -> subprocess.CompletedProcess:
    """local_evaluation.py in its own process, given two minutes: a run blocked on a FIFO fails the test."""
    command = [sys.executable, str(ROOT / "local_evaluation.py"), "--model", MARKS, "--data", str(SAMPLE_DATA),
               "--limit", "4", "--no-limits", *flags]
    env = {**ENV, "FAKE_MARKER": str(marker or out.parent / "marker")}
    try:
        return subprocess.run(command + (["--output-dir", str(out)] if "--resume" not in flags else []), env=env,
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("local_evaluation.py blocked (on a FIFO?) for 120 s")


def test_a_finished_run_is_refused_and_overwrite_replaces_only_its_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert evaluate(out, "--limit", "4") == 0
    (out / "compare.html").write_text("<html>a comparison of the earlier run</html>")
    (out / "notes.txt").write_text("mine")
    before = (out / "results.json").read_bytes()
    capsys.readouterr()
    assert evaluate(out, "--limit", "2") == 2
    err = capsys.readouterr().err
    assert f"--output-dir {out} holds a finished run (verdict ok; 4 of 4 questions answered; " in err
    assert "write to another --output-dir; or pass --overwrite to remove its files first" in err
    assert "--resume" not in err  # an ok run has nothing to continue
    assert (out / "results.json").read_bytes() == before
    assert evaluate(out, "--limit", "2", "--overwrite") == 0
    assert json.loads((out / "results.json").read_text())["n_questions"] == 2
    assert not (out / "compare.html").exists() and (out / "notes.txt").read_text() == "mine"


def test_a_run_that_can_continue_names_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("FAKE_FAIL_BATCH", "1")
    out = tmp_path / "run"
    assert local_evaluation.main(["--model", "fake_models.models:RaisesInBatchPredict", "--data", str(SAMPLE_DATA),
                                  "--limit", "6", "--no-limits", "--output-dir", str(out)]) == 1
    found = previous_run(out)
    assert found.finished and found.verdict == "model_error" and found.resumable
    capsys.readouterr()
    assert evaluate(out, "--limit", "6") == 2
    assert f"continue it with --resume {out}; write to another --output-dir; or pass --overwrite" in \
        capsys.readouterr().err
    (out / "results.json").unlink()  # an interrupted run: predictions and run.json, no results.json
    assert evaluate(out, "--limit", "6") == 2
    assert "holds an interrupted run (no results.json)" in capsys.readouterr().err


def test_rescoring_into_the_folder_it_reads_with_overwrite_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert evaluate(out, "--limit", "4") == 0
    assert local_evaluation.main(["--predictions", str(out / "predictions.jsonl"), "--data", str(SAMPLE_DATA),
                                  "--limit", "4", "--output-dir", str(out), "--overwrite"]) == 2
    assert "which --overwrite removes first" in capsys.readouterr().err
    assert (out / "predictions.jsonl").is_file()


@pytest.mark.parametrize("name, kind", [("predictions.jsonl", "fifo"), ("results.json", "symlink"),
                                        ("run.json", "fifo"), ("report.html", "symlink")])
def test_a_link_or_a_fifo_at_a_run_file_is_refused_before_the_model_runs(tmp_path, name, kind):
    out, outside = tmp_path / "run", tmp_path / "outside.txt"
    out.mkdir()
    outside.write_text("precious\n")
    (out / name).symlink_to(outside) if kind == "symlink" else os.mkfifo(out / name)
    done = evaluate_in_subprocess(out)
    assert done.returncode == 2, done.stderr[-2000:]
    what = f"a symlink to {outside}" if kind == "symlink" else "a FIFO (named pipe)"
    assert f"error: {out / name} is {what}: the kit writes its own regular file there" in done.stderr
    assert not (tmp_path / "marker").exists() and outside.read_text() == "precious\n"  # the model never ran
    assert sorted(os.listdir(out)) == [name]


def test_resume_reads_nothing_through_a_fifo(tmp_path):
    out = tmp_path / "run"
    assert evaluate_in_subprocess(out).returncode == 0
    (out / "run.json").unlink()
    os.mkfifo(out / "run.json")
    done = evaluate_in_subprocess(out, "--resume", str(out))
    assert done.returncode == 2 and f"{out / 'run.json'} is a FIFO" in done.stderr


def test_overwrite_removes_a_link_at_a_run_file_without_following_it(tmp_path, capsys):
    out, outside = tmp_path / "run", tmp_path / "outside.txt"
    out.mkdir()
    outside.write_text("precious\n")
    (out / "results.json").symlink_to(outside)
    assert evaluate(out, "--limit", "2", "--overwrite") == 0
    assert outside.read_text() == "precious\n" and not (out / "results.json").is_symlink()


@pytest.mark.parametrize("command", [
    ["docker", "run", "--image", "shopbench-absent:never"],
    ["grade", "--image", "shopbench-absent:never", "--track", "amazon-kdd-cup-24-all-around",
     "--truth", str(SAMPLE_DATA)],
])
def test_docker_run_and_grade_refuse_a_folder_holding_a_run_before_docker(tmp_path, capsys, command):
    out = tmp_path / "graded"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"verdict": {"status": "ok"}, "n_answered": 3, "n_questions": 3}))
    (out / ("scores.json" if command[0] == "grade" else "predictions.jsonl")).write_text("{}\n")
    assert cli.main([*command, "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--output-dir {out} holds a finished run (verdict ok; 3 of 3 questions answered;" in err
    assert "or pass --overwrite to remove its files first" in err and "--resume" not in err
    if command[0] == "grade":
        assert "An organiser re-grading into the same folder passes --overwrite." in err
    (out / "results.json").unlink()
    (out / "results.json").symlink_to(tmp_path)
    for name in ("scores.json", "predictions.jsonl"):
        if (out / name).exists():
            (out / name).unlink()
    assert cli.main([*command, "--output-dir", str(out)]) == 2
    assert f"{out / 'results.json'} is a symlink to {tmp_path}" in capsys.readouterr().err


def test_the_kit_files_are_the_names_the_commands_write():
    from submission.evaluate.local import RUN_FILE
    from submission.grading.leaderboard import SCORES_FILE
    from submission.reports.compare import COMPARE_FILE
    from submission.reports.run_folder import written_files

    assert set(written_files(object())) | {RUN_FILE, SCORES_FILE, COMPARE_FILE} == set(KIT_FILES)
