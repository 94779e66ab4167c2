"""The contract between the runner (on the host) and the entry point (in the container).

The runner writes the inputs folder, mounted read-only at ``INPUT_DIR``:

    questions.jsonl   the questions in test format: only ``input_field`` and ``is_multiple_choice``; line i
                      is row i of the data file (rows without a question are blank lines)
    job.json          the model ('module:Class' or null for UserModel), the seed, the limits to enforce

The entry point (``docker/entrypoint.py``) runs the harness and writes into ``OUTPUT_DIR``:

    predictions.jsonl  appended batch by batch, as ``local_evaluation.py`` writes it
    run_report.json    how the run ended (the harness's ``RunOutcome``) and where it ran

What comes back out of the container is untrusted: ``outcome_from_report`` validates every field.
This module imports only the standard library and the harness, never docker, torch or the scorers.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..errors import DataError
from ..harness.outcome import BatchRecord, GpuUsage, RunOutcome
from ..harness.profiles import Limits
from ..harness.verdict import STATUSES, Verdict
from ..jsonio import write_json
from ..scoring.data import Question, load_questions

CONTAINER_HOME = "/home/aicrowd"  # where docker/Dockerfile puts the repository
INPUT_DIR = "/shopbench/input"
OUTPUT_DIR = "/shopbench/output"
ENTRYPOINT = f"{CONTAINER_HOME}/docker/entrypoint.py"
QUESTIONS_FILE = "questions.jsonl"
JOB_FILE = "job.json"
REPORT_FILE = "run_report.json"
REPORT_FORMAT = 1


@dataclass(frozen=True)
class Job:
    model: str | None
    seed: int
    limits: Limits


def write_inputs(folder: str | Path, questions: Sequence[Question], job: Job) -> None:
    """The inputs folder: questions in test format (no answer-side field ever) and job.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines, next_row = [], 0
    for q in sorted(questions, key=lambda q: q.row):
        lines.extend([""] * (q.row - next_row))  # keep row numbers: blank lines are skipped but counted
        lines.append(json.dumps({"input_field": q.prompt, "is_multiple_choice": q.is_multiple_choice},
                                ensure_ascii=False))
        next_row = q.row + 1
    (folder / QUESTIONS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    content = {"kit_version": __version__, "model": job.model, "seed": job.seed, "limits": asdict(job.limits)}
    (folder / JOB_FILE).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def read_inputs(folder: str | Path) -> tuple[list[Question], Job]:
    folder = Path(folder)
    questions = load_questions(folder / QUESTIONS_FILE)
    raw = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    known = {f.name for f in fields(Limits)}
    limits = Limits(**{k: v for k, v in raw["limits"].items() if k in known})
    return questions, Job(raw.get("model"), int(raw.get("seed", 0)), limits)


def where_it_ran() -> dict[str, Any]:
    """The container's side of results.json: Python, platform, user, the kit's version."""
    return {"kit_version": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "uid": os.getuid(), "gid": os.getgid()}


def write_report(folder: str | Path, report: dict[str, Any]) -> None:
    """run_report.json, atomically, strict JSON."""
    path = Path(folder) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)


def outcome_to_report(outcome: RunOutcome | None, error: str | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"format": REPORT_FORMAT, "container": where_it_ran(), "error": error}
    if outcome is not None:
        report["outcome"] = asdict(outcome)
    return report


# ---------------------------------------------------------------- reading the report back (untrusted)


class ReportError(DataError):
    """The container's run report is not what the entry point writes."""


def _number(raw: dict, key: str, optional: bool = True, integer: bool = False) -> Any:
    value = raw.get(key)
    if value is None and optional:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < 0:
        raise ReportError(f"'{key}' must be a non-negative {'int' if integer else 'number'}, got {value!r:.60}")
    return value


def _verdict(raw: Any) -> Verdict:
    if not isinstance(raw, dict) or raw.get("status") not in STATUSES or not isinstance(raw.get("detail"), str):
        raise ReportError(f"'verdict' must be {{status: one of {', '.join(STATUSES)}, detail: str}}")
    return Verdict(raw["status"], raw["detail"][:2000])


def _batches(raw: Any) -> tuple[BatchRecord, ...]:
    if not isinstance(raw, list):
        raise ReportError("'batches' must be a list")
    batches = []
    for item in raw:
        rows = item.get("rows") if isinstance(item, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in rows):
            raise ReportError("every batch needs 'rows', a list of ints")
        if not isinstance(item.get("is_multiple_choice"), bool):
            raise ReportError("every batch needs 'is_multiple_choice', true or false")
        batches.append(BatchRecord(_number(item, "index", False, True), tuple(rows), item["is_multiple_choice"],
                                   float(_number(item, "latency_s", False))))
    return tuple(batches)


def _gpus(raw: Any) -> tuple[GpuUsage, ...]:
    if not isinstance(raw, list):
        raise ReportError("'gpus' must be a list")
    gpus = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ReportError("every GPU entry needs 'name'")
        if item.get("measured") not in (None, "process", "device"):
            raise ReportError("a GPU's 'measured' must be 'process', 'device' or null")
        gpus.append(GpuUsage(_number(item, "index", False, True), item["name"][:200],
                             *(_number(item, k, True, True) for k in ("peak_bytes", "torch_peak_bytes", "cap_bytes")),
                             item.get("measured")))
    return tuple(gpus)


def _strings(raw: Any, key: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise ReportError(f"'{key}' must be a list of strings")
    return tuple(s[:2000] for s in raw)


def _model_info(raw: Any) -> dict | None:
    """The model's own run_info(): kept when it is a JSON object of at most 64 kB, else left out."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(json.dumps(raw, default=str)) > 1 << 16:
        raise ReportError("'model_info' must be a JSON object of at most 64 kB")
    return raw


def outcome_from_report(report: Any, limits: Limits) -> RunOutcome:
    """The harness's outcome as the container reported it, every field checked. ``limits`` are the
    runner's own (what the container says it enforced is not trusted). Raises ReportError."""
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise ReportError(f"not a run report of format {REPORT_FORMAT}")
    raw = report.get("outcome")
    if not isinstance(raw, dict):
        raise ReportError("the report has no 'outcome'")
    traceback = raw.get("traceback")
    values = {
        "verdict": _verdict(raw.get("verdict")), "limits": limits,
        "n_questions": _number(raw, "n_questions", False, True), "n_answered": _number(raw, "n_answered", False, True),
        "n_resumed": _number(raw, "n_resumed", False, True), "batches": _batches(raw.get("batches")),
        "init_s": _number(raw, "init_s"), "wall_s": _number(raw, "wall_s", False),
        "prior_elapsed_s": _number(raw, "prior_elapsed_s", False), "projected_s": _number(raw, "projected_s"),
        "peak_rss_bytes": _number(raw, "peak_rss_bytes", True, True), "gpus": _gpus(raw.get("gpus")),
        "notes": _strings(raw.get("notes"), "notes"), "startup_s": _number(raw, "startup_s"),
        "traceback": traceback[-8000:] if isinstance(traceback, str) else None,
        "answers_cut": _number(raw, "answers_cut", True, True) or 0,
        "model_info": _model_info(raw.get("model_info")),
    }
    known = {f.name for f in fields(RunOutcome)}
    return RunOutcome(**{k: v for k, v in values.items() if k in known})
