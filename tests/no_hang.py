"""``within(seconds, call, ...)``: a call that could block forever (on a FIFO, a trickling server) run in a
thread, so that a regression fails its test instead of hanging the suite."""

from __future__ import annotations

import threading

import pytest


def within(seconds: float, call, *args, **kwargs):
    """``call(*args, **kwargs)``'s result, or its exception raised here; still running after ``seconds``
    (far more than it should ever take): the test fails, naming the call."""
    done: dict = {}

    def target():
        try:
            done["value"] = call(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - raised again in the test's thread
            done["error"] = error

    thread = threading.Thread(target=target, daemon=True, name=f"within-{getattr(call, '__name__', 'call')}")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(call, '__qualname__', call)} was still blocked after {seconds:g} s")
    if "error" in done:
        raise done["error"]
    return done.get("value")
