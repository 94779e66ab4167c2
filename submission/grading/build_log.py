"""Reading the classic builder's output stream: the steps (and which came from the cache), each stage's
last image, and the tail of the log for an error message.

The docker SDK builds with the classic builder, whose stream reads ``Step 3/12 : COPY ...``, then
``---> Using cache`` when the step was cached, then ``---> <image id>``, the image the step made.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

STEP = re.compile(r"Step (\d+)/\d+ : (.*)")
FROM = re.compile(r"FROM\s+\S+(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)
IMAGE = re.compile(r"---> ([0-9a-f]{12,64})")
# pip's words when the package index cannot be reached from inside the build (no network, no DNS, a proxy, or
# a TLS-intercepting proxy whose certificate the base image does not trust)
INDEX_UNREACHABLE = re.compile(r"Could not fetch URL|SSLError|CERTIFICATE_VERIFY_FAILED|NewConnectionError|"
                               r"Failed to establish a new connection|Temporary failure in name resolution|"
                               r"Network is unreachable|ProxyError")


@dataclass(frozen=True)
class BuildStep:
    number: int
    instruction: str
    cached: bool


@dataclass(frozen=True)
class Stage:
    name: str  # "" for an unnamed stage
    image_id: str | None  # the image of its last step (None if the build stopped before one was made)


class BuildLog:
    """Fed the stream's text chunk by chunk; keeps the last ``tail_lines`` chunks for an error message."""

    def __init__(self, tail_lines: int = 40):
        self._steps: list[BuildStep] = []
        self._current: tuple[int, str] | None = None
        self._cached = False
        self._stages: list[list] = []  # [name, last image id]
        self.tail: deque[str] = deque(maxlen=tail_lines)

    def feed(self, text: str) -> None:
        self.tail.append(text)
        line = text.strip()
        step = STEP.match(line)
        if step:
            self._close_step()
            self._current, self._cached = (int(step.group(1)), step.group(2)), False
            stage = FROM.match(step.group(2))
            if stage:
                self._stages.append([stage.group(1) or "", None])
        elif line == "---> Using cache":
            self._cached = True
        elif (image := IMAGE.fullmatch(line)) and self._stages:
            self._stages[-1][1] = image.group(1)

    def _close_step(self) -> None:
        if self._current:
            self._steps.append(BuildStep(self._current[0], self._current[1], self._cached))
        self._current = None

    def steps(self) -> tuple[BuildStep, ...]:
        """Every step, the one in progress included."""
        done = list(self._steps)
        if self._current:
            done.append(BuildStep(self._current[0], self._current[1], self._cached))
        return tuple(done)

    def stages(self) -> tuple[Stage, ...]:
        """The stages begun so far, in order; when the build succeeded the last one is the image itself."""
        return tuple(Stage(name, image) for name, image in self._stages)

    def index_unreachable(self) -> str | None:
        """pip's first line in the log's tail saying the package index could not be reached; None if none."""
        for chunk in self.tail:
            for line in chunk.splitlines():
                if INDEX_UNREACHABLE.search(line):
                    return re.sub(r"\x1b\[[0-9;]*m", "", line).strip()[:300]
        return None

    def failed_at_from(self) -> bool:
        """Whether the step in progress (the one that failed) is a FROM: the base image could not be had."""
        return self._current is not None and FROM.match(self._current[1]) is not None
