"""The command table of python -m submission."""

import subprocess
import sys

import pytest
from kit_paths import ROOT  # noqa: E402

from submission import cli


@pytest.mark.parametrize("argv, name, rest", [
    (["docker", "build", "--tag", "x"], "docker build", ["--tag", "x"]),
    (["docker", "run"], "docker run", []),
    (["check", "--no-smoke"], "check", ["--no-smoke"]),
    (["grade", "--help"], "grade", ["--help"]),
    (["leaderboard", "graded"], "leaderboard", ["graded"]),
    (["finetune", "--data", "x.json"], "finetune", ["--data", "x.json"]),
    (["worker", "--gpus", "0,1"], "worker", ["--gpus", "0,1"]),
    (["enqueue", "--track", "t"], "enqueue", ["--track", "t"]),
    (["status"], "status", []),
    (["docker"], None, ["docker"]),
    (["dokcer", "run"], None, ["dokcer", "run"]),
])
def test_commands_are_found_by_their_words(argv, name, rest):
    command, remaining = cli.find_command(argv)
    assert (command.name if command else None, remaining) == (name, rest)


def test_every_target_exists():
    import importlib

    for command in cli.COMMANDS:
        module, _, function = command.target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), command


def test_unknown_commands_list_the_known_ones(capsys):
    assert cli.main(["docker", "push"]) == 2
    assert "unknown command 'docker push'; 'docker' needs one of: docker build, docker run" in capsys.readouterr().err
    assert cli.main(["grad"]) == 2
    assert ("known: check, compare, docker, docker build, docker run, enqueue, finetune, grade, leaderboard, report, "
            "status, worker") in capsys.readouterr().err


def test_python_dash_m_submission_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "submission"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and all(c.name in out.stdout for c in cli.COMMANDS)


def test_each_command_has_help(capsys):
    for command in cli.COMMANDS:
        with pytest.raises(SystemExit) as exit_:
            cli.main([*command.name.split(), "--help"])
        assert exit_.value.code == 0
        assert f"usage: python -m submission {command.name}" in capsys.readouterr().out
