"""Run comparison: identical runs, a real change, flips, refusals, partial overlap, the command line."""

import json
import shutil

import pytest
from test_html import make_run

from benchmarks.reference_grader import perfect_output
from submission import cli
from submission.reports.compare import COMPARE_FILE
from submission.reports.comparison import compare_runs
from submission.reports.intervals import is_right
from submission.reports.run_view import load_run_dir
from submission.scoring.data import load_questions


def main_compare(argv):
    """``python -m submission compare ...`` in this process (kit errors: exit status 2 in ``cli.main``)."""
    return cli.main(["compare", *argv])


@pytest.fixture
def runs(tmp_path, data_file):
    make_run(tmp_path / "a", data_file)
    make_run(tmp_path / "b", data_file, seed=1)
    return tmp_path / "a", tmp_path / "b"


def test_identical_runs_give_zero_deltas_with_intervals_containing_zero(runs):
    a = load_run_dir(runs[0])
    rc = compare_runs(a, load_run_dir(runs[0]), seed=3)
    r = rc.result
    for d in [r.all_around, r.task_mean, *r.tracks.values(), *r.tasks.values()]:
        assert d.delta == 0 and d.low <= 0 <= d.high and d.p_value == 1
    assert rc.fixed == [] and rc.broken == [] and rc.notes == ()
    assert r.all_around.a == pytest.approx(a.results["all_around"], abs=1e-12)


def test_deltas_and_flips_match_the_two_runs_own_results(runs):
    a, b = load_run_dir(runs[0]), load_run_dir(runs[1])
    rc = compare_runs(a, b, seed=0)
    for name, d in rc.result.tasks.items():
        own = b.results["tasks"][name]["score"] - a.results["tasks"][name]["score"]
        assert d.delta == pytest.approx(own, abs=1e-12)
    assert rc.result.all_around.delta == pytest.approx(b.results["all_around"] - a.results["all_around"], abs=1e-12)
    fixed = [row for row in a.records if not is_right(a.records[row]["score"]) and is_right(b.records[row]["score"])]
    broken = [row for row in a.records if is_right(a.records[row]["score"]) and not is_right(b.records[row]["score"])]
    assert sorted(f.row for f in rc.fixed) == sorted(fixed) and sorted(f.row for f in rc.broken) == sorted(broken)
    assert fixed and broken  # the two mixes differ both ways


def test_a_clearly_better_run_is_reported_better(tmp_path, data_file):
    questions = load_questions(data_file, require_truth=True)
    make_run(tmp_path / "a", data_file, outputs={q.row: "nothing useful" for q in questions})
    make_run(tmp_path / "b", data_file, outputs={q.row: perfect_output(q) for q in questions})
    rc = compare_runs(load_run_dir(tmp_path / "a"), load_run_dir(tmp_path / "b"))
    assert rc.result.all_around.low > 0 and rc.result.all_around.p_value < 0.01
    assert len(rc.fixed) > len(questions) / 2 and rc.broken == []


def test_the_command_prints_a_table_and_writes_a_self_contained_page(runs, tmp_path, capsys):
    output = tmp_path / "out" / "cmp.html"
    assert main_compare([str(runs[0]), str(runs[1]), "--output", str(output), "--resamples", "200", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    assert "all-around" in printed and "95% interval" in printed and "200 paired bootstrap resamples, seed 4" in printed
    assert "wrong in A and right in B" in printed and f"wrote {output}" in printed
    page = output.read_text(encoding="utf-8")
    assert 'id="all-around-delta"' in page and "data:image/png;base64," in page and "<script" not in page
    assert "&lt;script&gt;" in page  # flipped generation outputs are shown escaped


def test_the_default_output_is_compare_html_in_run_bs_folder_never_the_current_one(runs, tmp_path, monkeypatch,
                                                                                   capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main_compare([str(runs[0]), str(runs[1]), "--resamples", "50"]) == 0
    assert (runs[1] / COMPARE_FILE).is_file() and not (elsewhere / COMPARE_FILE).exists()
    assert f"wrote {runs[1] / COMPARE_FILE}" in capsys.readouterr().out


def test_runs_on_different_data_files_are_refused_with_a_clear_message(runs, tmp_path, data_file, capsys):
    other = tmp_path / "other.json"
    lines = data_file.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["input_field"] += " (edited)"
    other.write_text("\n".join([json.dumps(record)] + lines[1:]) + "\n", encoding="utf-8")
    make_run(tmp_path / "c", other)
    assert main_compare([str(runs[0]), str(tmp_path / "c"), "--output", str(tmp_path / "x.html")]) == 2
    error = capsys.readouterr().err
    assert "different data files" in error and str(data_file) in error and str(other) in error
    assert not (tmp_path / "x.html").exists()


def test_the_same_data_at_another_path_is_accepted(runs, tmp_path, data_file):
    copy = tmp_path / "copy" / "development.json"
    copy.parent.mkdir()
    shutil.copy(data_file, copy)
    make_run(tmp_path / "c", copy)
    assert compare_runs(load_run_dir(runs[0]), load_run_dir(tmp_path / "c")).result.all_around.delta == 0


def test_a_missing_data_file_asks_for_data_and_then_works(runs, tmp_path, data_file, capsys):
    results = json.loads((runs[1] / "results.json").read_text())
    results["data_file"] = "/grader/data/development.json"
    (runs[1] / "results.json").write_text(json.dumps(results))
    assert main_compare([str(runs[0]), str(runs[1]), "--output", str(tmp_path / "x.html")]) == 2
    assert "/grader/data/development.json" in capsys.readouterr().err
    assert main_compare([str(runs[0]), str(runs[1]), "--output", str(tmp_path / "x.html"),
                         "--data", str(data_file)]) == 0


def test_runs_on_different_question_subsets_are_paired_on_the_shared_ones(tmp_path, data_file):
    questions = load_questions(data_file, require_truth=True)
    make_run(tmp_path / "a", data_file)
    make_run(tmp_path / "b", data_file, outputs={q.row: perfect_output(q) for q in questions[:30]})
    rc = compare_runs(load_run_dir(tmp_path / "a"), load_run_dir(tmp_path / "b"))
    assert sum(rc.task_n.values()) == 30 and "the 30 questions both answered" in rc.notes[0]


def test_bad_arguments_exit_2_naming_the_program(runs, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main_compare([str(runs[0]), str(runs[1]), "--resamples", "0"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: python -m submission compare") and "--resamples must be at least 1" in error
