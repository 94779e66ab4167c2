"""The runner/entry point contract: what enters the container (test format only, rows kept) and how
what comes out of it is checked."""

import json

import pytest

from submission.grading.container_contract import (
    Job,
    ReportError,
    outcome_from_report,
    outcome_to_report,
    read_inputs,
    write_inputs,
)
from submission.harness.outcome import BatchRecord, GpuUsage, RunOutcome
from submission.harness.profiles import Limits
from submission.harness.verdict import Verdict
from submission.scoring.data import Question, load_questions

LIMITS = Limits(profile="cpu", budget_track="amazon-kdd-cup-24-all-around", budget_s=60.0, ram_bytes=10**9)


def outcome(**changes) -> RunOutcome:
    values = dict(verdict=Verdict("ok", "2 questions answered within the limits"), limits=LIMITS, n_questions=2,
                  n_answered=2, n_resumed=0, batches=(BatchRecord(0, (0, 3), False, 0.5),), init_s=0.1, wall_s=1.0,
                  prior_elapsed_s=0.0, projected_s=1.0, peak_rss_bytes=1000, gpus=(GpuUsage(0, "T4", 5, 6, 7, "device"),),
                  notes=("RLIMIT_AS 1 GB",), traceback=None, startup_s=0.3)
    return RunOutcome(**{**values, **changes})


def test_only_test_format_fields_enter_and_rows_survive(tmp_path, dev_path):
    questions = [q for q in load_questions(dev_path, require_truth=True)[:40] if q.row % 3]  # gaps in the rows
    write_inputs(tmp_path, questions, Job("models.x:Y", 7, LIMITS))
    text = (tmp_path / "questions.jsonl").read_text()
    records = [json.loads(line) for line in text.splitlines() if line]
    assert all(set(r) == {"input_field", "is_multiple_choice"} for r in records)
    back, job = read_inputs(tmp_path)
    assert [(q.row, q.prompt, q.is_multiple_choice) for q in back] == [
        (q.row, q.prompt, q.is_multiple_choice) for q in questions]
    assert all(not q.has_truth for q in back)
    assert job == Job("models.x:Y", 7, LIMITS)


def test_a_report_round_trips_to_the_same_outcome():
    original = outcome()
    report = json.loads(json.dumps(outcome_to_report(original)))
    assert outcome_from_report(report, LIMITS) == original


def test_the_runners_limits_replace_what_the_container_claims():
    report = json.loads(json.dumps(outcome_to_report(outcome(limits=Limits(profile="fake", budget_track="x")))))
    assert outcome_from_report(report, LIMITS).limits == LIMITS


@pytest.mark.parametrize("path, value, message", [
    (("verdict", "status"), "great", "'verdict' must be {status: one of ok, timeout"),
    (("n_answered",), -1, "'n_answered' must be a non-negative int"),
    (("n_answered",), True, "'n_answered' must be a non-negative int"),
    (("wall_s",), "1.0", "'wall_s' must be a non-negative number"),
    (("wall_s",), float("nan"), "'wall_s' must be a non-negative number"),
    (("batches",), [{"rows": ["0"], "is_multiple_choice": False, "index": 0, "latency_s": 1}], "list of ints"),
    (("notes",), "one note", "'notes' must be a list of strings"),
    (("gpus", 0, "measured"), "mine", "a GPU's 'measured' must be 'process', 'device' or null"),
])
def test_a_tampered_report_is_refused(path, value, message):
    report = json.loads(json.dumps(outcome_to_report(outcome())))
    target = report["outcome"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ReportError, match=message.replace("{", r"\{").replace("(", r"\(")):
        outcome_from_report(report, LIMITS)


@pytest.mark.parametrize("report", [None, [], {"format": 2}, {"format": 1}, {"format": 1, "outcome": None}])
def test_something_else_than_a_report_is_refused(report):
    with pytest.raises(ReportError):
        outcome_from_report(report, LIMITS)


def test_an_error_report_has_no_outcome():
    report = outcome_to_report(None, error="cannot import 'models.nope'")
    assert report["error"] == "cannot import 'models.nope'" and "outcome" not in report
    assert set(report["container"]) >= {"python", "uid", "kit_version"}


def test_a_verdict_detail_is_kept_but_bounded():
    long = outcome(verdict=Verdict("crashed", "x" * 5000))
    report = json.loads(json.dumps(outcome_to_report(long)))
    assert len(outcome_from_report(report, LIMITS).verdict.detail) == 2000


def test_questions_carry_no_truth_even_when_given_dev_questions(tmp_path):
    q = Question(0, "p", False, "task", "generation", "rougel", "amazon-kdd-cup-24-all-around", "SECRET")
    write_inputs(tmp_path, [q], Job(None, 0, LIMITS))
    assert "SECRET" not in (tmp_path / "questions.jsonl").read_text() + (tmp_path / "job.json").read_text()
