"""Merging graded runs into a leaderboard: hand-made scores.json files and the rows they must give."""

import json

import pytest

from submission import cli
from submission.errors import DataError
from submission.grading.leaderboard import (
    find_score_files,
    load_run,
    merge,
    to_csv,
    to_markdown,
)
from submission.scoring.data import ALL_AROUND, TRACKS

CONCEPTS, REASONING, BEHAVIOR, LINGUAL = TRACKS


def graded(root, submission, track, score, status="ok", wall_s=60.0, graded_at="2024-07-01T00:00:00Z", authors=("a",)):
    folder = root / submission / track.replace("amazon-kdd-cup-24-", "") / graded_at.replace(":", "")
    folder.mkdir(parents=True)
    scores = {"format": 1, "submission": submission, "authors": list(authors), "track": track,
              "verdict": {"status": status, "detail": "..."}, "score": score if status == "ok" else None,
              "partial_score": score, "wall_s": wall_s, "graded_at": graded_at}
    (folder / "scores.json").write_text(json.dumps(scores))
    return folder


def rows_of(root):
    return merge([load_run(p) for p in find_score_files([root])])


def test_rows_rank_by_all_around_then_track_mean(tmp_path):
    graded(tmp_path, "team-a", ALL_AROUND, 0.60)
    graded(tmp_path, "team-a", CONCEPTS, 0.70, wall_s=30)
    graded(tmp_path, "team-b", ALL_AROUND, 0.65, authors=("b", "c"))
    graded(tmp_path, "team-c", REASONING, 0.90)
    graded(tmp_path, "team-d", REASONING, 0.40)
    rows = rows_of(tmp_path)
    assert [r.submission for r in rows] == ["team-b", "team-a", "team-c", "team-d"]
    a = rows[1]
    assert a.scores == {ALL_AROUND: 0.60, CONCEPTS: 0.70} and a.wall_s == 90 and a.verdict == "ok"
    assert rows[0].authors == ("b", "c")


def test_a_failed_run_scores_nothing_and_names_its_verdict(tmp_path):
    graded(tmp_path, "team-a", ALL_AROUND, 0.9, status="timeout")
    graded(tmp_path, "team-a", LINGUAL, 0.5)
    graded(tmp_path, "team-b", ALL_AROUND, 0.1)
    rows = rows_of(tmp_path)
    assert [r.submission for r in rows] == ["team-b", "team-a"]
    assert rows[1].scores[ALL_AROUND] is None and rows[1].verdict == "timeout (all-around)"
    markdown = to_markdown(rows)
    assert "| 2 | team-a | a |  |  |  | 0.5000 | — | timeout (all-around) | 2.0 min |" in markdown


def test_the_later_grading_of_a_track_counts(tmp_path):
    graded(tmp_path, "team-a", BEHAVIOR, 0.2, graded_at="2024-07-01T00:00:00Z")
    graded(tmp_path, "team-a", BEHAVIOR, 0.3, graded_at="2024-07-02T00:00:00Z")
    (row,) = rows_of(tmp_path)
    assert row.scores == {BEHAVIOR: 0.3} and row.wall_s == 60


def test_csv_has_one_column_per_track_and_verdict(tmp_path):
    graded(tmp_path, "team-a", ALL_AROUND, 0.25)
    lines = to_csv(rows_of(tmp_path)).splitlines()
    assert lines[0] == ("rank,submission,authors," + ",".join((*TRACKS, ALL_AROUND)) + ",verdict:understanding-"
                        "shopping-concepts,verdict:shopping-knowledge-reasoning,verdict:user-behavior-alignment,"
                        "verdict:multi-lingual-abilities,verdict:all-around,wall_s")
    assert lines[1] == "1,team-a,a,,,,,0.250000,,,,,ok,60.000"


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="no scores.json under"):
        find_score_files([tmp_path])
    (tmp_path / "scores.json").write_text("{}")
    with pytest.raises(DataError, match="not a scores.json written by"):
        load_run(tmp_path / "scores.json")
    with pytest.raises(DataError, match="no such file or folder"):
        find_score_files([tmp_path / "absent"])


def test_the_command_writes_markdown_and_csv(tmp_path, capsys):
    graded(tmp_path / "graded", "team-a", ALL_AROUND, 0.25)
    assert cli.main(["leaderboard", str(tmp_path / "graded"), "--output-dir", str(tmp_path / "board")]) == 0
    assert "| 1 | team-a | a |" in capsys.readouterr().out
    assert (tmp_path / "board" / "leaderboard.csv").read_text().startswith("rank,")
    assert cli.main(["leaderboard", str(tmp_path / "nothing")]) == 2
    assert "error: " in capsys.readouterr().err
