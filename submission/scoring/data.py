"""Questions: loading and validating ShopBench data files (JSON Lines).

Development format: one JSON object per line with ``input_field``, ``output_field``, ``task_name``,
``task_type``, ``metric``, ``is_multiple_choice`` and ``track``. Test format (what the grader gives a
model): only ``input_field`` and ``is_multiple_choice``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, suggest, suggest_path

TRACKS = (
    "amazon-kdd-cup-24-understanding-shopping-concepts",
    "amazon-kdd-cup-24-shopping-knowledge-reasoning",
    "amazon-kdd-cup-24-user-behavior-alignment",
    "amazon-kdd-cup-24-multi-lingual-abilities",
)
ALL_AROUND = "amazon-kdd-cup-24-all-around"

# Which truth shape each metric needs, and which task type it belongs to.
METRIC_TASK_TYPES = {
    "accuracy": "multiple-choice",
    "hit rate@3": "retrieval",
    "ndcg": "ranking",
    "micro f1": "named_entity_recognition",
    "rougel": "generation",
    "sent-transformer": "generation",
    "multilingual-sent-transformer": "generation",
    "bleu": "generation",
    "jp-bleu": "generation",
}
TASK_TYPES = ("multiple-choice", "retrieval", "ranking", "named_entity_recognition", "generation")
DEV_FIELDS = ("input_field", "output_field", "task_name", "task_type", "metric", "is_multiple_choice", "track")
TEST_FIELDS = ("input_field", "is_multiple_choice")


def short_track(track: str) -> str:
    """'shopping-knowledge-reasoning' for 'amazon-kdd-cup-24-shopping-knowledge-reasoning'."""
    return track.replace("amazon-kdd-cup-24-", "")


@dataclass(frozen=True)
class Question:
    """One line of a data file. ``row`` is its 0-based line number among the questions.

    In test format the answer-side fields are None.
    """

    row: int
    prompt: str
    is_multiple_choice: bool
    task_name: str | None = None
    task_type: str | None = None
    metric: str | None = None
    track: str | None = None
    truth: Any = None

    @property
    def has_truth(self) -> bool:
        return self.metric is not None


def _known(name: str, value: str, allowed: tuple[str, ...] | list[str], where: str) -> str:
    if value not in allowed:
        raise DataError(
            f"{where}: unknown {name} '{value}'; {suggest(value, allowed)}known: {', '.join(allowed)}"
        )
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


MAX_RELEVANCE = 63  # 2 ** 64 overflows numpy's int64 in the official nDCG (np.power(2, int) gives -1.0)


def _check_relevance_weights(weights: list, where: str) -> None:
    """nDCG weights the official maths can score: finite, not negative, integers below 64."""
    for index, weight in enumerate(weights):
        if not math.isfinite(weight) or not 0 <= weight <= MAX_RELEVANCE:
            raise DataError(
                f"{where}: field 'output_field' item {index} is {weight!r}; an nDCG relevance weight must be a "
                f"finite number from 0 to {MAX_RELEVANCE} (the official nDCG computes 2 ** weight in 64-bit "
                "integers; ShopBench's weights are small)"
            )


def _lone_surrogate(value: Any) -> bool:
    """Whether a string inside ``value`` holds a lone surrogate ("\\ud800"), which is not text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list):
        return any(_lone_surrogate(item) for item in value)
    return False


def check_truth(metric: str, truth: Any, where: str) -> None:
    """Reject a truth whose shape the metric cannot score, naming the expected shape."""
    expected = None
    if metric == "accuracy" and not _is_int(truth):
        expected = "an int (the index of the right option)"
    elif metric == "hit rate@3" and not (
        isinstance(truth, list) and truth and all(_is_int(t) for t in truth)
    ):
        expected = "a non-empty list of ints (ids of the relevant items)"
    elif metric == "ndcg" and not (
        isinstance(truth, list) and truth and all(_is_number(t) for t in truth)
    ):
        expected = "a non-empty list of numbers (relevance weights of items 1..n)"
    elif metric == "ndcg":
        _check_relevance_weights(truth, where)
    elif metric == "micro f1" and not (isinstance(truth, list) and all(isinstance(t, str) for t in truth)):
        expected = "a list of strings (the entities)"
    elif metric in ("rougel", "bleu", "jp-bleu") and not isinstance(truth, str):
        expected = "a string"
    elif metric.endswith("sent-transformer") and not (
        isinstance(truth, str)
        or (isinstance(truth, list) and truth and all(isinstance(t, str) for t in truth))
    ):
        expected = "a string or a non-empty list of strings"
    if expected:
        raise DataError(
            f"{where}: field 'output_field' must be {expected} for metric '{metric}', "
            f"got {type(truth).__name__} {json.dumps(truth, ensure_ascii=False)[:80]}"
        )


