"""``python -m submission COMMAND ...``: the kit's commands, one table.

Each entry names the command, the function that runs it (``module:function``, imported only when that
command runs, so ``--help`` stays fast) and one line of help. A command function takes its own argument
list and its program name and returns the exit status; it parses its arguments itself. To add a
command, add a row.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

PROG = "python -m submission"


@dataclass(frozen=True)
class Command:
    name: str  # one or more words: "check", "docker build"
    target: str  # "module:function", function(argv: list[str], prog: str) -> int
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("docker build", "submission.grading.commands:docker_build_main",
            "build the submission's image from docker/Dockerfile; prints its size and build time (--save FILE)"),
    Command("docker run", "submission.grading.commands:docker_run_main",
            "run the image the grader's way on a split, score it on the host, write results.json"),
    Command("check", "submission.grading.check:check_main",
            "validate a submission before pushing: UserModel, aicrowd.json, weights, .dockerignore, size, smoke run"),
    Command("grade", "submission.grading.commands:grade_main",
            "organiser: run one submission on test inputs, score it against the truth, write scores.json"),
    Command("leaderboard", "submission.grading.leaderboard:leaderboard_main",
            "organiser: merge graded runs (scores.json) into a Markdown, CSV and HTML leaderboard"),
    Command("worker", "submission.grading.worker:worker_main",
            "organiser: a compute worker for this host: takes grades from the queue (Celery; Redis or RabbitMQ)"),
    Command("enqueue", "submission.grading.enqueue:enqueue_main",
            "organiser: put one grade on the queue (--image or --image-file, --track, --submission); prints its id"),
    Command("status", "submission.grading.status:status_main",
            "organiser: queued, running, done and failed grades per submission and track, and the live workers"),
    Command("report", "submission.reports.html:main_report",
            "write report.html and scores.png for a run folder"),
    Command("compare", "submission.reports.compare:main_compare",
            "compare two run folders: paired bootstrap deltas per task, track and all-around"),
    Command("finetune", "submission.training.command:finetune_main",
            "LoRA / QLoRA fine-tuning on ShopBench-format data into an adapter the baseline loads (--eval-data compares)"),
)


def program() -> str:
    """``shopbench`` when run as the console script, else ``python -m submission``."""
    return "shopbench" if Path(sys.argv[0]).name == "shopbench" else PROG


def usage() -> str:
    width = max(len(c.name) for c in COMMANDS)
    prog = program()
    lines = [f"usage: {prog} COMMAND [options]   ({prog} COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {c.name:<{width}}  {c.help}" for c in COMMANDS]
    return "\n".join(lines)


def find_command(argv: list[str]) -> tuple[Command | None, list[str]]:
    """The command whose words start ``argv`` (the longest match), and the arguments after them."""
    for command in sorted(COMMANDS, key=lambda c: -len(c.name.split())):
        words = command.name.split()
        if argv[: len(words)] == words:
            return command, argv[len(words):]
    return None, argv


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
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
    module_name, _, function = command.target.partition(":")
    run = getattr(importlib.import_module(module_name), function)
    return run(rest, f"{program()} {command.name}")
