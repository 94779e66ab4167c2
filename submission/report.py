"""What a run writes and prints: results.json, scored predictions, the terminal table."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from .data import TRACKS, Question
from .scoring import RunResult

RESULTS_FILE = "results.json"


def short_track(track: str) -> str:
    return track.replace("amazon-kdd-cup-24-", "")


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


def write_json(path: str | Path, content: dict[str, Any]) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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


def format_table(result: RunResult, intervals: dict[str, Any] | None = None) -> str:
    """The per-task table, track scores, all-around and task mean, and the parse-failure report.

    ``intervals`` (the ``intervals`` entry of results.json, from ``submission.intervals``) adds a 95%
    interval column; without it the table is as before.
    """
    ci_head = f" {ci_label(intervals):>18}" if intervals else ""
    lines = [f"{'task':<32} {'track':<32} {'metric':<30} {'n':>5} {'score':>7}{ci_head} {'unparsed':>8}"]
    for name, t in result.tasks.items():
        ci = f" {interval_text(intervals, 'tasks', name):>18}" if intervals else ""
        lines.append(
            f"{name:<32} {short_track(t.track):<32} {t.metric:<30} {t.n:>5} {t.score:>7.4f}{ci} {t.parse_failures:>8}"
        )
    lines.append("")
    for track in TRACKS:
        value = f"{result.tracks[track]:.4f}" if track in result.tracks else "no questions"
        ci = f"  {interval_text(intervals, 'tracks', track)}" if intervals and track in result.tracks else ""
        lines.append(f"track {short_track(track):<40} {value}{ci}")
    lines.append("")
    note = f" (over {len(result.tracks)} of 4 tracks)" if result.missing_tracks else ""
    ci = f"  {ci_label(intervals)} {interval_text(intervals, 'all_around')}" if intervals else ""
    lines.append(f"all-around score{note}: {result.all_around:.4f}{ci}")
    lines.append(f"task mean (the official local evaluator's 'Overall Score'): {result.task_mean:.4f}")
    if intervals:
        lines.append(f"intervals: {intervals['resamples']:,} bootstrap resamples of the questions within each task "
                     f"(seed {intervals['seed']}); whether another run really differs: "
                     "python -m submission compare RUN_A RUN_B")
    lines.extend(parse_failure_report(result))
    return "\n".join(lines)


def ci_label(intervals: dict[str, Any]) -> str:
    return f"{intervals['confidence']:.0%} interval"


def interval_text(intervals: dict[str, Any], level: str, name: str | None = None) -> str:
    """'[0.1020, 0.2100]' for a task, track ('tasks'/'tracks' and a name) or 'all_around'."""
    pair = intervals[level] if name is None else intervals[level].get(name)
    return f"[{pair[0]:.4f}, {pair[1]:.4f}]" if pair else ""


def parse_failure_report(result: RunResult) -> list[str]:
    failing = [t for t in result.tasks.values() if t.parse_failures]
    if not failing:
        return ["", "parse failures: none"]
    lines = ["", "parse failures (these outputs score 0; the official parser could not read them):"]
    for t in failing:
        example = t.failure_example
        shown = json.dumps(example["output"][:80], ensure_ascii=False)
        lines.append(f"  {t.task_name}: {t.parse_failures} of {t.n} ({t.task_type}); e.g. row {example['row']}: {shown}")
    return lines
