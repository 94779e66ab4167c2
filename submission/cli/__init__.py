"""``python -m submission COMMAND ...`` (and the ``shopbench`` console script): the kit's commands.

Owns:
    __init__.py      the command table, ``main``: global flags, dispatch, kit errors -> exit status 2
    output.py        the one logging set-up (``--verbose``, ``--quiet``) and the reporter (what the user reads)
    docker_build.py  ``docker build``        docker_run.py  ``docker run``      grade.py    ``grade``
    containers.py    what ``docker run`` and ``grade`` share: their flags, the image, the run and its report
    check.py         ``check``               leaderboard.py ``leaderboard``
    worker.py        ``worker``              enqueue.py     ``enqueue``         status.py   ``status``
    report.py        ``report``              compare.py     ``compare``         finetune.py ``finetune``

Each command module has ``main(argv, prog) -> int``: it parses its own arguments (``-v/--verbose`` and
``-q/--quiet`` among them), calls the library and shows what the user must read through
``output.REPORTER``. A kit error (bad input or configuration) is caught once, here: ``error: <message>``
on stderr, exit status 2 (with ``--verbose``, the traceback too).

May import: every part; nothing imports cli but cli (and local_evaluation.py, for the same set-up).

Public names: main, COMMANDS.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import KitError
from . import output

PROG = "python -m submission"
GLOBAL_FLAGS = {"-v": "verbose", "--verbose": "verbose", "-q": "quiet", "--quiet": "quiet"}


@dataclass(frozen=True)
class Command:
    name: str  # one or more words: "check", "docker build"
    module: str  # submission.cli.<module>, whose main(argv: list[str], prog: str) -> int runs it
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("docker build", "docker_build",
            "build the submission's image from docker/Dockerfile; prints its size and build time (--save FILE)"),
    Command("docker run", "docker_run",
            "run the image the grader's way on a split, score it on the host, write results.json"),
    Command("check", "check",
            "validate a submission before pushing: UserModel, aicrowd.json, weights, .dockerignore, size, smoke run"),
    Command("grade", "grade",
            "organiser: run one submission on test inputs, score it against the truth, write scores.json"),
    Command("leaderboard", "leaderboard",
            "organiser: merge graded runs (scores.json) into a Markdown, CSV and HTML leaderboard"),
    Command("worker", "worker",
            "organiser: a compute worker for this host: takes grades from the queue (Celery; Redis or RabbitMQ)"),
    Command("enqueue", "enqueue",
            "organiser: put one grade on the queue (--image or --image-file, --track, --submission); prints its id"),
    Command("status", "status",
            "organiser: queued, running, done and failed grades per submission and track, and the live workers"),
    Command("report", "report",
            "write report.html and scores.png for a run folder"),
    Command("compare", "compare",
            "compare two run folders: paired bootstrap deltas per task, track and all-around"),
    Command("finetune", "finetune",
            "LoRA / QLoRA fine-tuning on ShopBench-format data into an adapter the baseline loads "
            "(--eval-data compares)"),
)


def program() -> str:
    """``shopbench`` when run as the console script, else ``python -m submission``."""
    return "shopbench" if Path(sys.argv[0]).name == "shopbench" else PROG


def usage() -> str:
    flags = (("-v, --verbose", "debug logging, and the traceback of an error"),
             ("-q, --quiet", "only the results, warnings and errors"))
    width = max(len(name) for name in [c.name for c in COMMANDS] + [flag for flag, _ in flags])
    prog = program()
    lines = [f"usage: {prog} [-v | -q] COMMAND [options]   ({prog} COMMAND --help for its options)", "",
             "commands:"]
    lines += [f"  {c.name:<{width}}  {c.help}" for c in COMMANDS]
    lines += ["", "options (before the command, or after it):"] + [f"  {flag:<{width}}  {text}" for flag, text in flags]
    return "\n".join(lines)


def find_command(argv: list[str]) -> tuple[Command | None, list[str]]:
    """The command whose words start ``argv`` (the longest match), and the arguments after them."""
    for command in sorted(COMMANDS, key=lambda c: -len(c.name.split())):
        words = command.name.split()
        if argv[: len(words)] == words:
            return command, argv[len(words):]
    return None, argv


def command_main(command: Command) -> Callable[..., int]:
    """The command's ``main(argv, prog)``, imported only when it runs (so ``--help`` stays fast)."""
    return importlib.import_module(f"{__name__}.{command.module}").main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    given = {"verbose": False, "quiet": False}
    while argv and argv[0] in GLOBAL_FLAGS:
        given[GLOBAL_FLAGS[argv.pop(0)]] = True
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = find_command(argv)
    if command is None:
        known = sorted({c.name for c in COMMANDS} | {c.name.split()[0] for c in COMMANDS})
        group = [c.name for c in COMMANDS if c.name.split()[0] == argv[0]]
        hint = f"'{argv[0]}' needs one of: {', '.join(group)}" if group else f"known: {', '.join(known)}"
        print(f"{program()}: unknown command '{' '.join(argv[:2])}'; {hint}\n\n{usage()}", file=sys.stderr)
        return 2
    output.given_before_command(**given)
    try:
        return command_main(command)(rest, f"{program()} {command.name}")
    except KitError as exc:
        return output.REPORTER.fail(exc)
    finally:
        output.given_before_command()
