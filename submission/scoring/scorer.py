"""Scoring: parse every output, score it with its metric, aggregate per task, track and all-around.

Aggregation follows the official grader: a task's score is the mean of its samples' scores (micro F1
over summed counts for NER); a track's score is the mean of its tasks' scores; the all-around score is
the mean of the four tracks; ``task_mean`` is the mean over all tasks, the "Overall Score" that the
official local evaluator prints.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError
from . import embeddings
from .data import TRACKS, Question
from .metrics import aggregate, cosine_score, f1_from_counts, get_metric
from .parsers import Parsed, parse

_SURROGATE = re.compile("[\ud800-\udfff]")
FAILURE_EXAMPLE_CHARS = 300  # of an unparsed output kept in results.json (the whole text is in predictions.jsonl)


@dataclass(frozen=True)
class ScoringConfig:
    """Where the embedding models are (metric -> local path), which device embeds, and whether truth
    embeddings are kept on disk between runs (see ``embeddings.TruthEmbeddingCache``)."""

    embedding_models: Mapping[str, str] = field(default_factory=dict)
    device: str = "cpu"
    cache_truth_embeddings: bool = True


@dataclass(frozen=True)
class SampleScore:
    row: int
    parsed: Any
    parse_failed: bool
    score: float  # for micro f1: this sample's own F1, for display; the task uses the counts
    counts: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class TaskResult:
    task_name: str
    task_type: str
    track: str
    metric: str  # "bleu+jp-bleu" when a task mixes metrics, as task17 of the development split does
    n: int
    score: float
    parse_failures: int
    failure_example: dict | None  # {"row", "output"} of the first unparseable output, cut to 300 characters


@dataclass(frozen=True)
class RunResult:
    tasks: dict[str, TaskResult]
    tracks: dict[str, float]
    all_around: float
    task_mean: float
    samples: dict[int, SampleScore]
    missing_tracks: tuple[str, ...]


def check_scoring_ready(questions: Sequence[Question], config: ScoringConfig | None = None) -> dict[str, str]:
    """Fail now, before any model runs, if a metric is unknown or its embedding model is missing.

    Returns metric -> resolved local path for the embedding metrics present.
    """
    config = config or ScoringConfig()
    paths = {}
    for metric in sorted({_field(q, "metric") for q in questions if q.has_truth}):
        if get_metric(metric).embedding:
            paths[metric] = str(embeddings.resolve_model_path(metric, config.embedding_models))
    return paths


def _field(q: Question, name: str) -> str:
    """An answer-side field of ``q`` (task_name, task_type, metric or track); a question in test format has none."""
    value = getattr(q, name)
    if not isinstance(value, str):
        raise DataError(f"row {q.row} has no {name} (test format): it cannot be scored")
    return value


def _check_outputs(questions: Sequence[Question], outputs: Mapping[int, str]) -> None:
    for q in questions:
        if not q.has_truth:
            raise DataError(f"row {q.row} has no answer fields (test format): it cannot be scored")
        if q.row not in outputs:
            raise DataError(f"row {q.row} has no prediction; every question needs an output to be scored")
        if not isinstance(outputs[q.row], str):
            raise DataError(f"row {q.row}: the output must be a string, got {type(outputs[q.row]).__name__}")


def _embedding_scores(
    metric: str, items: list[tuple[Question, Parsed]], config: ScoringConfig, paths: dict[str, str]
) -> list[float]:
    model = embeddings.load_model(paths[metric], config.device)
    truths = [q.truth if isinstance(q.truth, list) else [q.truth] for q, _ in items]
    truth_texts = [t for ts in truths for t in ts]
    if config.cache_truth_embeddings:
        cache = embeddings.TruthEmbeddingCache(paths[metric])
        vectors = cache.embed(model, truth_texts)
        cache.save()
    else:
        vectors = embeddings.embed(model, truth_texts)
    vectors.update(embeddings.embed(model, [p.value for _, p in items]))
    return [
        cosine_score(vectors[p.value], [vectors[t] for t in ts])
        for (_, p), ts in zip(items, truths, strict=True)
    ]


def _sample_scores(
    questions: Sequence[Question], parsed: dict[int, Parsed], config: ScoringConfig
) -> dict[int, SampleScore]:
    by_metric: dict[str, list[tuple[Question, Parsed]]] = defaultdict(list)
    for q in questions:
        by_metric[_field(q, "metric")].append((q, parsed[q.row]))
    paths = check_scoring_ready(questions, config)
    samples: dict[int, SampleScore] = {}
    for metric_name, items in by_metric.items():
        metric = get_metric(metric_name)
        if metric.embedding:
            values = _embedding_scores(metric_name, items, config, paths)
            samples.update(
                (q.row, SampleScore(q.row, p.value, p.failed, v)) for (q, p), v in zip(items, values, strict=True)
            )
            continue
        sample = metric.sample
        assert sample is not None  # every metric that is not an embedding one has a per-sample function
        for q, p in items:
            value = sample(p.value, q.truth)
            if metric.aggregation == "micro-f1":
                samples[q.row] = SampleScore(q.row, p.value, p.failed, f1_from_counts([value]), value)
            else:
                samples[q.row] = SampleScore(q.row, p.value, p.failed, float(value))
    return samples


def _task_result(task: list[Question], samples: dict[int, SampleScore], outputs: Mapping[int, str]) -> TaskResult:
    first = task[0]
    metrics = list(dict.fromkeys(_field(q, "metric") for q in task))
    aggregations = {get_metric(m).aggregation for m in metrics}
    if len(aggregations) > 1:
        raise DataError(
            f"task '{first.task_name}' mixes metrics {metrics} that aggregate differently; "
            "a micro f1 task must use micro f1 for every sample"
        )
    aggregation = aggregations.pop()
    scores = [samples[q.row] for q in task]
    values = [s.counts for s in scores] if aggregation == "micro-f1" else [s.score for s in scores]
    failures = [q for q in task if samples[q.row].parse_failed]
    example = {"row": failures[0].row, "output": outputs[failures[0].row][:FAILURE_EXAMPLE_CHARS]} if failures else None
    return TaskResult(
        _field(first, "task_name"), _field(first, "task_type"), _field(first, "track"), "+".join(metrics), len(task),
        aggregate(aggregation, values), len(failures), example,
    )


def scorable(output: str) -> str:
    """The output with each lone surrogate (a code point no encoding can write) replaced by U+FFFD, so
    the tokenizers of the metrics can read it; every other output is unchanged."""
    return _SURROGATE.sub("\ufffd", output) if _SURROGATE.search(output) else output


def score_outputs(
    questions: Sequence[Question], outputs: Mapping[int, str], config: ScoringConfig | None = None
) -> RunResult:
    """Score raw outputs (row -> response string) against the questions' truths."""
    config = config or ScoringConfig()
    _check_outputs(questions, outputs)
    parsed = {q.row: parse(_field(q, "task_type"), scorable(outputs[q.row])) for q in questions}
    samples = _sample_scores(questions, parsed, config)
    by_task: dict[str, list[Question]] = defaultdict(list)
    for q in questions:
        by_task[_field(q, "task_name")].append(q)
    tasks = {name: _task_result(task, samples, outputs) for name, task in by_task.items()}
    track_scores: dict[str, list[float]] = defaultdict(list)
    for task in tasks.values():
        track_scores[task.track].append(task.score)
    tracks = {t: float(np.mean(track_scores[t])) for t in TRACKS if t in track_scores}
    return RunResult(
        tasks=tasks,
        tracks=tracks,
        all_around=float(np.mean(list(tracks.values()))),
        task_mean=float(np.mean([t.score for t in tasks.values()])),
        samples=samples,
        missing_tracks=tuple(t for t in TRACKS if t not in tracks),
    )
