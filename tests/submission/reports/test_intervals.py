"""Bootstrap maths: hand-computed cases, a brute-force resampler, exact enumeration, pairing, speed."""

import itertools
import json

import numpy as np
import pytest
from kit_paths import SAMPLE_DATA

from benchmarks.reference_grader import TRICKY, perfect_output
from submission.errors import DataError
from submission.reports.intervals import (
    TaskSamples,
    bootstrap,
    combine,
    draw_indices,
    format_p,
    is_right,
    micro_f1,
    paired_bootstrap,
    paired_p_value,
    percentile_interval,
    point_estimates,
    replicates,
    samples_from_records,
    samples_from_result,
    task_scores,
)
from submission.reports.results import results_dict, scored_records
from submission.scoring.data import TRACKS, load_questions
from submission.scoring.metrics import aggregate, f1_from_counts
from submission.scoring.scorer import score_outputs

T1, T2, T3, T4 = TRACKS


def mean_task(name, track, values, first_row=0):
    return TaskSamples(name, track, "mean", tuple(range(first_row, first_row + len(values))),
                       np.array(values, dtype=np.float64))


def f1_task(name, track, counts, first_row=0):
    return TaskSamples(name, track, "micro-f1", tuple(range(first_row, first_row + len(counts))),
                       np.array(counts, dtype=np.int64))


# --- hand-computed cases ----------------------------------------------------------------------------


@pytest.mark.parametrize("counts", [
    [(1, 0, 1)], [(0, 2, 0)], [(3, 0, 3)], [(3, 3, 1)], [(6, 3, 0)], [(0, 0, 0)], [(2, 1, 0), (0, 0, 4)],
    [(5, 0, 0)],
])
def test_micro_f1_equals_the_official_formula(counts):
    summed = np.array(counts).sum(axis=0)
    assert float(micro_f1(summed)) == pytest.approx(f1_from_counts(counts), abs=1e-15)


def test_task_scores_on_given_indices_by_hand():
    # mean task [0, 1, 1, 0.5]: draws (0,0,0,0) -> 0; (1,2,3,3) -> (1+1+.5+.5)/4; (0,1,2,3) -> 2.5/4
    scores = task_scores(np.array([0, 1, 1, 0.5]), "mean", np.array([[0, 0, 0, 0], [1, 2, 3, 3], [0, 1, 2, 3]]))
    assert scores.tolist() == [0.0, 0.75, 0.625]
    # micro F1 counts: draws sum to (3,0,3) -> 6/9, (3,3,1) -> 6/10, (6,3,0) -> 12/15
    counts = np.array([(1, 0, 1), (0, 2, 0), (2, 1, 0)])
    scores = task_scores(counts, "micro-f1", np.array([[0, 0, 0], [0, 1, 2], [2, 2, 2]]))
    assert scores == pytest.approx([6 / 9, 0.6, 0.8], abs=1e-15)


def test_combine_averages_tasks_into_tracks_and_tracks_into_all_around():
    levels = combine({"a": np.array([0.0, 1.0]), "b": np.array([1.0, 1.0]), "c": np.array([0.5, 0.0])},
                     {"a": T1, "b": T1, "c": T3})
    assert levels.tracks[T1].tolist() == [0.5, 1.0] and levels.tracks[T3].tolist() == [0.5, 0.0]
    assert levels.all_around.tolist() == [0.5, 0.5]  # mean of two tracks, not of three tasks
    assert levels.task_mean.tolist() == pytest.approx([0.5, 2 / 3])
    assert list(levels.tracks) == [T1, T3]


def test_percentile_interval_by_hand():
    assert percentile_interval(np.arange(101.0)) == (2.5, 97.5)
    assert percentile_interval(np.array([0.0, 1.0])) == pytest.approx((0.025, 0.975))
    assert percentile_interval(np.arange(101.0), confidence=0.9) == pytest.approx((5.0, 95.0))


@pytest.mark.parametrize("observed, deltas, expected", [
    (0.1, [-0.1, 0.0, 0.2, 0.3], 1.0),    # 2 of 4 at or below 0: 2 * 2 / 4, capped at 1
    (0.1, [0.1] * 99 + [-0.1], 0.02),      # 1 of 100 below 0
    (0.1, [0.1] * 99 + [0.0], 0.02),       # a tie at 0 counts against the change
    (0.1, [0.1] * 100, 0.0),               # none crossed: shown as <0.02
    (-0.1, [-0.1] * 95 + [0.2] * 5, 0.1),  # negative change: the share at or above 0
    (0.0, [0.5, -0.5], 1.0),
])
def test_paired_p_value_by_hand(observed, deltas, expected):
    assert paired_p_value(observed, np.array(deltas)) == pytest.approx(expected)


