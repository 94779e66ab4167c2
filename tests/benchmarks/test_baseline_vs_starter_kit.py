"""The benchmark's pieces on the tiny model: the starter-kit-style loop and the interleaved, counted run."""

from __future__ import annotations

import pytest

from benchmarks import baseline_vs_starter_kit as bench
from submission.scoring.data import Question


def question(row: int, prompt: str, mc: bool) -> Question:
    return Question(row=row, prompt=prompt, is_multiple_choice=mc, task_name=f"t{row}",
                    track="amazon-kdd-cup-24-understanding-shopping-concepts")


def test_starter_loop_generates_1_token_for_multiple_choice_and_100_otherwise(tiny_llama_dir):
    from submission.backends.transformers import TransformersModel

    baseline = TransformersModel(weights=str(tiny_llama_dir), batch_size=2,
                                 max_new_tokens={"generation": 3, "ner": 3, "retrieval": 3, "ranking": 3})
    starter = bench.StarterKitStyle(baseline.model, baseline.tokenizer, baseline.get_batch_size())
    questions = [question(0, "Describe a tent.\nOutput: ", False), question(1, "Describe a lamp.\nOutput: ", False),
                 question(2, "Q?\n0. a\n1. b\nAnswer: ", True)]
    timings = bench.predict_interleaved({"baseline": baseline, "starter-kit style": starter}, questions)
    starter_timing, baseline_timing = timings["starter-kit style"], timings["baseline"]
    assert set(starter_timing.outputs) == set(baseline_timing.outputs) == {0, 1, 2}
    # starter: one prefill + 99 decoding steps for the open batch (this seeded random model never says
    # end-of-sequence there), one pass for multiple choice
    assert starter_timing.forward_passes == 100 + 1
    assert len(baseline.tokenizer(starter_timing.outputs[2], add_special_tokens=False).input_ids) <= 1
    # baseline: one generate of at most 3 tokens (3 passes), one forward pass for MC
    assert baseline_timing.forward_passes <= 3 + 1
    assert baseline_timing.outputs[2] in ("0", "1")
    assert starter_timing.token_positions > baseline_timing.token_positions
    assert sum(starter_timing.per_track.values()) == pytest.approx(starter_timing.seconds)