def _question(record: Any, row: int, where: str, require_truth: bool) -> Question:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    has_truth = "output_field" in record or require_truth
    fields = DEV_FIELDS if has_truth else TEST_FIELDS
    missing = [f for f in fields if f not in record]
    if missing:
        raise DataError(
            f"{where}: missing field(s) {', '.join(repr(m) for m in missing)}; "
            f"a {'development' if has_truth else 'test'}-format line needs {', '.join(fields)}"
        )
    if not isinstance(record["input_field"], str):
        raise DataError(f"{where}: field 'input_field' must be a string")
    for name in ("input_field", "output_field"):
        if _lone_surrogate(record.get(name)):
            raise DataError(f"{where}: field '{name}' holds a lone surrogate escape (e.g. \"\\ud800\"), which is "
                            "not text in any encoding; remove it or write the character it was meant to be")
    if not isinstance(record["is_multiple_choice"], bool):
        raise DataError(f"{where}: field 'is_multiple_choice' must be true or false")
    if not has_truth:
        return Question(row, record["input_field"], record["is_multiple_choice"])
    for name in ("task_name", "task_type", "metric", "track"):
        if not isinstance(record[name], str) or not record[name]:
            raise DataError(f"{where}: field '{name}' must be a non-empty string")
    task_type = _known("task_type", record["task_type"], TASK_TYPES, where)
    metric = _known("metric", record["metric"], list(METRIC_TASK_TYPES), where)
    track = _known("track", record["track"], TRACKS, where)
    if METRIC_TASK_TYPES[metric] != task_type:
        raise DataError(
            f"{where}: metric '{metric}' scores {METRIC_TASK_TYPES[metric]} tasks, "
            f"but task_type is '{task_type}'"
        )
    if record["is_multiple_choice"] != (task_type == "multiple-choice"):
        raise DataError(f"{where}: is_multiple_choice must be true exactly for task_type 'multiple-choice'")
    check_truth(metric, record["output_field"], where)
    return Question(
        row, record["input_field"], record["is_multiple_choice"], record["task_name"],
        task_type, metric, track, record["output_field"],
    )


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number (write null, or a finite number)")


def iter_json_lines(path: Path, kind: str, hint: str) -> Iterator[tuple[int, str, Any]]:
    """(line number, "file:line", parsed value) for each non-blank line of a JSON Lines file.

    The file must be UTF-8 (a byte-order mark at its start is accepted) and strict JSON (no NaN or
    Infinity). A missing file, a line that is not UTF-8 or not JSON raises DataError naming the file, the
    line (and for bad bytes the byte offset in the file), with ``hint``.
    """
    if not path.is_file():
        hint = suggest_path(path).rstrip()  # "did you mean 'data/development.json'?"
        raise DataError(f"{path}: no such {kind} file" + (f"; {hint}" if hint else ""))
    offset = 0
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            start, offset = offset, offset + len(raw)
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw, start = raw[3:], 3
            where = f"{path}:{line_no}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at byte offset {start + exc.start} "
                                "of the file); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                yield line_no, where, json.loads(line, parse_constant=_refuse_constant)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); {hint}") from None
            except ValueError as exc:
                raise DataError(f"{where}: not valid JSON ({exc}); {hint}") from None


def load_questions(path: str | Path, require_truth: bool = False) -> list[Question]:
    """Load a ShopBench JSON Lines file. ``row`` is the 0-based line number; blank lines are skipped.

    Raises DataError naming the file, the line and the field for anything malformed.
    """
    path = Path(path)
    questions = [
        _question(record, line_no - 1, where, require_truth)
        for line_no, where, record in iter_json_lines(path, "data", "each line must hold one JSON object")
    ]
    if not questions:
        raise DataError(f"{path}: the file holds no questions")
    _check_tasks_consistent(questions, path)
    return questions


def _check_tasks_consistent(questions: list[Question], path: Path) -> None:
    """A task has one task type and one track (it may mix bleu and jp-bleu metrics)."""
    seen: dict[str, Question] = {}
    for q in questions:
        if not q.has_truth or q.task_name is None:
            continue
        first = seen.setdefault(q.task_name, q)
        for name in ("task_type", "track"):
            if getattr(q, name) != getattr(first, name):
                raise DataError(
                    f"{path}: task '{q.task_name}' has {name} '{getattr(first, name)}' at row {first.row} "
                    f"but '{getattr(q, name)}' at row {q.row}; a task must have one {name}"
                )


def sample_questions(questions: list[Question], n: int, seed: int) -> list[Question]:
    """``n`` questions spread across the tasks, in data order: every task gets one (while ``n`` allows),
    the rest in proportion to the tasks' sizes (largest remainders first); which questions is seeded."""
    if n >= len(questions):
        return list(questions)
    rng = random.Random(seed)
    by_task: dict[str, list[Question]] = {}
    for q in questions:
        by_task.setdefault(q.task_name or "", []).append(q)
    tasks = list(by_task)
    if n <= len(tasks):
        counts = dict.fromkeys(rng.sample(tasks, n), 1)
    else:
        spare = {t: len(by_task[t]) - 1 for t in tasks}
        quota = {t: (n - len(tasks)) * spare[t] / sum(spare.values()) for t in tasks}
        counts = {t: 1 + int(quota[t]) for t in tasks}
        by_remainder = sorted(tasks, key=lambda t: (int(quota[t]) - quota[t], tasks.index(t)))
        for t in by_remainder[: n - sum(counts.values())]:
            counts[t] += 1
    picked = [q for t, k in counts.items() for q in rng.sample(by_task[t], k)]
    return sorted(picked, key=lambda q: q.row)
