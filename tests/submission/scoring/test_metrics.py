"""The official metric maths, as tables of hand-computed cases (edge cases and quirks included)."""

import math

import numpy as np
import pytest
import sacrebleu

from submission.errors import ConfigError
from submission.scoring.metrics import (
    accuracy,
    aggregate,
    bleu,
    cosine_score,
    f1_from_counts,
    get_metric,
    hit_rate_at_3,
    jp_bleu,
    ndcg,
    ner_counts,
    rougel,
)

L3, L4, L5 = math.log2(3), math.log2(4), math.log2(5)


@pytest.mark.parametrize("parsed,truth,expected", [(2, 2, 1.0), (1, 2, 0.0), (-1, 0, 0.0), (0, 0, 1.0)])
def test_accuracy(parsed, truth, expected):
    assert accuracy(parsed, truth) == expected


@pytest.mark.parametrize("parsed,truth,expected", [
    ([6, 9, 15], [6, 9, 15], 1.0),
    ([6, 6, 9], [6, 9, 15], 2 / 3),
    ([], [6, 9, 15], 0.0),
    ([1, 2, 4], [4], 1.0),
    ([1, 2, 3, 4], [4], 0.0),  # only the first 3 count
    ([99, 4], [4, 5], 0.5),
])
def test_hit_rate_at_3(parsed, truth, expected):
    assert hit_rate_at_3(parsed, truth) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("parsed,truth,expected", [
    ([1, 2, 3], [1, 0, 0], 1.0),
    ([2, 1], [1, 0, 0], 1 / L3),
    ([2, 3, 1], [1, 0, 0], 1 / L4),
    ([3, 1, 2], [1, 0.5, 0], (1 / L3 + (2**0.5 - 1) / L4) / (1 + (2**0.5 - 1) / L3)),
    ([0], [0, 0, 1], 1.0),  # id 0 takes the last weight, through negative indexing
    ([0], [1, 0, 0], 0.0),
    ([7, 1], [1, 0, 0], 1 / L3),  # an id past the list has weight 0
    ([2, 3, 1], [1, 0], 0.0),  # the ranking is cut to n items first
    ([], [1, 0.1], 0.0),
    ([1, 2], [0, 0], 0.0),  # IDCG 0 gives 0 (the official code divides by zero)
    ([1, 4, 3, 2, 5], [1, 0.01, 0.1, 1, 0], 1.0),
])
def test_ndcg(parsed, truth, expected):
    assert ndcg(parsed, truth) == pytest.approx(expected, abs=1e-15)


def test_ndcg_leaves_the_truth_unchanged():
    truth = [0, 1, 0.5]
    ndcg([1, 2, 3], truth)
    assert truth == [0, 1, 0.5]


@pytest.mark.parametrize("parsed,truth,expected", [
    (["Tablette ", "asus"], ["tablette"], (1, 1, 0)),
    (["a", "a"], ["a"], (1, 1, 0)),  # fp counts the list, tp the set
    (["nike"], ["Nike"], (1, 0, 0)),  # the truth is lower-cased too
    (["\tnike"], ["nike"], (0, 1, 1)),  # only spaces are stripped
    ([], ["nike", "red"], (0, 0, 2)),
    (["x"], [], (0, 1, 0)),
    (["red", "red shoes"], ["red", "red"], (1, 1, 1)),
])
def test_ner_counts(parsed, truth, expected):
    assert ner_counts(parsed, truth) == expected


@pytest.mark.parametrize("counts,expected", [
    ([(1, 1, 0), (0, 0, 2)], 0.4),  # P = 1/2, R = 1/3
    ([(2, 0, 0)], 1.0),
    ([(0, 3, 1)], 0.0),
    ([(0, 0, 0)], 0.0),  # nothing predicted, nothing expected: 0, where the official code raises
    ([], 0.0),
])
def test_micro_f1(counts, expected):
    assert f1_from_counts(counts) == pytest.approx(expected, abs=1e-15)
    assert aggregate("micro-f1", counts) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("parsed,truth,expected", [
    ("the red shoes", "red shoe", 0.8),  # Porter stemmer: shoes -> shoe; LCS 2 of 3 and 2
    ("red shoe", "red shoe", 1.0),
    ("", "red shoe", 0.0),
    ("comfortable fit", "comfortable", 2 / 3),
    ("とても快適", "とても快適", 0.0),  # rouge-score's tokenizer drops non-ASCII text: the official quirk
])
def test_rougel(parsed, truth, expected):
    assert rougel(parsed, truth) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("parsed,truth,expected", [
    ("spare power source battery", "spare power source battery", 1.0),
    ("Spare Power Source BATTERY", "spare power source battery", 1.0),  # lowercase=True
    ("\n\nspare power source battery\nsecond line", "spare power source battery", 1.0),  # first line only
    ("power source battery", "power source battery", 0.0),  # under 4 words: no 4-grams, so 0
    ("battery power", "power source battery", 0.0),  # corpus BLEU, no effective order
    ("", "power source battery", 0.0),
])
def test_bleu(parsed, truth, expected):
    assert bleu(parsed, truth) == pytest.approx(expected, abs=1e-12)


def test_bleu_equals_a_fresh_corpus_bleu_call():
    hyp, ref = "Fimo soft starter set 12 blocks in many colours", "Fimo Soft Starter Set 12 Blocks Multicolour"
    fresh = sacrebleu.corpus_bleu([hyp], [[ref]], lowercase=True, smooth_method="exp", use_effective_order=False)
    assert bleu(hyp, ref) == fresh.score / 100
    assert 0 < bleu(hyp, ref) < 1


def test_jp_bleu_uses_mecab_tokens():
    ref = "防水 ハイキング バックパック 40L ブラック"
    hyp = "防水ハイキングバックパック 40L 黒"
    fresh = sacrebleu.corpus_bleu([hyp], [[ref]], lowercase=True, tokenize="ja-mecab", use_effective_order=False)
    assert jp_bleu(hyp, ref) == fresh.score / 100
    assert jp_bleu(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert bleu(hyp, ref) != jp_bleu(hyp, ref)


@pytest.mark.parametrize("generation,truths,expected", [
    ([1, 0], [[1, 0]], 1.0),
    ([1, 0], [[-1, 0]], 0.0),  # negative similarity is clipped
    ([1, 0], [[0, 1]], 0.0),
    ([3, 4], [[3, 4]], 1.0),
    ([1, 0], [[1, 0], [0, 1]], 0.5),  # mean over the truth items
    ([1, 0], [[1, 0], [-1, 0]], 0.5),  # each item clipped before the mean
    ([1, 1], [[1, 0]], 2 ** -0.5),
])
def test_cosine_score(generation, truths, expected):
    vectors = [np.array(t, dtype=np.float32) for t in truths]
    assert cosine_score(np.array(generation, dtype=np.float32), vectors) == pytest.approx(expected, abs=1e-6)


def test_unknown_metric_suggests_the_closest():
    with pytest.raises(ConfigError, match="unknown metric 'ndgc'; did you mean 'ndcg'\\? known: accuracy"):
        get_metric("ndgc")


def test_mean_aggregation():
    assert aggregate("mean", [1.0, 0.0, 0.5]) == 0.5
