"""Scoring: aggregation rules, and fidelity to a plain per-sample grader on the official split."""

import json
import random

import pytest

from benchmarks import reference_grader
from benchmarks.reference_grader import TRICKY, perfect_output
from submission.errors import DataError
from submission.scoring.data import load_questions
from submission.scoring.embeddings import load_model
from submission.scoring.scorer import ScoringConfig, score_outputs


def output_sets(questions):
    rng = random.Random(7)
    return {
        "perfect": {q.row: perfect_output(q) for q in questions},
        "tricky": {q.row: TRICKY[q.task_type][q.row % 6] for q in questions},
        "mixed": {q.row: rng.choice([perfect_output(q)] + TRICKY[q.task_type]) for q in questions},
    }


@pytest.fixture(scope="module")
def dev_questions(dev_path):
    return load_questions(dev_path, require_truth=True)


@pytest.mark.parametrize("which", ["perfect", "tricky", "mixed"])
def test_scores_equal_a_plain_per_sample_grader(dev_questions, minilm_path, which):
    outputs = output_sets(dev_questions)[which]
    config = ScoringConfig(embedding_models={"sent-transformer": str(minilm_path)})
    ours = score_outputs(dev_questions, outputs, config)
    plain = reference_grader.grade(dev_questions, outputs, {"sent-transformer": load_model(minilm_path)})
    for name, task in ours.tasks.items():
        # embeddings batched vs one by one differ only in float32 rounding
        tolerance = 1e-6 if task.metric == "sent-transformer" else 0
        assert task.score == pytest.approx(float(plain["tasks"][name]), abs=tolerance), name
    assert ours.tracks == pytest.approx({t: float(v) for t, v in plain["tracks"].items()}, abs=1e-6)
    assert ours.all_around == pytest.approx(float(plain["all_around"]), abs=1e-6)
    assert ours.task_mean == pytest.approx(float(plain["task_mean"]), abs=1e-6)


def test_perfect_answers_score_one_where_the_metric_allows(dev_questions, minilm_path):
    config = ScoringConfig(embedding_models={"sent-transformer": str(minilm_path)})
    result = score_outputs(dev_questions, output_sets(dev_questions)["perfect"], config)
    for task in result.tasks.values():
        if task.metric in ("accuracy", "hit rate@3", "ndcg", "micro f1", "rougel", "sent-transformer"):
            assert task.score == pytest.approx(1.0, abs=1e-6), task.task_name
    assert result.tasks["task17"].metric == "bleu+jp-bleu" and result.tasks["task17"].n == 5
    assert sum(t.parse_failures for t in result.tasks.values()) == 0


def test_parse_failures_are_counted_with_an_example(dev_questions, minilm_path):
    config = ScoringConfig(embedding_models={"sent-transformer": str(minilm_path)})
    outputs = output_sets(dev_questions)["tricky"]
    result = score_outputs(dev_questions, outputs, config)
    task = result.tasks["task2"]  # multiple choice: "", "b" and "Answer: 2" fail
    failing = [q for q in dev_questions
               if q.task_name == "task2" and reference_grader.parse("multiple-choice", outputs[q.row]) == -1]
    assert task.parse_failures == len(failing) > 0
    assert task.failure_example["output"] == outputs[task.failure_example["row"]]


def _questions(tmp_path, records):
    path = tmp_path / "d.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return load_questions(path)


def _q(task, track, metric, task_type, truth):
    return {"input_field": f"{task} prompt", "output_field": truth, "task_name": task, "task_type": task_type,
            "metric": metric, "is_multiple_choice": task_type == "multiple-choice", "track": track}


