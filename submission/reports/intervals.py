"""Bootstrap confidence intervals for a run's scores, and paired bootstrap tests between two runs.

The resampling follows the official aggregation, so an interval is about the number the grader
prints. Each resample draws every task's questions again, with replacement and the same n (questions
are resampled *within* tasks, never across them), then recomputes:

- each task's score the official way: the mean of its per-sample scores, or for micro-F1 tasks the F1
  of the summed (tp, fp, fn) counts of the drawn questions;
- each track's score as the mean of its tasks' scores, the all-around score as the mean of the tracks
  present, and the task mean as the mean of all tasks.

A 95% interval is the 2.5th to 97.5th percentile of the resampled scores (percentile bootstrap,
numpy's linear interpolation). The point estimate is the score of the full set, not the resamples'
mean. The interval says how much the score moves if the same model met another draw of questions
like these; it says nothing about the model's own randomness (run twice with other seeds for that).

Randomness: one ``numpy.random.default_rng(seed)`` per call, never the global generator. The
resamples are drawn in chunks of at most ``CHUNK_CELLS`` indices, so memory stays near 16 MB and
the result for a given seed does not depend on the machine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError
from ..scoring.data import TRACKS, Question
from ..scoring.metrics import get_metric
from ..scoring.scorer import RunResult

RESAMPLES = 1000
CONFIDENCE = 0.95
CHUNK_CELLS = 2_000_000  # indices drawn at once: 2M int64 = 16 MB
RIGHT_THRESHOLD = 0.5


@dataclass(frozen=True, eq=False)
class TaskSamples:
    """One task's per-question values in a fixed row order: what the bootstrap resamples.

    ``values`` is a float array of shape (n,) for mean tasks, or an int array of shape (n, 3) of
    (tp, fp, fn) counts for micro-F1 tasks.
    """

    task_name: str
    track: str
    aggregation: str  # "mean" or "micro-f1"
    rows: tuple[int, ...]
    values: np.ndarray

    def __post_init__(self) -> None:
        shape = (len(self.rows),) if self.aggregation == "mean" else (len(self.rows), 3)
        if self.aggregation not in ("mean", "micro-f1"):
            raise ValueError(f"task '{self.task_name}': unknown aggregation '{self.aggregation}'")
        if not self.rows or self.values.shape != shape:
            raise ValueError(f"task '{self.task_name}': values of shape {self.values.shape}, expected {shape}")

    @property
    def n(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Interval:
    """A score and its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Intervals:
    """Bootstrap intervals of one run at every level of the official aggregation."""

    tasks: dict[str, Interval]
    tracks: dict[str, Interval]
    all_around: Interval
    task_mean: Interval
    resamples: int
    seed: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """The ``intervals`` entry of results.json: [low, high] pairs and how they were made."""
        return {
            "method": "percentile bootstrap; questions resampled within tasks, official aggregation",
            "confidence": self.confidence, "resamples": self.resamples, "seed": self.seed,
            "all_around": [self.all_around.low, self.all_around.high],
            "task_mean": [self.task_mean.low, self.task_mean.high],
            "tracks": {name: [i.low, i.high] for name, i in self.tracks.items()},
            "tasks": {name: [i.low, i.high] for name, i in self.tasks.items()},
        }


@dataclass(frozen=True)
class Difference:
    """Run B minus run A on one score, with its paired bootstrap interval and p-value."""

    a: float
    b: float
    delta: float
    low: float
    high: float
    p_value: float


@dataclass(frozen=True)
class Comparison:
    tasks: dict[str, Difference]
    tracks: dict[str, Difference]
    all_around: Difference
    task_mean: Difference
    resamples: int
    seed: int
    confidence: float


@dataclass(frozen=True)
class Levels:
    """Scores at every aggregation level; each value is a float array (one entry per resample)."""

    tasks: dict[str, np.ndarray]
    tracks: dict[str, np.ndarray]
    all_around: np.ndarray
    task_mean: np.ndarray


# --- pure maths -------------------------------------------------------------------------------------


def micro_f1(counts: np.ndarray) -> np.ndarray:
    """F1 of summed counts along the last axis (tp, fp, fn): 2tp / (2tp + fp + fn), 0 where tp is 0.

    Equal to the official 2PR / (P + R) with P = tp / (tp + fp), R = tp / (tp + fn).
    """
    counts = np.asarray(counts, dtype=np.float64)
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = np.where(tp > 0, 2 * tp + fp + fn, 1.0)
    return np.where(tp > 0, 2 * tp / denominator, 0.0)


def task_scores(values: np.ndarray, aggregation: str, indices: np.ndarray) -> np.ndarray:
    """The task's score for each row of ``indices`` (shape (resamples, n): which questions were drawn)."""
    drawn = values[indices]
    if aggregation == "micro-f1":
        return micro_f1(drawn.sum(axis=1))
    return drawn.mean(axis=1)