def test_format_p_names_the_resolution_when_nothing_crossed():
    assert format_p(0.0, 1000) == "<0.002" and format_p(0.0341, 1000) == "0.034"


@pytest.mark.parametrize("score, right", [(1.0, True), (0.0, False), (0.5, True), (0.4999, False), (2 / 3, True)])
def test_right_means_at_least_half_marks(score, right):
    assert is_right(score) is right


def test_a_one_question_task_and_a_constant_task_have_no_width():
    tasks = [mean_task("one", T1, [0.7]), mean_task("flat", T2, [1.0, 1.0, 1.0], first_row=1)]
    result = bootstrap(tasks, seed=3, resamples=200)
    assert (result.tasks["one"].low, result.tasks["one"].high) == (0.7, 0.7)
    assert (result.tasks["flat"].low, result.tasks["flat"].high) == (1.0, 1.0)
    assert result.all_around.estimate == pytest.approx(0.85)


# --- against a brute-force resampler and exact enumeration ------------------------------------------


def small_set():
    return [
        mean_task("mc", T1, [1, 0, 1, 1, 0]),
        mean_task("gen", T1, [0.2, 0.9, 0.4], first_row=5),
        f1_task("ner", T2, [(1, 0, 1), (0, 2, 0), (2, 1, 0), (0, 0, 3)], first_row=8),
        mean_task("rank", T3, [0.3, 0.8], first_row=12),
    ]


def brute_force(tasks, indices_chunks):
    """One resample at a time with the kit's official aggregate() and plain Python means."""
    all_around = []
    for chunk in indices_chunks:
        for b in range(len(next(iter(chunk.values())))):
            scores = {}
            for task in tasks:
                drawn = [task.values[i] for i in chunk[task.task_name][b]]
                values = [tuple(int(x) for x in d) for d in drawn] if task.aggregation == "micro-f1" else drawn
                scores[task.task_name] = aggregate(task.aggregation, values)
            tracks = {}
            for task in tasks:
                tracks.setdefault(task.track, []).append(scores[task.task_name])
            all_around.append(sum(sum(v) / len(v) for v in tracks.values()) / len(tracks))
    return np.array(all_around)


def test_vectorised_bootstrap_equals_a_brute_force_resampler_on_the_same_draws():
    tasks = small_set()
    expected = brute_force(tasks, draw_indices(tasks, np.random.default_rng(11), 300))
    result = bootstrap(tasks, seed=11, resamples=300)
    assert (result.all_around.low, result.all_around.high) == pytest.approx(percentile_interval(expected), abs=1e-12)


def test_bootstrap_matches_the_exact_bootstrap_distribution_by_enumeration():
    tasks = [mean_task("gen", T1, [0.1, 0.5, 0.9, 0.3]), f1_task("ner", T2, [(1, 0, 1), (0, 2, 0), (2, 0, 1)], 4)]
    exact = []  # all 4^4 x 3^3 = 6,912 equally likely resamples
    for draw_gen in itertools.product(range(4), repeat=4):
        gen = np.mean([tasks[0].values[i] for i in draw_gen])
        for draw_ner in itertools.product(range(3), repeat=3):
            exact.append((gen + f1_from_counts([tuple(tasks[1].values[i]) for i in draw_ner])) / 2)
    exact = np.sort(exact)
    (levels,) = replicates([tasks], seed=5, resamples=20000)
    boot = np.sort(levels.all_around)
    grid = np.linspace(0, 1, 201)

    def cdf(values):
        return np.searchsorted(values, grid, "right") / len(values)

    distance = np.abs(cdf(exact) - cdf(boot))
    assert distance.max() < 0.015  # the resampled distribution is the exact one, up to sampling noise
    result = bootstrap(tasks, seed=5, resamples=20000)

    def q(p):
        return np.quantile(exact, p, method="inverted_cdf")

    assert q(0.02) <= result.all_around.low <= q(0.03) and q(0.97) <= result.all_around.high <= q(0.98)
    assert q(0.02) < q(0.97)
    # the full set: gen 0.45; ner counts (3, 2, 2) -> P 3/5, R 3/5, F1 0.6
    assert result.all_around.estimate == pytest.approx((0.45 + 0.6) / 2, abs=1e-15)


