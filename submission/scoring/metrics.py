"""Metrics: per-sample pure functions with the official maths, and their aggregation.

Each per-sample metric takes ``(parsed_prediction, truth)`` and returns a float (micro F1 returns
``(tp, fp, fn)`` counts). Embedding metrics score many samples at once, since embedding is the cost:
see ``submission.scoring.embeddings``. Aggregation is separate: ``aggregate``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, suggest


def accuracy(parsed: int, truth: int) -> float:
    return float(parsed == truth)


def hit_rate_at_3(parsed: list[int], truth: list[int]) -> float:
    return len(set(truth).intersection(parsed[:3])) / len(truth)


def ndcg(parsed: list[int], truth: Sequence[float]) -> float:
    """nDCG of a ranking of 1-based ids against relevance weights for items 1..n.

    As in the official code: the ranking is cut to n items; an id p takes weight ``truth[p - 1]`` when
    ``p - 1 < n`` (so id 0 takes the last weight, through Python's negative indexing), else 0.
    """
    weights = list(truth)
    ranked = parsed[: len(weights)]
    dcg = 0.0
    for i, item in enumerate(ranked):
        relevance = weights[item - 1] if item - 1 < len(weights) else 0
        dcg += (np.power(2, relevance) - 1) / np.log2(i + 2)
    idcg = 0.0
    for i, relevance in enumerate(sorted(weights, reverse=True)):
        idcg += (np.power(2, relevance) - 1) / np.log2(i + 2)
    return float(dcg / idcg) if idcg else 0.0


def ner_counts(parsed: list[str], truth: list[str]) -> tuple[int, int, int]:
    """(tp, fp, fn): set overlap for tp, list lengths for fp and fn, as the official code does."""
    predicted = [entity.lower().strip(" ") for entity in parsed]
    expected = [entity.lower() for entity in truth]
    tp = len(set(predicted).intersection(expected))
    return tp, len(predicted) - tp, len(expected) - tp


def f1_from_counts(counts: Sequence[tuple[int, int, int]]) -> float:
    """Micro F1 of summed (tp, fp, fn); 0 where precision or recall is undefined."""
    tp = sum(c[0] for c in counts)
    fp = sum(c[1] for c in counts)
    fn = sum(c[2] for c in counts)
    if tp == 0:
        return 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall)


@functools.lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rougel(parsed: str, truth: str) -> float:
    """rouge-score's ROUGE-L F-measure with the Porter stemmer."""
    return float(_rouge_scorer().score(parsed, truth)["rougeL"].fmeasure)


@functools.lru_cache(maxsize=2)
def _bleu_scorer(tokenize: str) -> Any:
    from sacrebleu.metrics import BLEU

    # The official metric is evaluate's "sacrebleu" with lowercase=True: corpus_bleu with its defaults.
    return BLEU(lowercase=True, tokenize=tokenize, smooth_method="exp", effective_order=False)


def _first_line(generation: str) -> str:
    return generation.lstrip("\n").rstrip("\n").split("\n")[0]


def bleu(parsed: str, truth: str) -> float:
    """sacrebleu corpus BLEU (13a tokenizer) of the first line against one reference, over 100."""
    return _bleu_scorer("13a").corpus_score([_first_line(parsed)], [[truth]]).score / 100


def jp_bleu(parsed: str, truth: str) -> float:
    """As ``bleu`` with sacrebleu's ja-mecab tokenizer."""
    return _bleu_scorer("ja-mecab").corpus_score([_first_line(parsed)], [[truth]]).score / 100


def cosine_score(generation: np.ndarray, truths: Sequence[np.ndarray]) -> float:
    """Cosine similarity of float32 embeddings, negatives clipped to 0, mean over the truth items."""
    scores = []
    for truth in truths:
        value = np.dot(generation, truth) / (np.linalg.norm(generation) * np.linalg.norm(truth))
        scores.append(max(float(value), 0.0))
    return float(np.mean(scores))


@dataclass(frozen=True)
class Metric:
    """A metric's name, its per-sample function (None for embedding metrics) and its aggregation."""

    name: str
    sample: Callable[[Any, Any], Any] | None
    aggregation: str  # "mean" or "micro-f1"
    embedding: bool = False


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", accuracy, "mean"),
        Metric("hit rate@3", hit_rate_at_3, "mean"),
        Metric("ndcg", ndcg, "mean"),
        Metric("micro f1", ner_counts, "micro-f1"),
        Metric("rougel", rougel, "mean"),
        Metric("bleu", bleu, "mean"),
        Metric("jp-bleu", jp_bleu, "mean"),
        Metric("sent-transformer", None, "mean", embedding=True),
        Metric("multilingual-sent-transformer", None, "mean", embedding=True),
    )
}


def get_metric(name: str) -> Metric:
    """The metric called ``name``; unknown names fail with a 'did you mean' hint."""
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(
            f"unknown metric '{name}'; {suggest(name, list(METRICS))}known: {', '.join(METRICS)}"
        ) from None


def aggregate(aggregation: str, values: Sequence[Any]) -> float:
    """A task's score from its samples' values: their mean, or micro F1 of summed counts."""
    if aggregation == "micro-f1":
        return f1_from_counts(values)
    return float(np.mean(values))
