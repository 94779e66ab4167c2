"""Compare two runs on the same questions: is the difference real, and which questions changed?

``compare_folders(RUN_A, RUN_B)`` reads two run folders (local_evaluation.py, the Docker runner or the
grader), pairs their questions by row, and computes B minus A for every task, track, the all-around
score and the task mean, each with a paired bootstrap interval and p-value
(``intervals.paired_bootstrap``), and the questions that flipped from right to wrong and back
(right = sample score >= 0.5, ``intervals.is_right``). Runs scored on different data files are
refused. The numbers only: ``compare.py`` shows them (terminal table, chart, compare.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import DataError
from .intervals import RESAMPLES, Comparison, Difference, TaskSamples, is_right, paired_bootstrap
from .run_view import RunView, data_digest, load_run_dir


@dataclass(frozen=True)
class Flip:
    """A question that one run got right and the other wrong (right = sample score >= 0.5)."""

    row: int
    task_name: str
    score_a: float
    score_b: float


@dataclass(frozen=True)
class RunComparison:
    a: RunView
    b: RunView
    result: Comparison
    task_n: dict[str, int]  # questions paired per task
    fixed: list[Flip]  # wrong in A, right in B
    broken: list[Flip]  # right in A, wrong in B
    notes: tuple[str, ...]


def _data_path(view: RunView) -> Path:
    if view.data_path is None:
        recorded = view.results.get("data_file")
        where = f"records the data file {recorded!r}, which is not on this machine" if recorded \
            else "records no data file"
        raise DataError(f"run '{view.name}': results.json {where}; pass --data PATH with a copy of the "
                        "data file both runs used (each run's predictions are checked against it)")
    return view.data_path


def check_same_data(a: RunView, b: RunView) -> None:
    """Refuse two runs unless their data files have the same bytes (paths may differ between machines)."""
    path_a, path_b = _data_path(a), _data_path(b)
    digest_a, digest_b = data_digest(path_a), data_digest(path_b)
    if digest_a != digest_b:
        raise DataError(
            f"the runs were scored on different data files: '{a.name}' on {a.data_path} (sha256 {digest_a[:12]}) "
            f"and '{b.name}' on {b.data_path} (sha256 {digest_b[:12]}); a comparison needs the same questions: "
            f"re-run one of them with --data {a.data_path}"
        )


def _subset(task: TaskSamples, rows: Sequence[int]) -> TaskSamples:
    position = {row: i for i, row in enumerate(task.rows)}
    values = task.values[np.array([position[row] for row in rows], dtype=np.int64)]
    return TaskSamples(task.task_name, task.track, task.aggregation, tuple(rows), values)


def paired_tasks(a: RunView, b: RunView) -> tuple[list[TaskSamples], list[TaskSamples], list[str]]:
    """Both runs' tasks on the rows both answered, in A's task order, and notes on what was left out."""
    by_name_b = {t.task_name: t for t in b.tasks}
    tasks_a, tasks_b, notes = [], [], []
    for task in a.tasks:
        other = by_name_b.get(task.task_name)
        rows = sorted(set(task.rows) & set(other.rows)) if other else []
        if other is not None and rows:
            tasks_a.append(_subset(task, rows))
            tasks_b.append(_subset(other, rows))
    only_a, only_b = set(a.records) - set(b.records), set(b.records) - set(a.records)
    if only_a or only_b:
        paired = sum(t.n for t in tasks_a)
        notes.append(f"'{a.name}' has {len(only_a):,} scored questions that '{b.name}' lacks, and '{b.name}' "
                     f"{len(only_b):,} that '{a.name}' lacks (another --limit, or a partial run): the comparison "
                     f"uses the {paired:,} questions both answered, so its A and B scores can differ from "
                     "each run's own results.json")
    if not tasks_a:
        raise DataError(f"runs '{a.name}' and '{b.name}' have no scored question in common: nothing to compare")
    return tasks_a, tasks_b, notes


def find_flips(a: RunView, b: RunView, tasks: Sequence[TaskSamples]) -> tuple[list[Flip], list[Flip]]:
    """(wrong in A and right in B, right in A and wrong in B), in task and row order."""
    fixed: list[Flip] = []
    broken: list[Flip] = []
    for task in tasks:
        for row in task.rows:
            score_a, score_b = a.records[row]["score"], b.records[row]["score"]
            if is_right(score_a) != is_right(score_b):
                (fixed if is_right(score_b) else broken).append(Flip(row, task.task_name, score_a, score_b))
    return fixed, broken


def compare_runs(a: RunView, b: RunView, seed: int = 0, resamples: int = RESAMPLES) -> RunComparison:
    check_same_data(a, b)
    tasks_a, tasks_b, notes = paired_tasks(a, b)
    result = paired_bootstrap(tasks_a, tasks_b, seed=seed, resamples=resamples)
    fixed, broken = find_flips(a, b, tasks_a)
    return RunComparison(a, b, result, {t.task_name: t.n for t in tasks_a}, fixed, broken, tuple(notes))


def n_paired(rc: RunComparison) -> int:
    return sum(rc.task_n.values())


def compare_folders(run_a: str | Path, run_b: str | Path, data: str | Path | None = None, seed: int = 0,
                    resamples: int = RESAMPLES) -> RunComparison:
    """Load two run folders and compare them; two folders with the same name are named by the paths given."""
    a, b = load_run_dir(run_a, data), load_run_dir(run_b, data)
    if a.name == b.name:  # runs/x/out and runs/y/out
        a, b = replace(a, name=str(run_a)), replace(b, name=str(run_b))
    return compare_runs(a, b, seed=seed, resamples=resamples)


def direction(d: Difference) -> str:
    """'B better' or 'B worse' when the interval excludes 0, else ''."""
    if d.low > 0:
        return "B better"
    if d.high < 0:
        return "B worse"
    return ""


def flip_counts(rc: RunComparison) -> dict[str, tuple[int, int]]:
    """task -> (fixed, broken)."""
    counts = {name: [0, 0] for name in rc.result.tasks}
    for flip in rc.fixed:
        counts[flip.task_name][0] += 1
    for flip in rc.broken:
        counts[flip.task_name][1] += 1
    return {name: (f, b) for name, (f, b) in counts.items()}
