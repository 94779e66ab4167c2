"""Crash safety of predictions.jsonl: cutting an interrupted file back to its last complete batch."""

import json

import pytest

from submission.errors import DataError
from submission.harness.predictions import PredictionWriter, prepare_resume


def line(row, batch, size, elapsed=1.0):
    return json.dumps({"row": row, "output": "1", "batch": batch, "batch_size": size, "latency_s": 0.1,
                       "elapsed_s": elapsed}) + "\n"


def test_a_complete_file_is_kept_whole(tmp_path):
    path = tmp_path / "p.jsonl"
    text = line(0, 0, 2, 1.0) + line(1, 0, 2, 1.0) + line(5, 1, 1, 2.5)
    path.write_text(text)
    state = prepare_resume(path)
    assert (state.rows, state.next_batch, state.elapsed_s, state.dropped_lines) == ({0, 1, 5}, 2, 2.5, 0)
    assert path.read_text() == text


def test_a_line_cut_mid_write_and_its_batch_are_dropped(tmp_path):
    path = tmp_path / "p.jsonl"
    complete = line(0, 0, 2) + line(1, 0, 2)
    path.write_text(complete + line(2, 1, 3) + line(3, 1, 3)[:17])  # killed while writing batch 1
    state = prepare_resume(path)
    assert (state.rows, state.next_batch, state.dropped_lines) == ({0, 1}, 1, 2)
    assert path.read_text() == complete
    with PredictionWriter(path, append=True) as writer:  # the resumed run appends after it
        writer.write_batch([{"row": 2, "output": "x"}])
    assert path.read_text() == complete + '{"row": 2, "output": "x"}\n'


def test_an_incomplete_last_batch_is_dropped_even_with_whole_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(line(0, 0, 2) + line(1, 0, 2) + line(2, 1, 2))
    assert prepare_resume(path).rows == {0, 1}


def test_a_scored_or_hand_written_file_counts_as_complete(tmp_path):
    path = tmp_path / "p.jsonl"
    scored = [{"row": 1, "output": "1", "batch": 3, "score": 1.0}, {"row": 0, "output": "2", "batch": 0, "score": 0.0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in scored))
    assert prepare_resume(path).rows == {0, 1}
    path.write_text('{"row": 4, "output": "a"}\n')
    assert prepare_resume(path).rows == {4}
    assert prepare_resume(tmp_path / "absent.jsonl").rows == frozenset()


def test_damage_before_the_last_line_is_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(line(0, 0, 1) + "garbage\n" + line(1, 1, 1))
    with pytest.raises(DataError, match=r"p.jsonl:2: not a prediction record"):
        prepare_resume(path)


def test_writer_fsyncs_at_most_as_often_as_asked_but_always_flushes(tmp_path):
    path = tmp_path / "p.jsonl"
    with PredictionWriter(path, fsync_every_s=3600) as writer:
        writer.write_batch([{"row": 0, "output": "a"}])
        assert path.read_text() == '{"row": 0, "output": "a"}\n'  # flushed: survives a kill -9
