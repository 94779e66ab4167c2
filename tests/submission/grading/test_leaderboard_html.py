"""leaderboard.html: the rows, ranks, scores, verdicts and times as the page shows them, hostile names kept
as text, the workers' staging folders skipped, and the page opened in headless Chromium."""

import json
import shutil

import pytest
from chromium import Chromium
from test_leaderboard import graded

from submission.cli.leaderboard import main as leaderboard_main
from submission.grading.leaderboard import find_score_files, load_run, merge
from submission.grading.leaderboard_html import to_html
from submission.scoring.data import ALL_AROUND, TRACKS

CONCEPTS, REASONING, BEHAVIOR, LINGUAL = TRACKS
HOSTILE = '<img src="https://example.com/x.png"><script>console.error("injected")</script>'


def board(root):
    graded(root, "team-a", ALL_AROUND, 0.61, wall_s=120, graded_at="2024-07-02T10:00:00Z")
    graded(root, "team-a", CONCEPTS, 0.70, wall_s=60, graded_at="2024-07-01T09:00:00Z")
    graded(root, "team-b", ALL_AROUND, 0.65, authors=("b", "c"), graded_at="2024-07-03T11:30:00Z")
    graded(root, HOSTILE.replace("/", "_"), ALL_AROUND, 0.9, status="timeout", authors=(HOSTILE,))
    return root


def test_the_page_shows_each_row_ranked_with_its_scores_verdicts_time_and_grading_date(tmp_path):
    rows = merge([load_run(p) for p in find_score_files([board(tmp_path)])])
    page = to_html(rows, generated="2024-07-04 00:00")
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    assert body.count("<tr>") == 3
    first, second, third = body.split("<tr>")[1:]
    assert '<td class="num">1</td>' in first and ">team-b<" in first and "b, c" in first and ">0.6500<" in first
    assert ">team-a<" in second and ">0.7000<" in second and ">0.6100<" in second and "3.0 min" in second
    assert "2024-07-02 10:00:00" in second  # its latest grading
    assert 'title="ok; graded 2024-07-01T09:00:00Z"' in second  # each cell: its verdict and when
    assert ">—<" in third and "timeout (all-around)" in third and 'class="fail"' in third


def test_names_and_authors_stay_text(tmp_path):
    page = to_html(merge([load_run(p) for p in find_score_files([board(tmp_path)])]))
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;console.error" in page and "&lt;img src=&#34;https://example.com" in page


def test_the_command_writes_the_page_from_a_workers_results_folder_without_its_staging(tmp_path, capsys):
    results = board(tmp_path / "results")
    staged = tmp_path / "results" / ".staging" / "grade-1"
    staged.mkdir(parents=True)
    shutil.copy(next((results / "team-b").rglob("scores.json")), staged / "scores.json")
    scores = json.loads((staged / "scores.json").read_text())
    (staged / "scores.json").write_text(json.dumps({**scores, "submission": "half-written"}))
    assert leaderboard_main(["--results", str(results), "--output-dir", str(tmp_path / "out")], "leaderboard") == 0
    page = (tmp_path / "out" / "leaderboard.html").read_text()
    assert "half-written" not in page and "half-written" not in capsys.readouterr().out
    assert page.count("<tr>") == 4  # the header and three rows
    with pytest.raises(SystemExit):
        leaderboard_main([], "leaderboard")  # neither folders nor --results


def test_the_page_opens_in_headless_chromium_without_problems(tmp_path):
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    rows = merge([load_run(p) for p in find_score_files([board(tmp_path / "results")])])
    (tmp_path / "leaderboard.html").write_text(to_html(rows), encoding="utf-8")
    browser = Chromium(executable)
    try:
        session = browser.open((tmp_path / "leaderboard.html").as_uri())
        assert browser.evaluate(session, "document.querySelectorAll('#leaderboard tbody tr').length") == 3
        names = browser.evaluate(session, "[...document.querySelectorAll('#leaderboard .submission')]"
                                          ".map(e => e.textContent)")
        assert names == ["team-b", "team-a", HOSTILE.replace("/", "_")]  # the hostile name shown as its text
        headers = browser.evaluate(session, "[...document.querySelectorAll('#leaderboard th')].map(e => e.textContent)")
        assert headers[:2] == ["#", "team"] and headers[-3:] == ["verdict", "time", "graded (UTC)"]
        assert len(headers) == 2 + len(TRACKS) + 1 + 3
        assert browser.evaluate(session, "document.querySelector('#leaderboard tbody tr td.num:nth-child(7)')"
                                         ".textContent") == "0.6500"
        assert browser.problems(session) == []
    finally:
        browser.close()
