"""What a run writes and prints: results.json, scored predictions, the terminal table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..scoring.data import Question
from ..scoring.scorer import RunResult

RESULTS_FILE = "results.json"


def results_dict(result: RunResult, meta: dict[str, Any]) -> dict[str, Any]:
    """The results.json content: scores first, then everything needed to reproduce them."""
    tasks = {}
    for name, task in result.tasks.items():
        entry = asdict(task)
        del entry["task_name"]
        tasks[name] = entry
    return {
        "all_around": result.all_around,
        "task_mean": result.task_mean,
        "tracks": result.tracks,
        "missing_tracks": list(result.missing_tracks),
        "tasks": tasks,
        "parse_failures": sum(t.parse_failures for t in result.tasks.values()),
        **meta,
    }


def scored_records(
    questions: Sequence[Question], outputs: dict[int, str], result: RunResult, extra: dict[int, dict]
) -> list[dict[str, Any]]:
    """One record per question, in data order: row, output, parsed, score, parse_failed (+ run fields)."""
    records = []
    for q in questions:
        sample = result.samples[q.row]
        record = {"row": q.row, "task_name": q.task_name, "output": outputs[q.row], "parsed": sample.parsed,
                  "score": sample.score, "parse_failed": sample.parse_failed}
        if sample.counts is not None:
            record["tp_fp_fn"] = list(sample.counts)
        for key, value in extra.get(q.row, {}).items():
            record.setdefault(key, value)
        records.append(record)
    return records
