"""Targets: the official parser reads every target back as its truth, and the metric gives full marks.

The table runs over every exact-match question of the kit's sample split and of the official
development split (skipped, saying so, when ../shared is absent), plus hand-written edge cases.
"""

from __future__ import annotations

import pytest
from kit_paths import DEV_DATA, SAMPLE_DATA

from submission.scoring.data import load_questions
from submission.scoring.metrics import get_metric
from submission.scoring.parsers import parse
from submission.scoring.targets import (
    EXACT_TASK_TYPES,
    TargetError,
    build_target,
    expected_value,
    generation_reference,
    ideal_ranking,
)


def exact_questions(path):
    if not path.is_file():
        pytest.skip(f"{path} is absent (the official development split lives in ../shared/data)")
    return [q for q in load_questions(path, require_truth=True) if q.task_type in EXACT_TASK_TYPES]


def full_marks(question, parsed_value) -> bool:
    """The metric's best score for this truth: 1 for accuracy, hit rate and nDCG; no fp and no fn for NER."""
    value = get_metric(question.metric).sample(parsed_value, question.truth)
    if question.metric == "micro f1":
        tp, fp, fn = value
        return fp == 0 and fn == 0 and tp == len({e.lower() for e in question.truth})
    return value == 1.0


@pytest.mark.parametrize("path", [SAMPLE_DATA, DEV_DATA], ids=["sample", "development"])
def test_every_exact_match_target_parses_back_as_its_truth(path):
    questions = exact_questions(path)
    assert {q.task_type for q in questions} == set(EXACT_TASK_TYPES)  # the table covers every exact type
    for q in questions:
        target = build_target(q.task_type, q.truth)
        parsed = parse(q.task_type, target)
        where = f"{path.name} row {q.row}: {target!r}"
        assert not parsed.failed, where
        if q.task_type == "ranking":  # the truth is relevance weights: the parse is their ideal order
            assert parsed.value == ideal_ranking(q.truth), where
        else:
            assert parsed.value == q.truth, where
        assert full_marks(q, parsed.value), where


CASES = [
    ("multiple-choice", 0, "0"),
    ("multiple-choice", 9, "9"),
    ("retrieval", [6, 9, 15], "6, 9, 15"),
    ("retrieval", [2], "2"),
    ("retrieval", [4, 4, 7], "4, 7"),  # a repeated id would only repeat a hit
    ("retrieval", [1, 2, 3, 4], "1, 2, 3"),  # the parser keeps 3: the best hit rate is 3/4
    ("ranking", [0.1, 0.01, 1, 0, 0.1], "3, 1, 5, 2, 4"),  # ties by id
    ("ranking", [1, 0.01, 0.1, 1, 0], "1, 4, 3, 2, 5"),
    ("ranking", [0, 0, 0], "1, 2, 3"),
    ("named_entity_recognition", ["navy blue", "white"], "navy blue, white"),
    ("named_entity_recognition", ["acme"], "acme"),
    ("named_entity_recognition", [], ""),
    ("named_entity_recognition", ["1,000 piece puzzle"], "['1,000 piece puzzle']"),  # a comma inside
    ("named_entity_recognition", [" spaced "], "[' spaced ']"),  # spaces the comma form would strip
    ("named_entity_recognition", ["it's", 'say "hi"'], "it's, say \"hi\""),
]


@pytest.mark.parametrize("task_type, truth, target", CASES)
def test_target_table(task_type, truth, target):
    assert build_target(task_type, truth) == target
    assert parse(task_type, target).value == expected_value(task_type, truth)


def test_ner_list_form_is_read_back_with_literal_eval():
    truth = ["a, b", "c"]
    target = build_target("named_entity_recognition", truth)
    assert target.startswith("[") and parse("named_entity_recognition", target).value == truth


@pytest.mark.parametrize("task_type, truth, reason", [
    ("multiple-choice", 10, "first character"),
    ("ranking", [1, 0, 0, 0, 0, 0.5], "ids 1 to 5"),
    ("retrieval", [-1, 2], "negative"),
])
def test_truths_without_an_answer_are_refused_with_the_reason(task_type, truth, reason):
    with pytest.raises(TargetError, match=reason):
        build_target(task_type, truth)


def test_generation_trains_on_the_first_reference_stripped():
    assert build_target("generation", "  a tent  \n") == "a tent"
    assert build_target("generation", ["first text", "second text"]) == "first text"
    assert generation_reference("x" * 6000) == "x" * 5000  # the parser never reads past 5,000 characters


def test_an_unknown_task_type_is_refused():
    with pytest.raises(ValueError, match="unknown task type"):
        build_target("summary", "x")
    with pytest.raises(ValueError, match="not an exact-match"):
        expected_value("generation", "x")
