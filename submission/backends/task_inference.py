"""Infer a ShopBench prompt's task type from its text, and shape raw model text into a parseable answer.

The evaluator tells a model only whether a batch is multiple choice. The other four task types
(retrieval, ranking, named entity recognition, generation) are told apart here from the prompt's
wording and its numbered candidate list. Every function is pure, so each is tested with a table.

The shapers produce what the official parsers accept:

- retrieval: three distinct listed ids, comma separated (the parser keeps the first 3 integers);
- ranking: a full permutation of the listed ids (the parser keeps integers <= 5, rejects duplicates);
- NER: comma-separated entities (the parser splits on commas when the text is not a Python list);
- generation: the first paragraph;
- multiple choice (for models that generate it, such as a served model without constrained
  decoding): the first allowed answer number in the text.
"""

from __future__ import annotations

import ast
import re

MULTIPLE_CHOICE = "multiple-choice"
RETRIEVAL = "retrieval"
RANKING = "ranking"
NER = "ner"
GENERATION = "generation"
OPEN_TASK_TYPES = (RETRIEVAL, RANKING, NER, GENERATION)

DEFAULT_CHOICES = (0, 1, 2, 3)
RETRIEVAL_K = 3

# "1. text", "1.text", "  12. text"; not "2.5 inch" (a decimal) nor "1.)" noise.
_NUMBERED_LINE = re.compile(r"^[ \t]*(\d{1,3})\.(?!\d)", re.MULTILINE)
_SCALE = re.compile(r"\bscale of (\d{1,2}) to (\d{1,2})\b", re.IGNORECASE)
_NER = re.compile(r"\bentity type\b|\bnamed entit|\bextract\b[^.\n]*\bentit", re.IGNORECASE)
_RANKING = re.compile(r"\brank(?:ing|s)?\b|\bre-?rank|\bpermutation\b", re.IGNORECASE)
_RETRIEVAL = re.compile(
    r"\b(?:select|choose|pick|retrieve)\b|\bindices\b|\b(?:output|generate|respond with)\b[^.\n]*\bnumbers?\b",
    re.IGNORECASE,
)
_LIST_MARKER = re.compile(r"^(?:[-*\u2022]|\d+[.)])\s+")  # "- acme", "1. acme", "2) acme"
_LABEL = re.compile(r"^\s*(?:output|answer|entities|entity|response)\s*:\s*", re.IGNORECASE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def listed_ids(prompt: str) -> list[int]:
    """The ids of the prompt's last numbered list ("1. ...", "2. ..."), in listed order.

    A list is a run of numbered lines whose numbers go up by one. Only the last run of two or more
    counts, because candidate lists come last and product descriptions may hold stray numbers.
    """
    numbers = [int(match.group(1)) for match in _NUMBERED_LINE.finditer(prompt)]
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    long_runs = [run for run in runs if len(run) >= 2]
    return long_runs[-1] if long_runs else []


def mc_choices(prompt: str) -> list[int]:
    """The answer digits a multiple-choice prompt allows.

    The listed options ("0. ...", "1. ...") when there are any, else a stated scale ("on a scale of 1
    to 5"), else 0 to 3, the official format.
    """
    ids = listed_ids(prompt)
    if ids and ids[0] in (0, 1) and ids[-1] <= 9:
        return ids
    scale = _SCALE.search(prompt)
    if scale:
        low, high = int(scale.group(1)), int(scale.group(2))
        if 0 <= low < high <= 9:
            return list(range(low, high + 1))
    return list(DEFAULT_CHOICES)


def infer_task_type(prompt: str) -> str:
    """The task type of a prompt that is not multiple choice: one of ``OPEN_TASK_TYPES``.

    NER asks to extract entities of a type; ranking and retrieval both list numbered candidates,
    ranking asks to rank them (a permutation), retrieval to select some. Anything else is generation.
    """
    if _NER.search(prompt):
        return NER
    if len(listed_ids(prompt)) >= 2:
        if _RANKING.search(prompt):
            return RANKING
        if _RETRIEVAL.search(prompt):
            return RETRIEVAL
    return GENERATION


def integers_in(text: str) -> list[int]:
    """Every run of ASCII digits in ``text``, as ints, in order."""
    return [int(digits) for digits in re.findall(r"[0-9]+", text)]


def _valid_distinct(text: str, ids: list[int]) -> list[int]:
    allowed = set(ids)
    chosen: list[int] = []
    for number in integers_in(text):
        if number in allowed and number not in chosen:
            chosen.append(number)
    return chosen


def shape_retrieval(text: str, ids: list[int], k: int = RETRIEVAL_K) -> str:
    """The first ``k`` distinct listed ids named in ``text``, topped up with listed ids in order.

    Hit rate@3 counts any hit among three, so a short answer is padded rather than left short.
    """
    chosen = _valid_distinct(text, ids)[:k]
    for candidate in ids:
        if len(chosen) >= k:
            break
        if candidate not in chosen:
            chosen.append(candidate)
    return ", ".join(str(number) for number in chosen)


def shape_ranking(text: str, ids: list[int]) -> str:
    """A full permutation of ``ids``: those named in ``text`` first, the rest in their listed order."""
    chosen = _valid_distinct(text, ids)
    chosen += [candidate for candidate in ids if candidate not in chosen]
    return ", ".join(str(number) for number in chosen)


def _ner_line(text: str) -> tuple[str, bool]:
    """The first non-empty line of ``text`` that is no preamble ("The entities are:"), and whether it
    is finished (a newline follows it)."""
    lines = text.lstrip().split("\n")
    for i, line in enumerate(lines):
        if line.strip() and not line.rstrip().endswith(":"):
            return line, i < len(lines) - 1
    return "", False


def shape_ner(text: str) -> str:
    """Entities from the first answer line of ``text``, comma separated, unquoted, without repeats.

    A preamble line ending in ':' is skipped; text that is only preamble gives no entity (an empty
    answer costs no false positive)."""
    line = _LABEL.sub("", _ner_line(text)[0]).strip()
    pieces: list[str] = []
    if line.startswith("["):
        try:
            value = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, list):
            pieces = [str(item) for item in value]
    if not pieces:
        pieces = line.strip("[]").split(",")
    entities: list[str] = []
    for piece in pieces:
        entity = _LIST_MARKER.sub("", piece.strip()).strip("\"'`").strip().rstrip(".").strip()
        if entity and entity not in entities:
            entities.append(entity)
    return ", ".join(entities)


