"""Files the kit writes, against real symlinks and FIFOs at their names: nothing is written through a link,
nothing waits on a FIFO, a crash leaves the old file whole. Every call that could meet a FIFO runs under
``within`` (a thread given a few seconds), so a regression fails the test instead of hanging it."""

from __future__ import annotations

import json
import os

import no_hang
import pytest

from submission.fileio import (
    UnsafeFileError,
    open_append,
    read_regular,
    refuse_non_regular,
    replace_file,
    replacing,
)
from submission.harness.predictions import PredictionWriter, prepare_resume, write_scored
from submission.jsonio import write_json
from submission.reports.reuse import clear_run

HANG_S = 20  # far beyond what any of these calls takes; only a call blocked on a FIFO gets there


def within(call, *args, **kwargs):
    return no_hang.within(HANG_S, call, *args, **kwargs)


@pytest.fixture
def outside(tmp_path):
    """A file outside the output folder that a link may point at: it must never change."""
    path = tmp_path / "outside.txt"
    path.write_text("precious\n")
    return path


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    return folder


def test_a_symlink_at_the_name_is_replaced_never_written_through(out, outside):
    (out / "results.json").symlink_to(outside)
    write_json(out / "results.json", {"all_around": 0.5})
    assert outside.read_text() == "precious\n"
    assert not (out / "results.json").is_symlink() and json.loads((out / "results.json").read_text()) == \
        {"all_around": 0.5}


def test_a_link_at_the_old_fixed_temporary_name_is_never_followed(out, outside):
    # the kit once wrote results.json.tmp then renamed it: a link planted there received the file
    (out / "results.json.tmp").symlink_to(outside)
    write_json(out / "results.json", {"all_around": 0.5})
    write_scored(out / "predictions.jsonl", [{"row": 0, "output": "a"}])
    assert outside.read_text() == "precious\n"
    assert json.loads((out / "results.json").read_text()) == {"all_around": 0.5}


def test_a_fifo_at_the_name_or_the_old_temporary_name_never_blocks_a_write(out):
    os.mkfifo(out / "report.html")
    os.mkfifo(out / "results.json.tmp")  # nobody reads either: opening one to write would wait forever
    within(replace_file, out / "report.html", "<html></html>")
    within(write_json, out / "results.json", {"ok": True})
    assert (out / "report.html").read_text() == "<html></html>" and (out / "results.json").is_file()


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(out):
    replace_file(out / "scores.json", b"old")
    with pytest.raises(RuntimeError):
        with replacing(out / "scores.json") as handle:
            handle.write(b"half of the new")
            raise RuntimeError("crash mid-write")
    assert (out / "scores.json").read_bytes() == b"old" and os.listdir(out) == ["scores.json"]


def test_a_folder_at_the_name_is_refused_by_name(out):
    (out / "scores.png").mkdir()
    with pytest.raises(UnsafeFileError, match=r"run/scores.png is a folder"):
        replace_file(out / "scores.png", b"png")


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_appending_refuses_a_link_or_a_fifo_without_blocking(out, outside, kind):
    path = out / "predictions.jsonl"
    path.symlink_to(outside) if kind == "symlink" else os.mkfifo(path)
    what = "a symlink to" if kind == "symlink" else "a FIFO"
    with pytest.raises(UnsafeFileError, match=f"predictions.jsonl is {what}"):
        within(open_append, path)
    with pytest.raises(UnsafeFileError, match=f"predictions.jsonl is {what}"):
        within(read_regular, path)
    assert outside.read_text() == "precious\n"


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_the_prediction_writer_never_writes_through_a_link_nor_waits_on_a_fifo(out, outside, kind):
    path = out / "predictions.jsonl"
    path.symlink_to(outside) if kind == "symlink" else os.mkfifo(path)
    for append in (False, True):
        with pytest.raises(UnsafeFileError, match="predictions.jsonl is a"):
            within(PredictionWriter, path, append=append)
    assert outside.read_text() == "precious\n"


def test_a_fifo_with_a_reader_is_refused_too(out):
    path = out / "predictions.jsonl"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # now an open to write would succeed at once
    try:
        with pytest.raises(UnsafeFileError, match="is a FIFO"):
            within(open_append, path)
    finally:
        os.close(reader)


def test_predictions_swapped_for_a_link_are_put_back_as_a_regular_file(out, outside):
    path = out / "predictions.jsonl"
    writer = PredictionWriter(path)
    writer.write_batch([{"row": 0, "output": "a"}])
    moved = out.parent / "moved.jsonl"  # the same inode and size behind a link: only lstat tells them apart
    os.rename(path, moved)
    path.symlink_to(moved)
    writer.close()
    assert writer.restored and not path.is_symlink() and path.read_text() == '{"row": 0, "output": "a"}\n'
    writer = PredictionWriter(out / "again.jsonl")
    writer.write_batch([{"row": 0, "output": "a"}])
    with open(out / "again.jsonl", "r+b") as handle:  # same inode, same size, other bytes
        handle.write(b'{"row": 0, "output": "b"}')
    writer.close()
    assert writer.restored and (out / "again.jsonl").read_text() == '{"row": 0, "output": "a"}\n'


def test_resuming_from_a_fifo_is_refused_without_blocking(out):
    os.mkfifo(out / "predictions.jsonl")
    with pytest.raises(UnsafeFileError, match="predictions.jsonl is a FIFO"):
        within(prepare_resume, out / "predictions.jsonl")


def test_every_name_that_is_not_a_regular_file_is_named(out, outside):
    (out / "results.json").write_text("{}")
    (out / "report.html").symlink_to(outside)
    os.mkfifo(out / "run.json")
    with pytest.raises(UnsafeFileError) as error:
        refuse_non_regular(out, ["results.json", "report.html", "run.json", "absent.json"])
    message = str(error.value)
    assert f"{out / 'report.html'} is a symlink to {outside}" in message
    assert f"{out / 'run.json'} is a FIFO" in message and "results.json" not in message


def test_clearing_a_run_unlinks_links_without_following_them_and_keeps_other_files(out, outside, tmp_path):
    target_folder = tmp_path / "elsewhere"
    target_folder.mkdir()
    (target_folder / "keep.txt").write_text("keep")
    for name in ("results.json", "predictions.jsonl", "compare.html", "notes.txt"):
        (out / name).write_text("x")
    (out / "report.html").symlink_to(outside)
    (out / "container").symlink_to(target_folder)
    os.mkfifo(out / "run.json")
    (out / ".results.json.0123456789ab.tmp").write_text("half")
    removed = clear_run(out)
    assert sorted(os.listdir(out)) == ["notes.txt"]
    assert set(removed) == {"results.json", "predictions.jsonl", "compare.html", "report.html", "container",
                            "run.json", ".results.json.0123456789ab.tmp"}
    assert outside.read_text() == "precious\n" and (target_folder / "keep.txt").read_text() == "keep"