def test_aggregation_task_track_all_around(tmp_path):
    a, b = "amazon-kdd-cup-24-shopping-knowledge-reasoning", "amazon-kdd-cup-24-user-behavior-alignment"
    questions = _questions(tmp_path, [
        _q("mc1", a, "accuracy", "multiple-choice", 1), _q("mc1", a, "accuracy", "multiple-choice", 2),
        _q("ret", a, "hit rate@3", "retrieval", [1, 2]),
        _q("ner", b, "micro f1", "named_entity_recognition", ["red", "nike"]),
        _q("ner", b, "micro f1", "named_entity_recognition", ["blue"]),
    ])
    outputs = {0: "1", 1: "0", 2: "2, 7", 3: "red, adidas", 4: "blue"}
    result = score_outputs(questions, outputs)
    assert result.tasks["mc1"].score == 0.5
    assert result.tasks["ret"].score == 0.5
    # ner: tp 2, fp 1, fn 1 summed -> P = R = 2/3 -> F1 = 2/3 (the mean of per-sample F1s would differ)
    assert result.tasks["ner"].score == pytest.approx(2 / 3, abs=1e-15)
    assert result.tracks == {a: 0.5, b: pytest.approx(2 / 3, abs=1e-15)}
    assert result.all_around == pytest.approx((0.5 + 2 / 3) / 2, abs=1e-15)
    assert result.task_mean == pytest.approx((0.5 + 0.5 + 2 / 3) / 3, abs=1e-15)
    assert len(result.missing_tracks) == 2


def test_duplicate_prompts_keep_their_own_rows(tmp_path):
    track = "amazon-kdd-cup-24-shopping-knowledge-reasoning"
    questions = _questions(tmp_path, [_q("mc", track, "accuracy", "multiple-choice", 1)] * 2)
    result = score_outputs(questions, {0: "1", 1: "3"})
    assert result.samples[0].score == 1.0 and result.samples[1].score == 0.0
    assert result.tasks["mc"].n == 2 and result.tasks["mc"].score == 0.5


def test_missing_or_non_string_outputs_are_refused(tmp_path):
    track = "amazon-kdd-cup-24-shopping-knowledge-reasoning"
    questions = _questions(tmp_path, [_q("mc", track, "accuracy", "multiple-choice", 1)] * 2)
    with pytest.raises(DataError, match="row 1 has no prediction"):
        score_outputs(questions, {0: "1"})
    with pytest.raises(DataError, match="row 1: the output must be a string, got int"):
        score_outputs(questions, {0: "1", 1: 1})


def test_multilingual_metric_uses_the_configured_model(tmp_path, minilm_path, monkeypatch):
    monkeypatch.delenv("SHOPBENCH_MULTILINGUAL_SENT_TRANSFORMER_MODEL", raising=False)
    track = "amazon-kdd-cup-24-multi-lingual-abilities"
    questions = _questions(tmp_path, [
        _q("ml", track, "multilingual-sent-transformer", "generation", "Ein wasserdichter Rucksack."),
        _q("ml", track, "multilingual-sent-transformer", "generation", ["A red kettle.", "A kettle, red."]),
    ])
    outputs = {0: "Ein wasserdichter Rucksack.", 1: "A red kettle."}
    # the test provides a model (all-MiniLM-L6-v2 standing in for the multilingual one) explicitly
    config = ScoringConfig(embedding_models={"multilingual-sent-transformer": str(minilm_path)})
    result = score_outputs(questions, outputs, config)
    plain = reference_grader.grade(questions, outputs, {"multilingual-sent-transformer": load_model(minilm_path)})
    assert result.samples[0].score == pytest.approx(1.0, abs=1e-6)
    assert 0.5 < result.samples[1].score < 1.0
    assert result.tasks["ml"].score == pytest.approx(float(plain["tasks"]["ml"]), abs=1e-6)


def test_a_failure_example_is_cut_to_a_few_hundred_characters(tmp_path):
    track = "amazon-kdd-cup-24-user-behavior-alignment"
    questions = _questions(tmp_path, [_q("rank", track, "ndcg", "ranking", [3, 2, 1])])
    output = "no ranking here " * 1000  # 16,000 characters, unparseable
    result = score_outputs(questions, {0: output})
    example = result.tasks["rank"].failure_example
    assert result.tasks["rank"].parse_failures == 1 and example["output"] == output[:300]


def test_an_output_with_a_lone_surrogate_scores_like_the_same_text_with_a_replacement_character(tmp_path):
    track = "amazon-kdd-cup-24-user-behavior-alignment"
    questions = _questions(tmp_path, [_q("gen", track, "rougel", "generation", "red running shoes")])
    result = score_outputs(questions, {0: "red \ud800 running shoes"})
    assert result.samples[0].score == score_outputs(questions, {0: "red \ufffd running shoes"}).samples[0].score > 0
