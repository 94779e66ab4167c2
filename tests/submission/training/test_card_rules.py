"""Fine-tuning runs outside the harness, under the grader's card all the same (phase2's T4 rules)."""

import pytest

from models.hardware import profile_card, resolve_dtype
from submission.training.command import apply_card_rules

CARD = ("SHOPBENCH_COMPUTE_CAPABILITY", "SHOPBENCH_BFLOAT16", "SHOPBENCH_FLASH_ATTENTION_2",
        "SHOPBENCH_GPU_MEMORY_BYTES")


def test_training_gets_the_default_profiles_card_rules(monkeypatch):
    for name in CARD:
        monkeypatch.delenv(name, raising=False)
    apply_card_rules()
    card = profile_card()
    assert card.capability == (7, 5) and card.bfloat16 is False and card.flash_attention_2 is False
    assert card.memory_bytes is None  # training memory is not the grader's cap: only the card's rules
    with pytest.raises(ValueError, match="bfloat16 is not available on the grader's card"):
        resolve_dtype("bfloat16", "cuda", (9, 0))  # an H100 is refused bfloat16 under a T4's rules


def test_rules_already_set_are_kept(monkeypatch):
    monkeypatch.setenv("SHOPBENCH_BFLOAT16", "1")
    monkeypatch.delenv("SHOPBENCH_COMPUTE_CAPABILITY", raising=False)
    apply_card_rules()
    assert profile_card().bfloat16 is True and profile_card().capability == (7, 5)
