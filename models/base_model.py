"""The participant interface: subclass ``ShopBenchBaseModel`` and name the class in ``user_config.py``.

This is the KDD Cup 2024 ShopBench interface unchanged, so existing submissions drop in as they are.
"""

from typing import Any


class ShopBenchBaseModel:
    """Base class for every ShopBench submission.

    The evaluator (locally and on the grader) calls ``get_batch_size()`` before each batch, then
    ``batch_predict`` with that many prompts at most. The model never sees the task type, only
    whether the batch is multiple choice.
    """

    def get_batch_size(self) -> int:
        """How many prompts the next batch may hold: an int from 1 to 16. May change between calls."""
        raise NotImplementedError("get_batch_size() must return an int between 1 and 16")

    def batch_predict(self, batch: dict[str, Any], is_multiple_choice: bool) -> list[str]:
        """Answer a batch of prompts.

        Args:
            batch: ``{"prompt": [str, ...]}``; more keys may be added in future, so read only what you need.
            is_multiple_choice: True when every prompt in the batch is a multiple-choice question, whose
                answer must start with the digit of the chosen option ("0".."3").

        Returns:
            One string per prompt, in the order of ``batch["prompt"]``.
        """
        raise NotImplementedError("batch_predict() must return one string per prompt")
