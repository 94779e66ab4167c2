"""The host's verdict on a container run, and checking what the container wrote: the host's own
observations (outer deadline, OOM kill, exit code) overrule the container's report."""

import json
from pathlib import Path

import pytest

from submission.errors import ConfigError, DataError
from submission.evaluate import read_answers
from submission.grading.container_contract import outcome_to_report
from submission.grading.container_runner import ContainerRun, Resources
from submission.grading.grader import (
    aligned_inputs,
    decide_outcome,
    judge,
    track_score,
)
from submission.harness.outcome import RunOutcome
from submission.harness.profiles import Limits
from submission.harness.verdict import Verdict
from submission.scoring.data import Question

LIMITS = Limits(profile="cpu", budget_track="amazon-kdd-cup-24-all-around", budget_s=600.0, ram_bytes=8 * 10**9)


def harness_outcome(status="ok", detail="4 questions answered within the limits", answered=4) -> RunOutcome:
    return RunOutcome(verdict=Verdict(status, detail), limits=LIMITS, n_questions=4, n_answered=answered, n_resumed=0,
                      batches=(), init_s=0.1, wall_s=2.0, prior_elapsed_s=0.0, projected_s=None, peak_rss_bytes=None,
                      gpus=(), notes=("RLIMIT_AS 8 GB",))


def run(report=None, killed=False, oom=False, exit_code=0, report_error=None) -> ContainerRun:
    return ContainerRun(image="img", image_id="sha256:1", exit_code=exit_code, oom_killed=oom,
                        killed_at_deadline=killed, deadline_s=660.0, wall_s=3.0, report=report,
                        report_error=report_error, output_dir=Path("/tmp/out"),
                        resources=Resources(None, None, 1, 0, ("a host note",)), audit={}, log_tail="")


def report(outcome):
    return json.loads(json.dumps(outcome_to_report(outcome)))


def test_a_clean_run_keeps_the_harness_verdict_and_adds_the_host_notes():
    decided = decide_outcome(run(report(harness_outcome())), LIMITS, 4, 4)
    assert decided.verdict.status == "ok" and decided.notes == ("a host note", "RLIMIT_AS 8 GB")


def test_the_outer_deadline_overrules_everything():
    decided = decide_outcome(run(report(harness_outcome()), killed=True, exit_code=137), LIMITS, 4, 1)
    assert decided.verdict == Verdict("timeout", "the container was stopped from outside at the track budget (10 min) "
                                      "plus 60 s grace, after 1 of 4 questions")
    assert decided.n_answered == 1 and decided.wall_s == 3.0


def test_a_kernel_oom_kill_turns_a_crash_into_a_memory_verdict():
    crashed = harness_outcome("crashed", "the model's process was killed by SIGKILL during batch 1", 2)
    decided = decide_outcome(run(report(crashed), oom=True, exit_code=1), LIMITS, 4, 2)
    assert decided.verdict.status == "memory" and "RAM limit (8 GB)" in decided.verdict.detail
    assert decided.verdict.detail.endswith(crashed.verdict.detail)


def test_an_oom_killed_container_without_a_report_is_a_memory_verdict():
    decided = decide_outcome(run(None, oom=True, exit_code=137, report_error="no report"), LIMITS, 4, 0)
    assert decided.verdict == Verdict("memory", "the container was killed at its RAM limit (8 GB) by the kernel")


def test_no_report_is_a_crash_naming_the_exit_code():
    no_report = run(None, exit_code=1, report_error="the container wrote no run_report.json")
    decided = decide_outcome(no_report, LIMITS, 4, 0)
    assert decided.verdict.status == "crashed"
    assert ("exited with code 1 without a usable run report (the container wrote no run_report.json)"
            in decided.verdict.detail)


def test_a_tampered_report_is_a_crash():
    tampered = report(harness_outcome())
    tampered["outcome"]["n_answered"] = "all of them"
    assert decide_outcome(run(tampered), LIMITS, 4, 4).verdict.status == "crashed"


