"""Targets: for a question's truth, the answer string the official parser reads back as that truth.

Fine-tuning trains a model to write these strings, so they must survive ``parsers.parse`` exactly:

- multiple choice: the digit, ``"2"`` (the parser reads the first character, so truths above 9 have
  no answer and are refused);
- retrieval: the relevant ids, ``"1, 3, 5"`` (the parser keeps the first 3 integers: at most 3 distinct ids);
- ranking: the ids ordered by falling relevance weight, ties by id, ``"3, 5, 1, 4, 2"`` (the parser keeps
  ids 1 to 5 only, so more than 5 items are refused);
- named entity recognition: the entities comma separated, ``"navy blue, white"``, or as a Python list
  when an entity holds a comma or surrounding spaces (the parser splits on commas unless the text is
  a Python list of strings);
- generation: the reference text, stripped; the first reference when there are several.

For the four exact-match types ``build_target`` checks its own answer with the official parser
(``expected_value`` is what the parse must give) and raises ``TargetError`` when no answer can give it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import DataError
from .parsers import MAX_RESPONSE_CHARACTERS, parse

EXACT_TASK_TYPES = ("multiple-choice", "retrieval", "ranking", "named_entity_recognition")
RETRIEVED = 3  # the retrieval parser keeps the first 3 ids
RANKED = 5  # the ranking parser keeps ids 1 to 5


class TargetError(DataError):
    """No answer string parses back to this truth; the message says why (the caller adds file and line)."""


def ideal_ranking(weights: Sequence[float]) -> list[int]:
    """Ids 1..n ordered by falling relevance weight (ties by id): the ranking with nDCG 1."""
    return sorted(range(1, len(weights) + 1), key=lambda item: (-weights[item - 1], item))


def _distinct(items: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def expected_value(task_type: str, truth: Any) -> Any:
    """What ``parse(task_type, target)`` must return for the target to score full marks on ``truth``."""
    if task_type == "multiple-choice":
        return truth
    if task_type == "retrieval":
        return _distinct(truth)[:RETRIEVED]
    if task_type == "ranking":
        return ideal_ranking(truth)
    if task_type == "named_entity_recognition":
        return list(truth)
    raise ValueError(f"{task_type!r} is not an exact-match task type; expected one of {', '.join(EXACT_TASK_TYPES)}")


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(item) for item in ids)


def _multiple_choice(truth: int) -> str:
    if not 0 <= truth <= 9:
        raise TargetError(f"multiple-choice truth {truth} has no answer: the official parser reads only the "
                          "first character of the answer, so only the options 0 to 9 can be given")
    return str(truth)


def _retrieval(truth: Sequence[int]) -> str:
    if any(item < 0 for item in truth):
        raise TargetError(f"retrieval truth {list(truth)} holds a negative id; the official parser reads digits only")
    return _ids(expected_value("retrieval", truth))


def _ranking(truth: Sequence[float]) -> str:
    if len(truth) > RANKED:
        raise TargetError(f"ranking truth has {len(truth)} relevance weights; the official parser keeps ids 1 to "
                          f"{RANKED} only, so a ranking of more than {RANKED} items cannot be written")
    return _ids(ideal_ranking(truth))


def _named_entities(truth: Sequence[str]) -> str:
    comma_separated = ", ".join(truth)
    if parse("named_entity_recognition", comma_separated).value == list(truth):
        return comma_separated
    return repr(list(truth))  # a Python list of strings: the parser's literal_eval reads it as it is


BUILDERS: dict[str, Callable[[Any], str]] = {
    "multiple-choice": _multiple_choice,
    "retrieval": _retrieval,
    "ranking": _ranking,
    "named_entity_recognition": _named_entities,
}


def generation_reference(truth: str | Sequence[str]) -> str:
    """The reference a generation question trains on: the text, or the first of several."""
    return (truth if isinstance(truth, str) else truth[0]).strip()[:MAX_RESPONSE_CHARACTERS]


def build_target(task_type: str, truth: Any) -> str:
    """The answer string for ``truth``; exact-match types are checked with the official parser.

    Raises TargetError when the parser cannot give back the truth from any string.
    """
    if task_type == "generation":
        return generation_reference(truth)
    if task_type not in BUILDERS:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {', '.join(BUILDERS)}, generation")
    target = BUILDERS[task_type](truth)
    parsed = parse(task_type, target)
    expected = expected_value(task_type, truth)
    if parsed.failed or parsed.value != expected:
        raise TargetError(f"{task_type} truth {truth!r}: the answer {target!r} parses back as {parsed.value!r}, "
                          f"not {expected!r}, with the official parser")
    return target
