"""predictions.jsonl: appended batch by batch while the model runs, read back for re-scoring.

Each line is one JSON object with at least ``row`` (the question's 0-based line in the data file) and
``output`` (the raw response). While the model runs, lines also carry ``batch`` and ``latency_s``; after
scoring the file is rewritten (atomically) with ``parsed``, ``score`` and ``parse_failed`` added.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from .data import Question
from .errors import DataError

PREDICTIONS_FILE = "predictions.jsonl"


class PredictionWriter:
    """Appends one JSON line per answer; each batch is flushed to disk before the next one runs."""

    def __init__(self, path: str | Path, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a" if append else "w", encoding="utf-8")

    def write_batch(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a predictions file, each checked to have an int ``row`` and a str ``output``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file")
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg}); a truncated last line means the run "
                                "was cut off mid-write: delete that line and score again") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object with 'row' and 'output'")
            row, output = record.get("row"), record.get("output")
            if not isinstance(row, int) or isinstance(row, bool):
                raise DataError(f"{where}: field 'row' must be an int (the question's 0-based line), got {row!r}")
            if not isinstance(output, str):
                raise DataError(f"{where}: field 'output' must be a string, got {type(output).__name__}")
            record["_where"] = where
            records.append(record)
    return records


def outputs_for(records: Sequence[dict[str, Any]], questions: Sequence[Question], source: str) -> dict[int, str]:
    """row -> output, refusing unknown rows, repeated rows and questions left without an output."""
    known = {q.row for q in questions}
    outputs: dict[int, str] = {}
    for record in records:
        row = record["row"]
        if row not in known:
            raise DataError(
                f"{record['_where']}: row {row} is not a question of the data file "
                "(rows are 0-based line numbers); were these predictions made on another --data or --limit?"
            )
        if row in outputs:
            raise DataError(f"{record['_where']}: row {row} appears twice; keep one prediction per row")
        outputs[row] = record["output"]
    missing = [q.row for q in questions if q.row not in outputs]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise DataError(
            f"{source}: {len(missing)} of {len(questions)} questions have no prediction (rows {shown}); "
            "score with the same --data and --limit as the run that made them"
        )
    return outputs


def write_scored(path: str | Path, records: Sequence[dict[str, Any]]) -> None:
    """Rewrite the predictions file with scores, atomically (a crash leaves the old file intact)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
