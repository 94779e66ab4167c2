"""The pieces of the container transport that need no Docker: the attach stream's frames parsed however
they are cut, the log capped on the host with a note, the grader's signals turned into a verdict."""

import os
import signal
import struct

import pytest

from submission.grading.container_channel import Demux, Interrupt, LogSink


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


@pytest.mark.parametrize("cut", [1, 3, 8, 9, 4096])
def test_frames_are_split_into_the_channel_and_the_log_however_the_stream_is_cut(cut):
    stream = frame(1, b'{"t": "ready"}\n') + frame(2, b"loading weights\n") + frame(1, b"") + frame(1, b"x" * 70000)
    demux, out, err = Demux(), [], []
    for start in range(0, len(stream), cut):
        got_out, got_err = demux.feed(stream[start:start + cut])
        out += got_out
        err += got_err
    assert b"".join(out) == b'{"t": "ready"}\n' + b"x" * 70000 and b"".join(err) == b"loading weights\n"


def test_the_log_is_capped_with_a_note_and_keeps_its_tail(tmp_path):
    sink = LogSink(tmp_path / "container" / "container.log", cap=1000)
    for index in range(100):
        sink.write(f"line {index:04d} ".encode() + b"." * 90 + b"\n")
    sink.close()
    text = (tmp_path / "container" / "container.log").read_text()
    assert text.startswith("line 0000") and len(text.split("\n[shopbench:")[0]) == 1000
    assert "the container wrote 9,100 more bytes past the log's cap of 1,000 bytes; they were dropped" in text
    assert sink.tail_text(2).splitlines()[-1].startswith("line 0099")


def test_the_log_replaces_whatever_is_at_its_name_and_never_writes_through_a_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "container"
    folder.mkdir()
    (folder / "container.log").symlink_to(victim)
    sink = LogSink(folder / "container.log", cap=100)
    sink.write(b"the model's line\n")
    sink.close()
    assert victim.read_text() == "precious" and not (folder / "container.log").is_symlink()
    assert (folder / "container.log").read_text() == "the model's line\n"


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 143)])
def test_a_signal_to_the_grader_becomes_the_interrupted_verdict_and_its_exit_status(sig, status):
    before = signal.getsignal(sig)
    with Interrupt() as interrupt:
        assert interrupt.verdict() is None and interrupt.exit_status is None
        os.kill(os.getpid(), sig)
        assert os.read(interrupt.fd, 10) == b"!"  # it woke whoever waits on its descriptor
        assert interrupt.verdict().status == "interrupted" and signal.Signals(sig).name in interrupt.verdict().detail
        assert interrupt.exit_status == status
    assert signal.getsignal(sig) is before
