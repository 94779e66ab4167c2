"""predictions.jsonl: written batch by batch, read back with clear errors for bad rows."""

import json

import pytest

from submission.errors import DataError
from submission.harness.predictions import (
    PredictionWriter,
    outputs_for,
    read_records,
    write_scored,
)
from submission.scoring.data import Question

QUESTIONS = [Question(row, f"q{row}", False) for row in (0, 1, 3)]


def write(path, *lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_writer_appends_each_batch_to_disk_at_once(tmp_path):
    path = tmp_path / "p.jsonl"
    writer = PredictionWriter(path)
    writer.write_batch([{"row": 0, "output": "a"}, {"row": 1, "output": "b"}])
    assert len(path.read_text().splitlines()) == 2  # readable before close: flushed per batch
    writer.close()
    with PredictionWriter(path, append=True) as again:
        again.write_batch([{"row": 3, "output": "c"}])
    assert outputs_for(read_records(path), QUESTIONS, "p") == {0: "a", 1: "b", 3: "c"}


def test_a_file_with_only_row_and_output_is_enough(tmp_path):
    path = write(tmp_path / "p.jsonl", {"row": 3, "output": "c"}, "", {"row": 0, "output": "a"},
                 {"row": 1, "output": ""})
    assert outputs_for(read_records(path), QUESTIONS, str(path)) == {0: "a", 1: "", 3: "c"}


@pytest.mark.parametrize("lines,message", [
    ([{"row": 0, "output": "a"}, '{"row": 1, "outp'], r"p.jsonl:2: not valid JSON .* delete that line"),
    ([{"row": "0", "output": "a"}], r"p.jsonl:1: field 'row' must be an int"),
    ([{"row": 0, "output": 2}], r"p.jsonl:1: field 'output' must be a string, got int"),
    ([{"row": 0}], r"p.jsonl:1: missing field 'output' \(the model's answer\); each line needs 'row' and 'output'"),
    ([{"output": "a"}], r"p.jsonl:1: missing field 'row' \(the question's 0-based line\)"),
    (["[0, \"a\"]"], r"p.jsonl:1: expected a JSON object"),
])
def test_malformed_lines_are_named(tmp_path, lines, message):
    with pytest.raises(DataError, match=message):
        read_records(write(tmp_path / "p.jsonl", *lines))


def test_unknown_repeated_and_missing_rows_are_refused(tmp_path):
    unknown = write(tmp_path / "u.jsonl", {"row": 2, "output": "x"})
    with pytest.raises(DataError, match=r"u.jsonl:1: row 2 is not a question of the data file"):
        outputs_for(read_records(unknown), QUESTIONS, "u")
    repeated = write(tmp_path / "r.jsonl", {"row": 0, "output": "x"}, {"row": 0, "output": "y"})
    with pytest.raises(DataError, match=r"r.jsonl:2: row 0 appears twice"):
        outputs_for(read_records(repeated), QUESTIONS, "r")
    missing = write(tmp_path / "m.jsonl", {"row": 0, "output": "x"})
    with pytest.raises(DataError, match=r"m: 2 of 3 questions have no prediction \(rows 1, 3\)"):
        outputs_for(read_records(missing), QUESTIONS, "m")


def test_write_scored_replaces_the_file_whole(tmp_path):
    path = write(tmp_path / "p.jsonl", {"row": 0, "output": "a"})
    write_scored(path, [{"row": 0, "output": "a", "score": 1.0}])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"row": 0, "output": "a", "score": 1.0}]
    assert not (tmp_path / "p.jsonl.tmp").exists()
