"""Training examples: the baseline's own prompt tokens, the target, loss on the answer only, left truncation."""

from __future__ import annotations

import json

import pytest
import torch
from training_fixtures import sample_rows, write_rows

from submission.errors import DataError
from submission.scoring.data import Question
from submission.training.examples import (
    IGNORE,
    PadCollator,
    PromptFormat,
    Sourced,
    answer_loss,
    build_examples,
    encode_example,
    find_overlap,
    load_training_data,
    overlap_message,
    targets_for,
)

SYSTEM = "You are a helpful online shopping assistant."
PROMPT = ("Which of the following product categories best complement the product type tent?\n"
          "0. sleeping bag\n1. hair dryer\n2. printer ink\n3. cat litter\nAnswer: ")


def item(prompt: str = PROMPT, truth=0, task_type: str = "multiple-choice", where: str = "t.json:1") -> Sourced:
    metric = {"multiple-choice": "accuracy", "named_entity_recognition": "micro f1", "generation": "rougel"}[task_type]
    return Sourced(Question(0, prompt, task_type == "multiple-choice", "t", task_type, metric,
                            "amazon-kdd-cup-24-shopping-knowledge-reasoning", truth), where)


@pytest.fixture(scope="module")
def baseline(tiny_dir):
    from submission.backends.transformers import TransformersModel

    return TransformersModel(weights=str(tiny_dir), system_prompt=SYSTEM)


@pytest.mark.parametrize("use_chat_template", [True, False])
def test_the_prompt_tokens_are_those_the_baseline_reads_and_carry_no_loss(tiny_dir, use_chat_template):
    from submission.backends.transformers import TransformersModel

    model = TransformersModel(weights=str(tiny_dir), system_prompt=SYSTEM, use_chat_template=use_chat_template)
    tokenizer = model.tokenizer
    example = encode_example(tokenizer, PromptFormat(SYSTEM, use_chat_template), item(truth=2), "2", 4096)
    prompt = model.encode([PROMPT])[0]
    answer = tokenizer("2", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert list(example.input_ids) == prompt + answer
    assert list(example.labels) == [IGNORE] * len(prompt) + answer
    assert example.answer_tokens == len(answer) and (example.prompt_cut, example.answer_cut) == (0, 0)


def test_a_long_prompt_loses_its_beginning_and_keeps_its_end_and_the_answer(baseline):
    long_prompt = "Great value for money! " * 40 + PROMPT
    full = baseline.encode([long_prompt])[0]
    example = encode_example(baseline.tokenizer, PromptFormat(SYSTEM, True), item(long_prompt, 3), "3", 64)
    answer = baseline.tokenizer("3", add_special_tokens=False)["input_ids"] + [baseline.tokenizer.eos_token_id]
    assert len(example.input_ids) == 64
    assert list(example.input_ids) == full[-(64 - len(answer)):] + answer
    assert example.prompt_cut == len(full) - (64 - len(answer)) and example.answer_cut == 0


def test_an_answer_longer_than_half_the_length_is_cut_at_its_end(baseline):
    target = "tent " * 100
    example = encode_example(baseline.tokenizer, PromptFormat(SYSTEM, True), item(truth=target, task_type="generation"),
                             target, 64)
    assert len(example.input_ids) == 64 and example.answer_tokens == 32 and example.answer_cut > 0
    answer = baseline.tokenizer(target, add_special_tokens=False)["input_ids"]
    assert list(example.labels[-32:]) == answer[:32]  # the beginning of the answer, no end-of-sequence token


def test_the_collator_pads_on_the_left_like_the_baseline():
    features = [{"input_ids": [5, 6, 7, 8], "labels": [IGNORE, IGNORE, 7, 8]},
                {"input_ids": [9, 10], "labels": [IGNORE, 10]}]
    batch = PadCollator(pad_id=0)(features)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [0, 0, 9, 10]]
    assert batch["labels"].tolist() == [[IGNORE, IGNORE, 7, 8], [IGNORE, IGNORE, IGNORE, 10]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 0, 1, 1]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3], [0, 0, 0, 1]]
    assert batch["logits_to_keep"] == 3  # the longest answer (2 tokens) and the position before it
    assert "logits_to_keep" not in PadCollator(0, answer_logits_only=False)(features)


def test_the_answer_only_loss_equals_the_plain_causal_lm_loss_of_each_example(tiny_dir, baseline):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    rows = [r for r in sample_rows() if r["task_type"] != "generation"][:6]
    train = [item(r["input_field"], r["output_field"], r["task_type"], f"s:{i}") for i, r in enumerate(rows)]
    examples = build_examples(baseline.tokenizer, PromptFormat(SYSTEM, True), train, targets_for(train), 4096)
    features = [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in examples]
    with torch.no_grad():  # one example at a time, no padding: transformers' own loss, a mean per answer token
        sums = [model(input_ids=torch.tensor([f["input_ids"]]), labels=torch.tensor([f["labels"]])).loss
                * e.answer_tokens for f, e in zip(features, examples, strict=True)]
        expected = sum(sums) / sum(e.answer_tokens for e in examples)
        for answer_logits_only in (True, False):
            batch = PadCollator(baseline.tokenizer.pad_token_id, answer_logits_only)(features)
            labels = batch.pop("labels")
            got = answer_loss(model(**batch), labels)
            assert got.item() == pytest.approx(expected.item(), abs=1e-5)


def test_overlap_is_found_after_normalising_case_and_spaces():
    train = [item("Which  TENT is\nwaterproof?", where="a.json:3"), item("Something else", where="a.json:4")]
    held_out = [Question(7, "which tent is waterproof?", True)]
    overlap = find_overlap(train, held_out)
    assert [o.where for o in overlap] == ["a.json:3"]
    message = overlap_message(overlap, 2, "dev.json")
    assert "1 of 2 training questions also appear in the evaluation file dev.json" in message
    assert "a.json:3" in message and "--allow-overlap" in message


def test_a_truth_without_an_answer_is_refused_with_file_and_line():
    with pytest.raises(DataError, match=r"t\.json:9: multiple-choice truth 12 has no answer.*remove the line"):
        targets_for([item(truth=12, where="t.json:9")])


def test_training_files_are_checked_like_the_evaluators_data(tmp_path):
    rows = sample_rows()[:3]
    good = write_rows(tmp_path / "good.json", rows)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[1], "metric": "acuracy"}) + "\n")
    assert [s.where for s in load_training_data([good])] == [f"{good}:1", f"{good}:2", f"{good}:3"]
    with pytest.raises(DataError, match=rf"{bad}:2: unknown metric 'acuracy'; did you mean 'accuracy'"):
        load_training_data([good, bad])
    test_format = write_rows(tmp_path / "test.json", [{"input_field": "x", "is_multiple_choice": True}])
    with pytest.raises(DataError, match="missing field.*output_field"):
        load_training_data([test_format])
