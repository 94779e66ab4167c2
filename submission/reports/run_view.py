"""A scored run as the reports read it: ``RunView``, from a run folder or straight after scoring.

``load_run_dir`` reads results.json, the scored predictions.jsonl and (when it is on this machine) the
data file the run recorded; ``view_from_result`` builds the same view from a fresh ``RunResult``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..harness.predictions import PREDICTIONS_FILE, read_records
from ..scoring.data import Question, load_questions
from ..scoring.scorer import RunResult
from .intervals import TaskSamples, samples_from_records, samples_from_result
from .results import RESULTS_FILE


@dataclass(frozen=True)
class RunView:
    """One scored run, as a report needs it: results.json, scored predictions, questions, samples."""

    name: str
    results: dict[str, Any]
    records: dict[int, dict[str, Any]]  # row -> scored prediction record
    questions: dict[int, Question]  # row -> question; empty when the data file is not at hand
    tasks: list[TaskSamples]
    data_path: Path | None
    notes: tuple[str, ...] = field(default=())

    def task_records(self, task_name: str) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if r.get("task_name") == task_name]


# --- loading ----------------------------------------------------------------------------------------


def _read_results(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found; expected a run folder of local_evaluation.py, the Docker runner "
                        "or the grader (results.json and predictions.jsonl)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(results, dict) or not results.get("tasks"):
        raise DataError(f"{path}: no scored tasks (was any question answered?); there is nothing to report")
    return results


def find_data_file(recorded: str | None, run_dir: Path | None) -> Path | None:
    """The data file a run recorded, as given or relative to the run folder; None when it is not here."""
    if not recorded:
        return None
    path = Path(recorded)
    candidates = [path] + ([run_dir / path] if run_dir and not path.is_absolute() else [])
    return next((c for c in candidates if c.is_file()), None)


def _questions_for(records: dict[int, dict[str, Any]], data_path: Path) -> dict[int, Question]:
    """The data file's questions for these rows, refusing a file the predictions were not made on."""
    by_row = {q.row: q for q in load_questions(data_path, require_truth=True)}
    for row, record in records.items():
        question = by_row.get(row)
        if question is None or question.task_name != record.get("task_name"):
            found = f"task '{question.task_name}'" if question else "no such row"
            raise DataError(f"{data_path}: row {row} is {found}, but the predictions say task "
                            f"'{record.get('task_name')}'; the predictions were made on another data file "
                            "(pass the right one with --data)")
    return {row: by_row[row] for row in records}


def load_run_dir(run_dir: str | Path, data_file: str | Path | None = None) -> RunView:
    """A run folder (results.json + scored predictions.jsonl) and the data file results.json names.

    ``data_file`` overrides the recorded path (a grader's folder records the path inside its container).
    Without a data file the report still has every score and interval, only no prompts or truths.
    """
    run_dir = Path(run_dir)
    results = _read_results(run_dir)
    source = str(run_dir / PREDICTIONS_FILE)
    records = {r["row"]: r for r in read_records(source)}
    tasks = samples_from_records(list(records.values()), results["tasks"], source)
    if data_file:
        data_path: Path | None = Path(data_file)
        if not Path(data_file).is_file():
            raise DataError(f"{data_path}: no such data file")
    else:
        data_path = find_data_file(results.get("data_file"), run_dir)
    notes: tuple[str, ...] = ()
    if data_path is None:
        recorded = results.get("data_file")
        where = f"the data file {recorded!r} recorded in results.json is not on this machine" if recorded \
            else "results.json records no data file"
        notes = (f"{where}: prompts and truths are not shown",)
    questions = _questions_for(records, data_path) if data_path else {}
    return RunView(run_dir.resolve().name, results, records, questions, tasks, data_path, notes)


def view_from_result(out_dir: Path, questions: Sequence[Question], result: RunResult,
                     results: dict[str, Any]) -> RunView:
    """A RunView straight after scoring: scores from ``result``, outputs and latencies from predictions.jsonl."""
    path = Path(out_dir) / PREDICTIONS_FILE
    saved = {r["row"]: r for r in read_records(path)} if path.is_file() else {}
    records = {}
    for q in questions:
        if q.row not in result.samples:
            continue
        sample = result.samples[q.row]
        records[q.row] = {**saved.get(q.row, {}), "row": q.row, "task_name": q.task_name,
                          "parsed": sample.parsed, "score": sample.score, "parse_failed": sample.parse_failed}
    data_file = results.get("data_file")
    return RunView(Path(out_dir).resolve().name, results, records, {q.row: q for q in questions},
                   samples_from_result(questions, result), Path(data_file) if data_file else None)


def data_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
