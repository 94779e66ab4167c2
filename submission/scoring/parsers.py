"""Parsers: raw model output -> the value a metric scores, exactly as the official grader parses.

These reproduce ``parsers.py`` of the KDD Cup 2024 starter kit, version 0.1.1, including its quirks
(a multiple-choice "10" parses to 1; ranking ids above 5 are dropped; NER "[a, b]" keeps its brackets).
Each parser returns a ``Parsed`` value that also says whether the parse failed, so reports can count
failures instead of silently scoring 0.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_RESPONSE_CHARACTERS = 5000
OFFICIAL_PARSER_VERSION = "0.1.1"


@dataclass(frozen=True)
class Parsed:
    value: Any
    failed: bool


def _ids(response: str) -> list[int]:
    """Digits, commas and spaces kept; split on commas; every piece int() accepts, in order."""
    cleaned = "".join(c for c in response if c.isnumeric() or c in (",", " "))
    ids = []
    for piece in cleaned.split(","):
        try:
            ids.append(int(piece))
        except ValueError:
            pass
    return ids


def parse_multiple_choice(response: str) -> Parsed:
    try:
        return Parsed(int(response.strip()[0]), False)
    except (ValueError, IndexError):
        return Parsed(-1, True)


def parse_ranking(response: str) -> Parsed:
    ranked = [i for i in _ids(response) if i <= 5][:5]
    if len(ranked) != len(set(ranked)):
        ranked = []
    return Parsed(ranked, not ranked)


def parse_retrieval(response: str) -> Parsed:
    retrieved = _ids(response)[:3]
    return Parsed(retrieved, not retrieved)


def parse_named_entity_recognition(response: str) -> Parsed:
    try:
        entities = ast.literal_eval(response)
        if isinstance(entities, list) and all(isinstance(e, str) for e in entities):
            return Parsed(entities, False)
    except Exception:  # noqa: BLE001 - the official parser falls back on any error, as we do
        pass
    return Parsed([e.strip() for e in response.split(",") if e.strip() != ""], False)


def parse_generation(response: str) -> Parsed:
    return Parsed(response.strip(), False)


PARSERS: dict[str, Callable[[str], Parsed]] = {
    "multiple-choice": parse_multiple_choice,
    "ranking": parse_ranking,
    "retrieval": parse_retrieval,
    "named_entity_recognition": parse_named_entity_recognition,
    "generation": parse_generation,
}


def parse(task_type: str, response: str) -> Parsed:
    """Parse one raw response for a task type; the response is first cut to 5000 characters."""
    if not isinstance(response, str):
        raise TypeError(f"a response must be a string, got {type(response).__name__}")
    return PARSERS[task_type](response[:MAX_RESPONSE_CHARACTERS])