def test_same_seed_same_intervals_and_the_global_rng_is_untouched():
    tasks = small_set()
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    first, second = bootstrap(tasks, seed=4), bootstrap(tasks, seed=4)
    assert first == second
    assert np.array_equal(np.random.get_state()[1], state)
    assert bootstrap(tasks, seed=5).all_around != first.all_around


# --- real scoring results ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored():
    questions = [q for q in load_questions(SAMPLE_DATA, require_truth=True) if "sent-transformer" not in q.metric]
    outputs = {q.row: perfect_output(q) if q.row % 3 else TRICKY[q.task_type][q.row % 6] for q in questions}
    return questions, outputs, score_outputs(questions, outputs)


def test_point_estimates_equal_the_official_scores(scored):
    questions, _, result = scored
    point = point_estimates(samples_from_result(questions, result))
    assert {n: float(v) for n, v in point.tasks.items()} == pytest.approx({n: t.score for n, t in result.tasks.items()},
                                                                         abs=1e-12)
    assert {t: float(v) for t, v in point.tracks.items()} == pytest.approx(result.tracks, abs=1e-12)
    assert float(point.all_around) == pytest.approx(result.all_around, abs=1e-12)
    assert float(point.task_mean) == pytest.approx(result.task_mean, abs=1e-12)
    assert any(t.aggregation == "micro-f1" for t in samples_from_result(questions, result))


def test_saved_predictions_give_the_same_intervals_as_the_result(scored):
    questions, outputs, result = scored
    records = json.loads(json.dumps(scored_records(questions, outputs, result, {})))
    from_records = samples_from_records(records, results_dict(result, {})["tasks"], "predictions.jsonl")
    assert bootstrap(from_records, seed=2) == bootstrap(samples_from_result(questions, result), seed=2)
    intervals = bootstrap(from_records, seed=2)
    assert intervals.all_around.low <= result.all_around <= intervals.all_around.high
    assert set(intervals.to_dict()["tasks"]) == set(result.tasks)


def test_unscored_or_countless_predictions_are_refused_with_the_fix(scored):
    questions, outputs, result = scored
    records = scored_records(questions, outputs, result, {})
    tasks = results_dict(result, {})["tasks"]
    with pytest.raises(DataError, match="not scored.*--predictions"):
        samples_from_records([{"row": r["row"], "output": r["output"]} for r in records], tasks, "p.jsonl")
    stripped = [{k: v for k, v in r.items() if k != "tp_fp_fn"} for r in records]
    with pytest.raises(DataError, match="tp_fp_fn"):
        samples_from_records(stripped, tasks, "p.jsonl")
    with pytest.raises(DataError, match="different runs"):
        samples_from_records(records, {k: v for k, v in list(tasks.items())[1:]}, "p.jsonl")


# --- paired -----------------------------------------------------------------------------------------


def test_identical_runs_have_zero_delta_with_an_interval_containing_zero():
    tasks = small_set()
    comparison = paired_bootstrap(tasks, tasks, seed=0)
    for d in [comparison.all_around, comparison.task_mean, *comparison.tracks.values(), *comparison.tasks.values()]:
        assert d.delta == 0 and d.low <= 0 <= d.high and d.p_value == 1.0


def test_a_clearly_better_run_is_detected_and_pairing_narrows_the_interval():
    rng = np.random.default_rng(0)
    a_values = rng.random(400)
    a = [mean_task("t", T1, a_values)]
    b = [mean_task("t", T1, np.minimum(a_values + 0.05, 1.0))]  # every question a little better
    comparison = paired_bootstrap(a, b, seed=1)
    assert comparison.all_around.low > 0 and comparison.all_around.p_value == 0.0
    unpaired_width = 2 * 1.96 * a_values.std() * np.sqrt(2 / 400)
    assert comparison.all_around.high - comparison.all_around.low < unpaired_width / 5


def test_paired_runs_must_share_tasks_and_rows():
    with pytest.raises(ValueError, match="same tasks, rows"):
        paired_bootstrap([mean_task("t", T1, [1, 0])], [mean_task("t", T1, [1, 0], first_row=5)])
