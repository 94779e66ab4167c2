"""Batches the grader's way, and the checks on what a model returns for one.

Questions are grouped only by ``is_multiple_choice`` (non-multiple-choice first, then multiple choice,
each in data order), and each batch holds ``get_batch_size()`` prompts, asked again before every batch.
The model never sees the task type. ``runner.run_model`` runs the loop the grader's way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ModelOutputError
from ..scoring.data import Question

MIN_BATCH_SIZE, MAX_BATCH_SIZE = 1, 16
# Answers longer than this are cut before they leave the model's process: the official parsers read
# only the first 5,000 characters, so the score cannot change, and a runaway generation cannot flood
# the channel, predictions.jsonl or the harness's memory. results.json counts the answers cut.
ANSWER_CAP_CHARS = 1_000_000


def batch_size_of(model: Any) -> int:
    size = model.get_batch_size()
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_BATCH_SIZE <= size <= MAX_BATCH_SIZE:
        raise ModelOutputError(
            f"get_batch_size() returned {size!r}; it must return an int from {MIN_BATCH_SIZE} to {MAX_BATCH_SIZE}"
        )
    return size


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def ask(model: Any, prompts: Sequence[str], is_multiple_choice: bool) -> Any:
    """``batch_predict`` on a copy of ``prompts``: whatever the model does to the batch it is given, the
    caller checks its answers against its own list."""
    return model.batch_predict({"prompt": list(prompts)}, is_multiple_choice)


def cap_answers(answers: list[str]) -> tuple[list[str], int]:
    """The answers cut to ``ANSWER_CAP_CHARS``, and how many were cut."""
    cut = sum(len(a) > ANSWER_CAP_CHARS for a in answers)
    return ([a[:ANSWER_CAP_CHARS] for a in answers] if cut else answers), cut


def check_responses(responses: Any, prompts: Sequence[str], batch_index: int) -> list[str]:
    """The model's answers for one batch, or ModelOutputError saying what is wrong with them."""
    if not isinstance(responses, (list, tuple)):
        raise ModelOutputError(
            f"batch {batch_index}: batch_predict returned {type(responses).__name__}; it must return a list "
            f"of {plural(len(prompts), 'string')}"
        )
    if len(responses) != len(prompts):
        raise ModelOutputError(
            f"batch {batch_index}: batch_predict returned {plural(len(responses), 'response')} for "
            f"{plural(len(prompts), 'prompt')}; return exactly one string per prompt, in order"
        )
    for i, response in enumerate(responses):
        if not isinstance(response, str):
            raise ModelOutputError(
                f"batch {batch_index}: response {i} is {type(response).__name__} ({response!r:.40}); "
                "every response must be a str (for multiple choice, e.g. '2')"
            )
    return list(responses)


def grader_order(questions: Sequence[Question]) -> list[Question]:
    """Non-multiple-choice questions, then multiple-choice ones, each group in data order."""
    return [q for q in questions if not q.is_multiple_choice] + [q for q in questions if q.is_multiple_choice]


def iter_batches(model: Any, questions: Sequence[Question]) -> Iterator[list[Question]]:
    """Yield batches, asking the model for its batch size before each one; never mixes the groups."""
    for is_mc in (False, True):
        group = [q for q in questions if q.is_multiple_choice == is_mc]
        start = 0
        while start < len(group):
            size = batch_size_of(model)
            yield group[start : start + size]
            start += size
