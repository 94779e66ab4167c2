"""A model that answers at random, in the shapes the parsers accept. Useful to test the plumbing."""

import os
import random
import re
from typing import Any

from .base_model import ShopBenchBaseModel

NUMBERED_LINE = re.compile(r"^\s*(\d+)\.", re.MULTILINE)


class DummyModel(ShopBenchBaseModel):
    """Seeded random answers: a digit for multiple choice, ids from the prompt's numbered list for
    retrieval and ranking prompts, and words from the prompt otherwise.

    The seed comes from the ``SHOPBENCH_SEED`` environment variable, which ``local_evaluation.py
    --seed`` sets (default 0), so two runs with the same seed give the same answers.
    """

    def __init__(self, batch_size: int = 8):
        self.batch_size = batch_size
        self.rng = random.Random(int(os.environ.get("SHOPBENCH_SEED", "0")))

    def get_batch_size(self) -> int:
        return self.batch_size

    def batch_predict(self, batch: dict[str, Any], is_multiple_choice: bool) -> list[str]:
        return [self._answer(prompt, is_multiple_choice) for prompt in batch["prompt"]]

    def _answer(self, prompt: str, is_multiple_choice: bool) -> str:
        if is_multiple_choice:
            return str(self.rng.randint(0, 3))
        ids = list(dict.fromkeys(NUMBERED_LINE.findall(prompt)))
        if len(ids) >= 2:
            self.rng.shuffle(ids)
            return ", ".join(ids)
        words = re.findall(r"[^\W\d_]{3,}", prompt)
        return ", ".join(self.rng.sample(words, min(3, len(words)))) if words else "unknown"
