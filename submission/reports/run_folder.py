"""Writing a scored run folder: the one function behind local_evaluation.py, the Docker runner and the grader.

A run folder holds the scored ``predictions.jsonl``, ``results.json``, ``report.html`` and ``scores.png``;
whoever produced the answers, the folder looks the same, so ``compare`` and ``report`` read any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..harness.predictions import PREDICTIONS_FILE, write_scored
from ..jsonio import write_json
from ..loading import DEFAULT_MODEL
from ..scoring.data import Question
from ..scoring.scorer import RunResult
from .html import write_reports
from .results import RESULTS_FILE, results_dict, scored_records
from .run_view import data_digest

KEPT_FIELDS = ("batch", "batch_size", "latency_s", "elapsed_s")  # run fields kept in the scored predictions


def base_meta(data_path: Path, n_questions: int, limit: int | None, seed: int, model: str | None,
              predictions_from: str | None = None) -> dict[str, Any]:
    """The results.json fields every producer of a run folder records: what was run on what."""
    return {"data_file": str(data_path), "data_sha256": data_digest(data_path), "n_questions": n_questions,
            "limit": limit, "seed": seed, "model": model or DEFAULT_MODEL, "predictions_from": predictions_from}


def written_files(result: RunResult | None) -> list[str]:
    """The files a run folder holds: the report and chart only when something was scored."""
    return [RESULTS_FILE, PREDICTIONS_FILE] + (["report.html", "scores.png"] if result is not None else [])


def empty_results(meta: dict[str, Any]) -> dict[str, Any]:
    """results.json when no question was answered: no scores, everything else."""
    return {"all_around": None, "task_mean": None, "tracks": {}, "missing_tracks": [], "tasks": {},
            "parse_failures": 0, **meta}


def write_run_folder(out_dir: Path, answered: Sequence[Question], outputs: dict[int, str],
                     records: Sequence[dict[str, Any]], result: RunResult | None, meta: dict[str, Any],
                     seed: int) -> dict[str, Any]:
    """Rewrite predictions.jsonl with scores, write report.html, scores.png and results.json; return results."""
    extra = {r["row"]: {k: v for k, v in r.items() if k in KEPT_FIELDS} for r in records}
    if result is not None:
        write_scored(out_dir / PREDICTIONS_FILE, scored_records(answered, outputs, result, extra))
    results = results_dict(result, meta) if result else empty_results(meta)
    if result is not None:  # report.html and scores.png read the scored predictions.jsonl
        results["intervals"] = write_reports(out_dir, answered, result, results, seed)
    write_json(out_dir / RESULTS_FILE, results)
    return results
