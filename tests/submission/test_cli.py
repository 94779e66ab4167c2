"""The command line: python -m submission's command table, one module per command, global flags, and a
kit error ending any command with one line and exit status 2 (the traceback only with --verbose)."""

import subprocess
import sys

import pytest
from kit_paths import ROOT

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


def test_every_command_is_a_module_with_main():
    modules = {path.stem for path in (ROOT / "submission" / "cli").glob("*.py")}
    for command in cli.COMMANDS:
        assert command.module in modules and callable(cli.command_main(command)), command


def test_unknown_commands_list_the_known_ones(capsys):
    assert cli.main(["docker", "push"]) == 2
    assert "unknown command 'docker push'; 'docker' needs one of: docker build, docker run" in capsys.readouterr().err
    assert cli.main(["grad"]) == 2
    assert ("known: check, compare, docker, docker build, docker run, enqueue, finetune, grade, leaderboard, report, "
            "status, worker") in capsys.readouterr().err


def test_python_dash_m_submission_lists_every_command_with_one_line_each():
    out = subprocess.run([sys.executable, "-m", "submission", "--help"], cwd=ROOT, capture_output=True, text=True)
    lines = out.stdout.splitlines()
    assert out.returncode == 0
    for command in cli.COMMANDS:
        listed = [line for line in lines if line.startswith(f"  {command.name}  ")]
        assert len(listed) == 1 and command.help in listed[0], command.name
    assert any(line.lstrip().startswith("-v, --verbose") for line in lines)
    assert any(line.lstrip().startswith("-q, --quiet") for line in lines)


def test_each_command_has_help_with_the_output_flags(capsys):
    for command in cli.COMMANDS:
        with pytest.raises(SystemExit) as exit_:
            cli.main([*command.name.split(), "--help"])
        assert exit_.value.code == 0
        printed = capsys.readouterr().out
        assert f"usage: python -m submission {command.name}" in printed
        assert "--verbose" in printed and "--quiet" in printed, command.name


def run_submission(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "submission", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_a_kit_error_is_one_line_and_exit_status_2(tmp_path):
    proc = run_submission("report", str(tmp_path / "missing"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {tmp_path / 'missing' / 'results.json'}: not found; expected a run "
                                        "folder of local_evaluation.py, the Docker runner or the grader "
                                        "(results.json and predictions.jsonl)"]


@pytest.mark.parametrize("where", ["before the command", "after it"])
def test_verbose_shows_the_traceback_of_a_kit_error(tmp_path, where):
    args = ["leaderboard", str(tmp_path / "absent")]
    proc = run_submission(*(["--verbose", *args] if where == "before the command" else [*args, "--verbose"]))
    assert proc.returncode == 2
    assert proc.stderr.startswith("Traceback (most recent call last):") and "DataError" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: ") and "no such file or folder" in proc.stderr


def test_quiet_leaves_the_results_and_drops_the_context_lines(tmp_path, capsys):
    from submission.cli import output

    reporter = output.setup(quiet=True)
    try:
        reporter.info("data: somewhere")
        reporter.result("the table")
        reporter.error("a failure")
    finally:
        output.setup()
    captured = capsys.readouterr()
    assert captured.out == "the table\n" and captured.err == "error: a failure\n"
    reporter.info("data: somewhere")
    assert capsys.readouterr().out == "data: somewhere\n"


def test_the_console_script_is_the_same_main():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["shopbench"].partition(":")
    assert (module, function) == ("submission.cli", "main") and cli.main is getattr(sys.modules[module], function)
