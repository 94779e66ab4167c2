"""The terminal table a run prints: tasks, tracks, all-around, task mean, intervals, parse failures."""

from __future__ import annotations

from typing import Any

from ..jsonio import dumps
from ..scoring.data import TRACKS, short_track
from ..scoring.scorer import RunResult


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
        assert example is not None  # a task with parse failures keeps its first
        shown = dumps(example["output"][:80])
        lines.append(f"  {t.task_name}: {t.parse_failures} of {t.n} ({t.task_type}); "
                     f"e.g. row {example['row']}: {shown}")
    return lines


def format_model_info(info: Any) -> list[str]:
    """What a run prints of the model's ``run_info()`` (results.json's ``model_info``): how multiple choice
    was answered, the methods it fell back from and why, and answers that had to be shaped. A model that
    says nothing of the kind (or nothing at all) prints nothing."""
    if not isinstance(info, dict) or not isinstance(info.get("multiple_choice_method"), str):
        return []
    method = info["multiple_choice_method"]
    probes = info.get("probes")
    if not isinstance(probes, list):
        probes = []
    failed = [f"{p.get('method')} ({p.get('reason')})" for p in probes if isinstance(p, dict) and not p.get("ok")]
    lines = [f"multiple choice by {method}" + (f"; fell back from {'; '.join(failed)}" if failed else "")]
    counts = info.get("multiple_choice_answers")
    if isinstance(counts, dict) and isinstance(counts.get("shaped"), int) and counts["shaped"]:
        total = sum(n for n in counts.values() if isinstance(n, int))
        lines.append(f"{counts['shaped']} of {total} multiple-choice answers by {method} were not an allowed digit; "
                     "shaped from their text")
    return [f"model: {line}" for line in lines]