def combine(task_values: Mapping[str, np.ndarray], track_of: Mapping[str, str]) -> Levels:
    """Tracks = mean of their tasks, all-around = mean of the tracks present, task mean = mean of tasks."""
    by_track: dict[str, list[np.ndarray]] = defaultdict(list)
    for name, values in task_values.items():
        by_track[track_of[name]].append(values)
    tracks = {t: np.mean(by_track[t], axis=0) for t in TRACKS if t in by_track}
    return Levels(
        tasks=dict(task_values), tracks=tracks,
        all_around=np.mean(list(tracks.values()), axis=0),
        task_mean=np.mean(list(task_values.values()), axis=0),
    )


def percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    tail = round((1 - confidence) / 2 * 100, 9)  # 2.5, not 2.500000000000002
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def paired_p_value(observed: float, deltas: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a paired difference: twice the share of resampled deltas on the
    other side of 0 from the observed delta, 0 itself counted as the other side, capped at 1.

    With B resamples: p = min(1, 2 k / B), where k = #{delta* <= 0} when the observed delta is
    positive and k = #{delta* >= 0} when it is negative; an observed delta of exactly 0 gives p = 1.
    p = 0 means no resample crossed 0: report it as p < 2 / B, the resolution of B resamples
    (``format_p``). Counting ties at 0 against the change keeps p conservative for the discrete
    metrics, and p <= 1 - confidence goes with a percentile interval that excludes 0, up to
    interpolation between neighbouring resamples.
    """
    if observed == 0:
        return 1.0
    other_side = deltas <= 0 if observed > 0 else deltas >= 0
    return float(min(1.0, 2 * int(other_side.sum()) / len(deltas)))


def format_p(p_value: float, resamples: int) -> str:
    """'0.034', or '<0.002' when no resample crossed 0 (the smallest p that B resamples resolve is 2 / B)."""
    return f"<{2 / resamples:.2g}" if p_value == 0 else f"{p_value:.3f}"


# --- resampling -------------------------------------------------------------------------------------


def draw_indices(tasks: Sequence[TaskSamples], rng: np.random.Generator, resamples: int
                 ) -> Iterator[dict[str, np.ndarray]]:
    """Chunks of resampled question indices: task name -> (chunk size, n) ints in [0, n)."""
    total = sum(t.n for t in tasks)
    chunk = max(1, CHUNK_CELLS // max(total, 1))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        yield {t.task_name: rng.integers(0, t.n, size=(size, t.n)) for t in tasks}


def replicates(runs: Sequence[Sequence[TaskSamples]], seed: int, resamples: int) -> list[Levels]:
    """Every run's scores on the same resamples: one Levels of arrays (one entry per resample) per run.

    The runs must share their tasks and row order; ``bootstrap`` passes one run, ``paired_bootstrap`` two.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    rng = np.random.default_rng(seed)
    parts: list[dict[str, list[np.ndarray]]] = [defaultdict(list) for _ in runs]
    for indices in draw_indices(runs[0], rng, resamples):
        for run, part in zip(runs, parts, strict=True):
            for task in run:
                part[task.task_name].append(task_scores(task.values, task.aggregation, indices[task.task_name]))
    track_of = {t.task_name: t.track for t in runs[0]}
    return [combine({name: np.concatenate(chunks) for name, chunks in part.items()}, track_of) for part in parts]


def point_estimates(tasks: Sequence[TaskSamples]) -> Levels:
    """The scores of the full set, through the same code as the resamples (0-d arrays)."""
    scores = {t.task_name: task_scores(t.values, t.aggregation, np.arange(t.n)[None, :])[0] for t in tasks}
    return combine(scores, {t.task_name: t.track for t in tasks})


def bootstrap(tasks: Sequence[TaskSamples], seed: int = 0, resamples: int = RESAMPLES,
              confidence: float = CONFIDENCE) -> Intervals:
    """Percentile bootstrap intervals for every task, track, the all-around score and the task mean."""
    _check_tasks(tasks)
    (reps,) = replicates([tasks], seed, resamples)
    point = point_estimates(tasks)

    def interval(estimate: np.ndarray, replicates: np.ndarray) -> Interval:
        return Interval(float(estimate), *percentile_interval(replicates, confidence))

    return Intervals(
        tasks={name: interval(point.tasks[name], reps.tasks[name]) for name in point.tasks},
        tracks={name: interval(point.tracks[name], reps.tracks[name]) for name in point.tracks},
        all_around=interval(point.all_around, reps.all_around),
        task_mean=interval(point.task_mean, reps.task_mean),
        resamples=resamples, seed=seed, confidence=confidence,
    )


def paired_bootstrap(tasks_a: Sequence[TaskSamples], tasks_b: Sequence[TaskSamples], seed: int = 0,
                     resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> Comparison:
    """B minus A at every level, both runs scored on the same resampled questions.

    The runs must hold the same tasks with the same rows in the same order; pairing is what makes the
    interval narrow: a question both runs get right, or both wrong, adds no noise to the difference.
    """
    _check_tasks(tasks_a)
    _check_paired(tasks_a, tasks_b)
    reps_a, reps_b = replicates([tasks_a, tasks_b], seed, resamples)
    point_a, point_b = point_estimates(tasks_a), point_estimates(tasks_b)

    def difference(a: np.ndarray, b: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> Difference:
        delta, deltas = float(b - a), rb - ra
        low, high = percentile_interval(deltas, confidence)
        return Difference(float(a), float(b), delta, low, high, paired_p_value(delta, deltas))

    return Comparison(
        tasks={n: difference(point_a.tasks[n], point_b.tasks[n], reps_a.tasks[n], reps_b.tasks[n])
               for n in point_a.tasks},
        tracks={n: difference(point_a.tracks[n], point_b.tracks[n], reps_a.tracks[n], reps_b.tracks[n])
                for n in point_a.tracks},
        all_around=difference(point_a.all_around, point_b.all_around, reps_a.all_around, reps_b.all_around),
        task_mean=difference(point_a.task_mean, point_b.task_mean, reps_a.task_mean, reps_b.task_mean),
        resamples=resamples, seed=seed, confidence=confidence,
    )


def _check_tasks(tasks: Sequence[TaskSamples]) -> None:
    if not tasks:
        raise DataError("no scored questions: there is nothing to resample")
    names = [t.task_name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"a task appears twice among {names}")


def _check_paired(tasks_a: Sequence[TaskSamples], tasks_b: Sequence[TaskSamples]) -> None:
    for a, b in zip(tasks_a, tasks_b, strict=True):
        if (a.task_name, a.aggregation, a.rows) != (b.task_name, b.aggregation, b.rows):
            raise ValueError(f"paired runs differ on task '{a.task_name}' / '{b.task_name}': "
                             "pair them on the same tasks, rows and order (see compare.paired_tasks)")


# --- building the inputs ----------------------------------------------------------------------------


def aggregation_of(metric: str) -> str:
    """'mean' or 'micro-f1' for a task's metric label ('bleu+jp-bleu' for a mixed task)."""
    kinds = {get_metric(name).aggregation for name in metric.split("+")}
    if len(kinds) != 1:
        raise DataError(f"metric '{metric}' mixes aggregations {sorted(kinds)}")
    return kinds.pop()


def is_right(score: float) -> bool:
    """A question counts as right when its sample score is at least 0.5.

    For accuracy (0 or 1) that is exactly a correct answer; for the continuous metrics (hit rate@3,
    nDCG, per-sample F1, ROUGE-L, BLEU, cosine similarity) it means at least half marks.
    """
    return score >= RIGHT_THRESHOLD


def samples_from_result(questions: Sequence[Question], result: RunResult) -> list[TaskSamples]:
    """Bootstrap inputs from an in-process scoring result, tasks in data order."""
    rows_by_task: dict[str, list[int]] = defaultdict(list)
    for q in questions:
        if q.row in result.samples and q.task_name is not None:
            rows_by_task[q.task_name].append(q.row)
    tasks = []
    for name, rows in rows_by_task.items():
        task = result.tasks[name]
        aggregation = aggregation_of(task.metric)
        samples = [result.samples[row] for row in rows]
        values = (np.array([s.counts for s in samples], dtype=np.int64) if aggregation == "micro-f1"
                  else np.array([s.score for s in samples], dtype=np.float64))
        tasks.append(TaskSamples(name, task.track, aggregation, tuple(rows), values))
    return tasks


def samples_from_records(records: Sequence[dict[str, Any]], task_meta: Mapping[str, dict[str, Any]],
                         source: str) -> list[TaskSamples]:
    """Bootstrap inputs from scored predictions.jsonl records and results.json's ``tasks``."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r["row"]):
        if not isinstance(record.get("score"), (int, float)) or "task_name" not in record:
            raise DataError(f"{source}: row {record['row']} has no 'score' or 'task_name': the predictions "
                            "were not scored; score them with local_evaluation.py --predictions")
        by_task[record["task_name"]].append(record)
    unknown = [name for name in by_task if name not in task_meta]
    if unknown:
        raise DataError(f"{source}: task '{unknown[0]}' is not in results.json's tasks; the two files are "
                        "from different runs")
    tasks = []
    for name in (n for n in task_meta if n in by_task):
        aggregation = aggregation_of(task_meta[name]["metric"])
        rows = tuple(r["row"] for r in by_task[name])
        if aggregation == "micro-f1":
            missing = [r["row"] for r in by_task[name] if len(r.get("tp_fp_fn") or ()) != 3]
            if missing:
                raise DataError(f"{source}: micro-F1 task '{name}' row {missing[0]} has no 'tp_fp_fn' counts; "
                                "re-score the predictions with this kit version")
            values = np.array([r["tp_fp_fn"] for r in by_task[name]], dtype=np.int64)
        else:
            values = np.array([r["score"] for r in by_task[name]], dtype=np.float64)
        tasks.append(TaskSamples(name, task_meta[name]["track"], aggregation, rows, values))
    return tasks
