"""What a model returns for a batch, checked, and the messages about it: counts said in proper English."""

import pytest

from submission.errors import ModelOutputError
from submission.harness import verdict
from submission.harness.batches import check_responses


@pytest.mark.parametrize("prompts, expected", [(["p"], "a list of 1 string"), (["p", "q"], "a list of 2 strings")])
def test_a_batch_answered_with_no_list_names_the_list_it_needs(prompts, expected):
    with pytest.raises(ModelOutputError) as error:
        check_responses("0", prompts, 3)
    assert str(error.value) == f"batch 3: batch_predict returned str; it must return {expected}"


def test_counts_of_one_are_singular():
    assert verdict.ok(1).detail == "1 question answered within the limits"
    assert verdict.ok(2, False).detail == "2 questions answered (no limits enforced)"
    assert verdict.batch_timeout(0, 1, 3.0, 2.0, True).detail == "batch 0 (1 prompt) was stopped after 3.0 s, limit 2 s"
