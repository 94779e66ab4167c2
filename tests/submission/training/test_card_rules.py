"""Fine-tuning runs outside the harness, under the grader's card all the same (phase2's T4 rules)."""

import pytest

from submission.backends.hardware import resolve_dtype
from submission.card import CARD_VARIABLES as CARD
from submission.card import profile_card
from submission.errors import ConfigError
from submission.training.command import card_rules_applied


def clear_card(monkeypatch):
    """Unset the card's variables; monkeypatch restores them (absent) after the test, whatever it set."""
    for name in CARD:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_training_gets_the_default_profiles_card_rules(monkeypatch):
    clear_card(monkeypatch)
    with card_rules_applied():
        card = profile_card()
        assert card.capability == (7, 5) and card.bfloat16 is False and card.flash_attention_2 is False
        assert card.memory_bytes is None  # training memory is not the grader's cap: only the card's rules
        with pytest.raises(ConfigError, match="bfloat16 is not available on the grader's card"):
            resolve_dtype("bfloat16", "cuda", (9, 0))  # an H100 is refused bfloat16 under a T4's rules
    assert profile_card().bfloat16 is None  # the environment as it was
    with card_rules_applied(enabled=False):  # --no-limits
        assert profile_card().capability is None


def test_rules_already_set_are_kept(monkeypatch):
    clear_card(monkeypatch)
    monkeypatch.setenv("SHOPBENCH_BFLOAT16", "1")
    with card_rules_applied():
        assert profile_card().bfloat16 is True and profile_card().capability == (7, 5)
