"""What a command shows the user, and the one logging set-up of the kit's commands.

``setup(verbose, quiet)`` is the kit's only ``logging.basicConfig``: library modules log through
``logging.getLogger(__name__)`` and never configure logging themselves. ``-v/--verbose`` shows debug
logging and, when a command ends with a kit error, its traceback; ``-q/--quiet`` shows only warnings
and errors, and no progress or context lines.

``REPORTER`` (a ``Reporter``) is the one channel for what the user must read:

    result(text)   what the command produced: tables, verdicts, the files it wrote (stdout, always)
    info(text)     context while it runs: the data chosen, the limits, notes (stdout; not with --quiet)
    note(text)     'note: ...', an info line
    step(text)     a line of a long operation's progress, such as a build's steps (stderr; not with --quiet)
    error(text)    'error: ...' and what follows it: failures, hints, a log's last lines (stderr)
    progress(total, label)   a progress bar on stderr (none with --quiet)
    fail(exc)      a command's end on a kit error: 'error: <message>' (and the traceback with --verbose), 2
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

QUIET, NORMAL, VERBOSE = -1, 0, 1
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
DAEMON_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = {QUIET: logging.ERROR, NORMAL: logging.WARNING, VERBOSE: logging.DEBUG}


class Reporter:
    """Prints what the user must read; see the module's docstring."""

    def __init__(self) -> None:
        self.verbosity = NORMAL

    @property
    def verbose(self) -> bool:
        return self.verbosity >= VERBOSE

    def result(self, text: str = "") -> None:
        print(text, flush=True)

    def info(self, text: str) -> None:
        if self.verbosity > QUIET:
            print(text, flush=True)

    def note(self, text: str) -> None:
        self.info(f"note: {text}")

    def step(self, text: str) -> None:
        """A line of a long operation's progress (a build's steps): stderr, not with --quiet."""
        if self.verbosity > QUIET:
            print(text, file=sys.stderr, flush=True)

    def error(self, text: str, prefix: bool = True) -> None:
        print(f"error: {text}" if prefix else text, file=sys.stderr, flush=True)

    def progress(self, total: int, label: str, unit: str = "q") -> tqdm[Any]:
        from tqdm import tqdm

        return tqdm(total=total, desc=label, unit=unit, file=sys.stderr, disable=self.verbosity <= QUIET)

    def fail(self, exc: BaseException) -> int:
        """A command ended on a kit error (bad input or configuration): one line, the traceback with
        --verbose; exit status 2."""
        if self.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        self.error(str(exc))
        return 2


REPORTER = Reporter()
_GIVEN_BEFORE = {"verbose": False, "quiet": False}  # python -m submission -v COMMAND: for this call only


def given_before_command(verbose: bool = False, quiet: bool = False) -> None:
    """The flags given before the command (``python -m submission --verbose check``); cleared by the next call."""
    _GIVEN_BEFORE.update(verbose=verbose, quiet=quiet)
    setup()


def setup(verbose: bool = False, quiet: bool = False, daemon: bool = False) -> Reporter:
    """Set the verbosity from a command's flags (and those given before the command) and configure logging.
    ``daemon``: a long-running service's log (``worker``): time-stamped lines, and INFO unless -q or -v."""
    verbose, quiet = verbose or _GIVEN_BEFORE["verbose"], quiet or _GIVEN_BEFORE["quiet"]
    REPORTER.verbosity = VERBOSE if verbose else QUIET if quiet else NORMAL
    level = logging.INFO if daemon and REPORTER.verbosity == NORMAL else LEVELS[REPORTER.verbosity]
    logging.basicConfig(level=level, format=DAEMON_FORMAT if daemon else LOG_FORMAT)  # a no-op once configured
    logging.getLogger().setLevel(level)
    return REPORTER


def add_flags(parser: argparse.ArgumentParser, verbose_help: str = "debug logging, and the traceback of an "
              "error") -> None:
    """-v/--verbose and -q/--quiet: every command accepts them (``python -m submission`` too, before the command)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    group.add_argument("-q", "--quiet", action="store_true", help="only the results, warnings and errors")
