"""The grader's side without Docker: the container's run as the pipeline takes it (the host judge's
records and verdict, never a file of the run folder), and the organiser's inputs, truth and track score."""

import json
from pathlib import Path

import pytest
from kit_paths import SAMPLE_DATA

from submission.errors import DataError
from submission.evaluate import Evaluation, evaluate
from submission.grading.container_runner import ContainerRun, Resources
from submission.grading.grader import aligned_inputs, container_model_run, track_score
from submission.harness.outcome import RunOutcome
from submission.harness.profiles import Limits, get_profile, load_profiles
from submission.harness.verdict import Verdict
from submission.scoring.data import load_questions

LIMITS = Limits(profile="cpu", budget_track="amazon-kdd-cup-24-all-around", budget_s=600.0, ram_bytes=8 * 10**9)


def host_outcome(n: int, status="ok", detail="4 questions answered within the limits") -> RunOutcome:
    return RunOutcome(verdict=Verdict(status, detail), limits=LIMITS, n_questions=4, n_answered=n, n_resumed=0,
                      batches=(), init_s=0.1, wall_s=2.0, prior_elapsed_s=0.0, projected_s=None, peak_rss_bytes=None,
                      gpus=(), notes=("a host note",))


def container_run(out_dir: Path, records, outcome) -> ContainerRun:
    return ContainerRun(image="img", image_id="sha256:1", exit_code=0, oom_killed=False, killed_at_deadline=False,
                        deadline_s=660.0, wall_s=3.0, outcome=outcome, records=tuple(records), output_dir=out_dir,
                        resources=Resources(None, None, 1, 0, ("a host note",)), audit={"user": "1001:1001"},
                        log_tail="", log_dropped=12)


def test_the_run_folder_is_scored_from_the_judges_records_never_from_the_folders_files(tmp_path):
    """Whatever predictions.jsonl holds by the end (here another team's perfect answers: a symlink or a FIFO
    there is refused before anything runs), the scores come from the answers the host judge kept."""
    questions = load_questions(SAMPLE_DATA, require_truth=True)[:4]
    out = tmp_path / "run"
    out.mkdir()
    other_team = [{"row": q.row, "output": json.dumps(q.truth)} for q in questions]
    (out / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in other_team))
    records = [{"row": q.row, "output": "an answer", "batch": 0, "batch_size": 2, "latency_s": 0.1, "elapsed_s": 1.0}
               for q in questions[:2]]
    outcome = host_outcome(2, "crashed", "the container's model loop ended with exit code 0 during batch 1")
    run = container_run(out, records, outcome)
    evaluation = Evaluation(tuple(questions), SAMPLE_DATA, out, "img", 0, get_profile("cpu", load_profiles()))
    evaluated = evaluate(evaluation, lambda asked, out_dir: container_model_run(run))
    assert evaluated.outcome is outcome and evaluated.n_answered == 2
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"]["status"] == "crashed" and results["n_answered"] == 2 and results["partial"] is True
    assert results["docker"]["log_dropped_bytes"] == 12 and results["container"]["uid"] == 1001
    assert results["container"]["channel"] == "stdin/stdout (docker attach)"
    scored = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(r["row"], r["output"]) for r in scored] == [(0, "an answer"), (1, "an answer")]


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
