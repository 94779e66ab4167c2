"""report.html and scores.png: content, run folders with and without harness stats, errors, a real browser."""

import json
import re
import shutil

import pytest
from chromium import Chromium
from kit_paths import SAMPLE_DATA

from benchmarks.reference_grader import TRICKY, perfect_output
from submission import cli
from submission.errors import DataError
from submission.jsonio import write_json
from submission.reports.html import (
    CHART_FILE,
    REPORT_FILE,
    points_lost,
    write_reports,
    write_reports_from_run_dir,
)
from submission.reports.pages import excerpt
from submission.reports.results import results_dict, scored_records
from submission.reports.run_view import load_run_dir
from submission.reports.table import format_table
from submission.scoring.data import load_questions

INJECTED = '</pre><script>console.error("injected")</script><img src="https://example.com/x.png">'


def mixed_outputs(questions, seed=0):
    """Right on two thirds of the questions, tricky or injected text on the rest; ``seed`` moves the mix."""
    outputs = {}
    for q in questions:
        if (q.row + seed) % 3:
            outputs[q.row] = perfect_output(q)
        else:
            outputs[q.row] = INJECTED if q.task_type == "generation" else TRICKY[q.task_type][q.row % 6]
    return outputs


def make_run(folder, data_file, outputs=None, meta=None, with_batches=True, seed=0):
    """A run folder as local_evaluation.py writes it: results.json and scored predictions.jsonl."""
    from submission.scoring.scorer import score_outputs

    folder.mkdir(parents=True, exist_ok=True)
    questions = load_questions(data_file, require_truth=True)
    outputs = outputs or mixed_outputs(questions, seed)
    questions = [q for q in questions if q.row in outputs]
    result = score_outputs(questions, outputs)
    extra = {q.row: {"batch": q.row // 4, "latency_s": 0.5 + (q.row // 4 == 3) * 9.0} for q in questions} \
        if with_batches else {}
    records = scored_records(questions, outputs, result, extra)
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                              encoding="utf-8")
    results = results_dict(result, {"data_file": str(data_file), "seed": 0, "model": "tests:Fixed", **(meta or {})})
    write_json(folder / "results.json", results)
    return questions, result, results


@pytest.fixture
def run(tmp_path, data_file):
    folder = tmp_path / "run"
    questions, result, results = make_run(folder, data_file)
    return folder, questions, result, results


def test_report_from_a_run_folder_shows_scores_intervals_tasks_time_and_worst_examples(run):
    folder, _, result, results = run
    intervals = write_reports_from_run_dir(folder)
    page = (folder / REPORT_FILE).read_text(encoding="utf-8")
    assert (folder / CHART_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    low, high = intervals["all_around"]
    assert low <= result.all_around <= high and intervals["resamples"] == 1000 and intervals["seed"] == 0
    assert f'id="all-around">{result.all_around:.4f}<' in page
    assert f"[{low:.4f}, {high:.4f}]" in page
    for name in result.tasks:
        assert f"<td>{name}</td>" in page and f"[{intervals['tasks'][name][0]:.4f}, " in page
    assert "Slowest batches" in page and "no time budget recorded" in page
    assert "10.5 s" not in page and "9.5 s" in page  # batch 3 (latency 9.5 s) heads the fallback table
    assert "Worst-scoring examples" in page and "&lt;script&gt;console.error" in page
    assert "<script" not in page and "&lt;img src=&#34;https://example.com" in page  # model text stays text
    assert re.findall(r'(?:src|href)="(?!data:)', page) == [] and "url(" not in page  # nothing to fetch


def test_in_process_and_run_folder_reports_agree(run, tmp_path):
    folder, questions, result, results = run
    in_process = write_reports(folder, questions, result, results, seed=7)
    assert in_process == write_reports_from_run_dir(folder, seed=7)
    assert write_reports_from_run_dir(folder)["seed"] == 0  # defaults to the run's own seed
    assert (folder / REPORT_FILE).is_file() and (folder / CHART_FILE).is_file()


def test_harness_stats_and_a_partial_verdict_are_shown_when_results_json_has_them(tmp_path, data_file):
    questions = load_questions(data_file, require_truth=True)
    outputs = {q.row: perfect_output(q) for q in questions[:20]}
    harness = {
        "verdict": {"status": "timeout", "detail": "batch 4 (4 prompts) took 52.0 s, limit 40 s"},
        "n_answered": 20, "n_questions": len(questions),
        "budget": {"track": "amazon-kdd-cup-24-all-around", "budget_s": 8400.0, "elapsed_s": 420.0,
                   "projected_total_s": 9000.0, "within_budget": False},
        "timings": {"latency": {"batches": 5, "batch_s": {"p50": 2.0, "p90": 30.0, "p99": 52.0, "max": 52.0},
                                "per_question_s": {"p50": 0.5, "p90": 7.5, "p99": 13.0, "max": 13.0}},
                    "slowest_batches": [{"batch": 4, "prompts": 4, "latency_s": 52.0, "limit_s": 40.0,
                                         "share_of_limit": 1.3, "rows": [16, 17, 18, 19]}],
                    "tracks": {"amazon-kdd-cup-24-user-behavior-alignment":
                               {"questions": 20, "predict_s": 420.0, "budget_s": 1800.0}}},
    }
    make_run(tmp_path, data_file, outputs=outputs, meta=harness)
    write_reports_from_run_dir(tmp_path)
    page = (tmp_path / REPORT_FILE).read_text(encoding="utf-8")
    assert "partial results" in page and "20 of 50 questions answered" in page and "took 52.0 s" in page
    assert "used 420.0 s of 140.0 min (5.0%)" in page and "150.0 min (107.1%)" in page and "over budget" in page
    assert "130.0%" in page and "52.0 s" in page and "Time per track" in page and "23.3%" in page


def test_without_the_data_file_the_report_keeps_every_score_and_says_why(run, data_file, tmp_path):
    folder, _, result, _ = run
    results = json.loads((folder / "results.json").read_text())
    results["data_file"] = "/container/data/development.json"
    (folder / "results.json").write_text(json.dumps(results))
    intervals = write_reports_from_run_dir(folder)
    page = (folder / REPORT_FILE).read_text(encoding="utf-8")
    assert "/container/data/development.json" in page and "prompts and truths are not shown" in page
    assert f'id="all-around">{result.all_around:.4f}<' in page
    assert intervals == write_reports_from_run_dir(folder, data_file=data_file)


def test_a_data_file_the_predictions_were_not_made_on_is_refused(run):
    folder = run[0]
    with pytest.raises(DataError, match="another data file"):
        load_run_dir(folder, data_file=SAMPLE_DATA)  # the full split: its rows hold other tasks


def test_a_folder_without_results_or_scores_is_refused_with_the_fix(tmp_path, run):
    with pytest.raises(DataError, match="results.json and predictions.jsonl"):
        write_reports_from_run_dir(tmp_path / "nothing")
    folder = run[0]
    lines = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    (folder / "predictions.jsonl").write_text("".join(json.dumps({"row": r["row"], "output": r["output"]}) + "\n"
                                                      for r in lines))
    with pytest.raises(DataError, match="not scored"):
        write_reports_from_run_dir(folder)


def test_the_report_command_writes_both_files_and_prints_the_interval(run, tmp_path, capsys):
    folder, _, result, _ = run
    assert cli.main(["report", str(folder), "--resamples", "100", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"all-around score: {result.all_around:.4f}  95% interval [" in printed
    assert str(folder / REPORT_FILE) in printed
    assert (folder / CHART_FILE).is_file()
    assert cli.main(["report", str(tmp_path / "missing")]) == 2 and "results.json" in capsys.readouterr().err


def test_terminal_table_shows_intervals_and_is_unchanged_without_them(run):
    folder, _, result, _ = run
    intervals = write_reports_from_run_dir(folder)
    plain, with_ci = format_table(result), format_table(result, intervals)
    assert "interval" not in plain
    low, high = intervals["all_around"]
    assert f"all-around score: {result.all_around:.4f}  95% interval [{low:.4f}, {high:.4f}]" in with_ci
    assert with_ci.count("[") >= len(result.tasks) + len(result.tracks) + 1
    assert with_ci.splitlines()[-1] == plain.splitlines()[-1]  # the parse-failure report is unchanged


def test_points_lost_add_up_to_what_the_all_around_score_misses(run):
    results = run[3]
    assert sum(points_lost(results).values()) == pytest.approx(1 - results["all_around"])


def test_excerpt_keeps_the_start_and_the_end_of_long_prompts():
    text = "HEAD" + "x" * 5000 + "QUESTION?"
    cut = excerpt(text, 10, 9)
    assert cut.startswith("HEADxxxxxx") and cut.endswith("QUESTION?") and "[... 4,994 characters left out ...]" in cut
    assert excerpt("short", 10, 9) == "short" and not excerpt(text, 10, 0).endswith("?")


# --- a real browser ---------------------------------------------------------------------------------

def test_report_and_comparison_open_in_headless_chromium_without_console_errors(tmp_path, data_file):
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    _, result, _ = make_run(tmp_path / "a", data_file)
    make_run(tmp_path / "b", data_file, seed=1)
    write_reports_from_run_dir(tmp_path / "a")
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--output",
                     str(tmp_path / "compare.html")]) == 0
    bad = tmp_path / "bad.html"  # the checks below must be able to fail
    bad.write_text(f"<!DOCTYPE html><html><body><p>{INJECTED}</p><script>missing()</script></body></html>")
    browser = Chromium(executable)
    try:
        report = browser.open((tmp_path / "a" / REPORT_FILE).as_uri())
        shown = browser.evaluate(report, "document.getElementById('all-around').textContent")
        assert shown == f"{result.all_around:.4f}"
        assert browser.evaluate(report, "document.getElementById('score-chart').naturalWidth") > 500
        assert browser.evaluate(report, "document.querySelectorAll('#task-table tbody tr').length") == len(result.tasks)
        assert browser.problems(report) == []
        compare = browser.open((tmp_path / "compare.html").as_uri())
        delta = browser.evaluate(compare, "document.getElementById('all-around-delta').textContent")
        assert re.fullmatch(r"[+-]\d\.\d{4}", delta)
        assert browser.evaluate(compare, "document.getElementById('delta-chart').naturalWidth") > 500
        assert browser.problems(compare) == []
        control = browser.open(bad.as_uri())
        problems = "\n".join(browser.problems(control))
        assert "injected" in problems and "example.com" in problems and "exception" in problems
    finally:
        browser.close()
