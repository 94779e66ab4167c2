"""predictions.jsonl: appended batch by batch while the model runs, read back for re-scoring.

Each line is one JSON object with at least ``row`` (the question's 0-based line in the data file) and
``output`` (the raw response). While the model runs, lines also carry ``batch`` and ``latency_s``; after
scoring the file is rewritten (atomically) with ``parsed``, ``score`` and ``parse_failed`` added.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..fileio import open_append, read_regular, replace_file, truncate_regular
from ..jsonio import lines_bytes
from ..scoring.data import Question, iter_json_lines

PREDICTIONS_FILE = "predictions.jsonl"


class PredictionWriter:
    """Appends one JSON line per answer; each batch is flushed to disk before the next one runs.

    ``flush`` hands a batch to the operating system, which keeps it through a crash or kill -9 of any
    process; ``fsync`` also keeps it through a power cut, at a few milliseconds each. By default every
    batch is fsynced; ``fsync_every_s`` > 0 fsyncs at most that often (and always on close).

    The writer also keeps every byte of the file in memory: if the model's process deletes, replaces or
    truncates the file while it runs (the same user may), ``close`` puts it back whole (``restored``).
    """

    def __init__(self, path: str | Path, append: bool = False, fsync_every_s: float = 0.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # never through a symlink, never blocking on a FIFO: a name that is not a regular file is refused
        self._handle = open_append(self.path, truncate=not append)
        self._content = bytearray(read_regular(self.path) if append else b"")
        self._inode = os.fstat(self._handle.fileno()).st_ino
        self.fsync_every_s = fsync_every_s
        self._synced = time.monotonic()
        self.restored = False

    def write_batch(self, records: Iterable[dict[str, Any]]) -> None:
        data = lines_bytes(records)
        self._content += data
        self._handle.write(data)
        self._handle.flush()
        now = time.monotonic()
        if now - self._synced >= self.fsync_every_s:
            os.fsync(self._handle.fileno())
            self._synced = now

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self.restored = self._restore()

    def _restore(self) -> bool:
        """Rewrite the file from memory unless it is still the regular file written, whole and unchanged
        (a link or a FIFO put at its name is replaced, never followed); whether it was rewritten."""
        try:
            found = os.lstat(self.path)
            if stat.S_ISREG(found.st_mode) and found.st_ino == self._inode and found.st_size == len(self._content) \
                    and read_regular(self.path) == self._content:
                return False
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:  # swapped for something unreadable meanwhile: rewritten below
            pass
        write_atomically(self.path, bytes(self._content))
        return True

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fresh temporary file and a rename, fsynced: all or nothing
    (``fileio.replace_file``: never through a link or a FIFO at the name)."""
    replace_file(path, data)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a predictions file, each checked to have an int ``row`` and a str ``output``."""
    records = []
    hint = "a truncated last line means the run was cut off mid-write: delete that line and score again"
    for _, where, record in iter_json_lines(Path(path), "predictions", hint):
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object with 'row' and 'output'")
        for name, what in (("row", "the question's 0-based line"), ("output", "the model's answer")):
            if name not in record:
                raise DataError(f"{where}: missing field '{name}' ({what}); each line needs 'row' and 'output'")
        row, output = record["row"], record["output"]
        if not isinstance(row, int) or isinstance(row, bool):
            raise DataError(f"{where}: field 'row' must be an int (the question's 0-based line), got {row!r}")
        if not isinstance(output, str):
            raise DataError(f"{where}: field 'output' must be a string, got {type(output).__name__}")
        record["_where"] = where
        records.append(record)
    return records


def outputs_for(records: Sequence[dict[str, Any]], questions: Sequence[Question], source: str) -> dict[int, str]:
    """row -> output, refusing unknown rows, repeated rows and questions left without an output."""
    if not records and questions:
        raise DataError(f"{source}: holds no predictions (no line with 'row' and 'output')")
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


def answered_and_outputs(records: Sequence[dict[str, Any]], questions: Sequence[Question],
                     source: str) -> tuple[list[Question], dict[int, str]]:
    """The questions that have a record (in the questions' order) and their outputs, as ``outputs_for``
    checks them: what a stopped run's partial predictions are scored on."""
    rows = {record["row"] for record in records}
    answered = [q for q in questions if q.row in rows]
    return answered, outputs_for(records, answered, source)


def write_scored(path: str | Path, records: Sequence[dict[str, Any]]) -> None:
    """Rewrite the predictions file with scores, atomically (a crash leaves the old file intact)."""
    write_atomically(Path(path), lines_bytes(records))


@dataclass(frozen=True)
class ResumeState:
    """What an interrupted run's predictions.jsonl holds once cut back to its last complete batch."""

    rows: frozenset[int] = frozenset()
    next_batch: int = 0
    elapsed_s: float = 0.0
    dropped_lines: int = 0


def _parse_lines(path: Path, data: bytes) -> tuple[list[tuple[int, dict]], int]:
    """(end offset, record) per complete line, and how many trailing lines were cut off mid-write."""
    parsed: list[tuple[int, dict]] = []
    offset = 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        end = offset + len(line) + 1
        is_last = number == len(lines)
        if line.strip():
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("row"), int):
                    raise ValueError("not a prediction record")
            except ValueError:
                if is_last or number == len(lines) - 1 and not lines[-1]:
                    return parsed, 1
                raise DataError(f"{path}:{number}: not a prediction record; only the last line of an "
                                "interrupted run may be damaged, so this file cannot be resumed") from None
            if is_last:  # no newline yet: the write was cut off
                return parsed, 1
            parsed.append((end, record))
        offset = end
    return parsed, 0


def _complete_batches(parsed: list[tuple[int, dict]]) -> int:
    """How many leading records belong to complete batches (only the last batch can be incomplete)."""
    if not parsed:
        return 0
    last = parsed[-1][1]
    if "batch" not in last or "batch_size" not in last or "score" in last:
        return len(parsed)  # written by hand, or already scored (data order): all complete
    tail = 0
    while tail < len(parsed) and parsed[-1 - tail][1].get("batch") == last["batch"]:
        tail += 1
    return len(parsed) if tail >= last["batch_size"] else len(parsed) - tail


def prepare_resume(path: str | Path) -> ResumeState:
    """Cut an interrupted run's predictions file back to its last complete batch (truncating the file)
    and return the rows it answered, the next batch index and the run's elapsed time so far."""
    path = Path(path)
    if not os.path.lexists(path):
        return ResumeState()
    data = read_regular(path)  # a link or a FIFO at the name is refused, never followed nor waited on
    parsed, cut = _parse_lines(path, data)
    keep = _complete_batches(parsed)
    end = parsed[keep - 1][0] if keep else 0
    if end < len(data):
        truncate_regular(path, end)
    kept = [record for _, record in parsed[:keep]]
    batches = [r["batch"] for r in kept if isinstance(r.get("batch"), int)]
    elapsed = [r["elapsed_s"] for r in kept if isinstance(r.get("elapsed_s"), (int, float))]
    return ResumeState(
        rows=frozenset(r["row"] for r in kept), next_batch=max(batches, default=-1) + 1,
        elapsed_s=float(max(elapsed, default=0.0)), dropped_lines=cut + len(parsed) - keep,
    )
