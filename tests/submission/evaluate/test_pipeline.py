"""The one evaluation pipeline: local_evaluation.py, the grader's container path and saved predictions all
go through ``evaluate`` and write the same run folder; scoring is checked before any model runs; what a
runner's predictions hold is read at the boundary and judged by the runner."""

import json
import os
import sys
import time

import pytest
from kit_paths import ROOT, SAMPLE_DATA, TESTS

import local_evaluation
from submission.errors import ConfigError, DataError
from submission.evaluate import Evaluation, HarnessRunner, evaluate, read_answers
from submission.grading.container_contract import container_job
from submission.grading.container_runner import ContainerRun, Resources
from submission.grading.grader import container_model_run
from submission.harness.outcome import ModelSpec
from submission.harness.predictions import PredictionWriter
from submission.harness.profiles import UNLIMITED, get_profile, load_profiles
from submission.harness.stdio import run_stdio
from submission.scoring.data import Question, load_questions
from submission.scoring.scorer import ScoringConfig

MODEL = "fake_models.models:Deterministic"  # the same answers for the same seed and prompt, wherever it runs
N = 12


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """local_evaluation.py on the first 12 questions of the sample split."""
    out = tmp_path_factory.mktemp("local")
    assert local_evaluation.main(["--model", MODEL, "--data", str(SAMPLE_DATA), "--limit", str(N), "--profile", "cpu",
                                  "--no-limits", "--output-dir", str(out)]) == 0
    return out


def results(out) -> dict:
    return json.loads((out / "results.json").read_text())


def scored(out) -> list[tuple]:
    return [(r["row"], r["output"], r["score"]) for r in map(json.loads, (out / "predictions.jsonl").open())]


def entry_point_run(tmp_path, questions) -> ContainerRun:
    """docker/entrypoint.py run for real, as in the grader's container (without Docker: a child process whose
    stdin and stdout are the channel), judged by the grader's judge; what the container runner hands back."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    job = {**container_job(MODEL, 0, UNLIMITED), "repo": str(ROOT), "sys_path": [str(TESTS)]}
    with PredictionWriter(out / "predictions.jsonl") as writer:
        judge, verdict = run_stdio([sys.executable, str(ROOT / "docker" / "entrypoint.py")], questions, job, writer,
                                   env=env)
    ended = time.monotonic()
    outcome = judge.outcome(verdict, ended, judge.child_rss, (), ())
    return ContainerRun(image="entrypoint", image_id="none", exit_code=0, oom_killed=False, killed_at_deadline=False,
                        deadline_s=None, wall_s=outcome.wall_s, outcome=outcome, records=tuple(judge.records),
                        output_dir=out, resources=Resources(None, None, None, 0, ()), audit={"user": "1001:1001"},
                        log_tail="")


def test_the_graders_path_writes_the_run_folder_local_evaluation_writes(local_run, tmp_path):
    questions = load_questions(SAMPLE_DATA, require_truth=True)[:N]
    container = entry_point_run(tmp_path, [Question(q.row, q.prompt, q.is_multiple_choice) for q in questions])
    evaluation = Evaluation(tuple(questions), SAMPLE_DATA, tmp_path / "out", MODEL, 0,
                            get_profile("cpu", load_profiles()), limit=N)
    graded = evaluate(evaluation, lambda asked, out_dir: container_model_run(container))
    mine, theirs = results(tmp_path / "out"), results(local_run)
    assert set(mine) - set(theirs) == {"docker", "container"} and set(theirs) <= set(mine)
    assert mine["tasks"] == theirs["tasks"] and mine["all_around"] == theirs["all_around"]
    assert set(mine["timings"]) == set(theirs["timings"]) and mine["verdict"] == theirs["verdict"]
    assert scored(tmp_path / "out") == scored(local_run)
    assert graded.ok and graded.n_answered == N and graded.run.record is container


def test_saved_predictions_are_scored_without_a_model(local_run, tmp_path):
    questions = load_questions(SAMPLE_DATA, require_truth=True)[:N]
    saved = tmp_path / "saved.jsonl"
    saved.write_text("".join(json.dumps({"row": r, "output": o}) + "\n" for r, o, _ in scored(local_run)))
    evaluated = evaluate(Evaluation(tuple(questions), SAMPLE_DATA, tmp_path / "o", predictions=saved, limit=N))
    mine = results(tmp_path / "o")
    assert evaluated.outcome is None and evaluated.ok and mine["predictions_from"] == str(saved)
    assert mine["tasks"] == results(local_run)["tasks"] and "verdict" not in mine
    saved.write_text("".join(json.dumps({"row": r, "output": o}) + "\n" for r, o, _ in scored(local_run)[1:]))
    with pytest.raises(DataError, match="1 of 12 questions have no prediction"):
        evaluate(Evaluation(tuple(questions), SAMPLE_DATA, tmp_path / "p", predictions=saved))


def test_scoring_is_checked_before_the_runner_runs(tmp_path):
    questions = [q for q in load_questions(SAMPLE_DATA, require_truth=True) if q.metric == "sent-transformer"][:2]
    calls = []

    def runner(asked, out_dir):
        calls.append(len(asked))
        raise AssertionError("the model ran before scoring was checked")

    scoring = ScoringConfig(embedding_models={"sent-transformer": str(tmp_path / "no-model")})
    with pytest.raises(ConfigError, match="is not a sentence-transformers model folder"):
        evaluate(Evaluation(tuple(questions), SAMPLE_DATA, tmp_path / "o", scoring=scoring), runner)
    assert calls == [] and not (tmp_path / "o").exists()


def test_the_harness_runner_is_the_local_harness(tmp_path):
    questions = load_questions(SAMPLE_DATA, require_truth=True)[:4]
    runner = HarnessRunner(ModelSpec(model=MODEL, repo=str(TESTS)), UNLIMITED)
    evaluated = evaluate(Evaluation(tuple(questions), SAMPLE_DATA, tmp_path / "o", MODEL), runner)
    assert evaluated.ok and evaluated.n_answered == 4 and evaluated.results["n_answered"] == 4
    assert evaluated.results["model"] == MODEL and evaluated.results["limits"]["enforced"] is False


def test_predictions_are_read_at_the_boundary(tmp_path):
    questions = [Question(row, f"q{row}", False) for row in (0, 1, 3)]
    path = tmp_path / "p.jsonl"
    path.write_text('{"row": 3, "output": "b"}\n{"row": 0, "output": "a"}\n')
    answers = read_answers(path, questions)
    assert [q.row for q in answers.questions] == [0, 3] and answers.outputs == {0: "a", 3: "b"}
    assert answers.problem is None and len(answers.records) == 2
    path.write_text('{"row": 7, "output": "x"}\n')
    assert "row 7 is not a question that was asked" in str(read_answers(path, questions).problem)