def shape_generation(text: str) -> str:
    """The first paragraph of ``text``, stripped."""
    return _PARAGRAPH_BREAK.split(text.strip(), maxsplit=1)[0].strip()


def shape_multiple_choice(text: str, prompt: str) -> str:
    """The first number in ``text`` that is one of the prompt's choices ("Answer: 2" gives "2"), else the
    first choice, so that the answer always parses as a listed option."""
    choices = mc_choices(prompt)
    for number in integers_in(text):
        if number in choices:
            return str(number)
    return str(choices[0])


def answer_complete(task_type: str, text: str, ids: list[int]) -> bool:
    """Whether more generated text could no longer change ``shape_output`` of ``text``.

    NER keeps the first answer line, generation the first paragraph; retrieval needs three distinct listed
    ids and ranking all of them, not counting a number still being written at the end of ``text``.
    """
    if task_type == NER:
        return _ner_line(text)[1]
    if task_type == GENERATION:
        return _PARAGRAPH_BREAK.search(text.lstrip()) is not None
    settled = re.sub(r"[0-9]+$", "", text)
    found = _valid_distinct(settled, ids)
    if task_type == RETRIEVAL:
        return len(found) >= min(RETRIEVAL_K, len(ids))
    if task_type == RANKING:
        return len(found) == len(ids)
    raise ValueError(f"unknown task type {task_type!r}; expected one of {', '.join(OPEN_TASK_TYPES)}")


def shape_output(task_type: str, text: str, prompt: str) -> str:
    """Shape raw generated ``text`` for ``prompt`` into what the parser of ``task_type`` accepts."""
    if task_type == RETRIEVAL:
        return shape_retrieval(text, listed_ids(prompt))
    if task_type == RANKING:
        return shape_ranking(text, listed_ids(prompt))
    if task_type == NER:
        return shape_ner(text)
    if task_type == GENERATION:
        return shape_generation(text)
    raise ValueError(f"unknown task type {task_type!r}; expected one of {', '.join(OPEN_TASK_TYPES)}")