def test_ok_with_missing_predictions_is_bad_output():
    decided = decide_outcome(run(report(harness_outcome())), LIMITS, 4, 3)
    assert decided.verdict == Verdict("bad_output", "the run report says every question was answered, but "
                                      "predictions.jsonl holds 3 of 4")


def test_a_model_that_cannot_be_found_is_the_submissions_configuration_error():
    refused = run({"format": 1, "error": "models/user_config.py: UserModel must be a class"}, exit_code=2)
    with pytest.raises(ConfigError, match=r"refused to run the model \(exit code 2\): models/user_config.py: "
                                          "UserModel must be a class"):
        decide_outcome(refused, LIMITS, 4, 0)


QUESTIONS = [Question(row, f"q{row}", False) for row in (0, 1, 3)]


def write(path, *records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_the_container_answers_are_read_at_the_boundary_and_judged_with_the_count(tmp_path):
    path = write(tmp_path / "p.jsonl", {"row": 3, "output": "b"}, {"row": 0, "output": "a"})
    answers = read_answers(path, QUESTIONS)
    assert [q.row for q in answers.questions] == [0, 3] and answers.outputs == {0: "a", 3: "b"}
    decided = judge(run(report(harness_outcome()), killed=True, exit_code=137), LIMITS, 3, answers)
    assert decided.verdict.status == "timeout" and decided.verdict.detail.endswith("after 2 of 3 questions")
    absent = read_answers(tmp_path / "absent.jsonl", QUESTIONS)
    assert absent.questions == () and absent.problem is None


@pytest.mark.parametrize("records, message", [
    ([{"row": 2, "output": "x"}], "row 2 is not a question that was asked"),
    ([{"row": 0, "output": "x"}, {"row": 0, "output": "y"}], "row 0 appears twice"),
    ([{"row": 0, "output": 5}], "field 'output' must be a string"),
])
def test_predictions_the_harness_never_writes_are_bad_output_and_nothing_is_scored(tmp_path, records, message):
    answers = read_answers(write(tmp_path / "p.jsonl", *records), QUESTIONS)
    assert isinstance(answers.problem, DataError) and message in str(answers.problem) and answers.questions == ()
    decided = judge(run(report(harness_outcome())), LIMITS, 3, answers)
    assert decided.verdict.status == "bad_output" and decided.n_answered == 0
    assert decided.verdict.detail.startswith("the container's predictions: ") and message in decided.verdict.detail


def test_inputs_must_match_the_truth_line_by_line(tmp_path, dev_path):
    lines = dev_path.read_text().splitlines()[:5]
    truth = tmp_path / "truth.jsonl"
    truth.write_text("\n".join(lines) + "\n")

    def strip(line):
        return json.dumps({k: json.loads(line)[k] for k in ("input_field", "is_multiple_choice")})

    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("\n".join(map(strip, lines)) + "\n")
    given, known = aligned_inputs(inputs, truth)
    assert [q.row for q in given] == [q.row for q in known] and all(q.has_truth for q in known)
    inputs.write_text("\n".join(map(strip, lines[:4])) + "\n")
    with pytest.raises(DataError, match="holds 4 questions and .* 5"):
        aligned_inputs(inputs, truth)
    inputs.write_text("\n".join(map(strip, [lines[1], lines[0], *lines[2:]])) + "\n")
    with pytest.raises(DataError, match=r"inputs.jsonl:1: input_field or is_multiple_choice differs"):
        aligned_inputs(inputs, truth)


def test_the_score_of_a_track_run():
    results = {"all_around": 0.5, "tracks": {"amazon-kdd-cup-24-multi-lingual-abilities": 0.25}}
    assert track_score(results, "amazon-kdd-cup-24-all-around") == 0.5
    assert track_score(results, "amazon-kdd-cup-24-multi-lingual-abilities") == 0.25
    assert track_score(results, "amazon-kdd-cup-24-user-behavior-alignment") is None
