"""Grading: the submission's image, its container run the grader's way, scores, checks, leaderboard.

Owns:
    aicrowd.py     aicrowd.json: track (challenge_id), authors, gpu -> profile
    images.py      reaching the Docker daemon; building, saving, loading and reading images
    container_contract.py  the contract between the host (the judge) and the container (the model's loop): the
                   command, the job, the model's own tmpfs; nothing of the run is mounted or read back
    container_runner.py    running an image under a profile's limits, judged on the host: resources, the
                   container's creation, the judge over its attach socket, stop and removal on every ending
    container_channel.py   the judge's transport to a container: stdin/stdout through the attach socket, the
                   log under a cap, the host's own watch (cgroup pids, host NVML), signals to the grader
    grader.py      the container as the evaluation pipeline's runner (the judge's records and verdict);
                   scores.json
    check.py       what the grader would refuse, found before a push (``python -m submission check``)
    leaderboard.py merging graded runs into Markdown and CSV

The commands (``docker build``, ``docker run``, ``grade``, ``check``, ``leaderboard``) are in
``submission/cli/``.

May import: scoring, harness, reports and evaluate (the pipeline local_evaluation.py runs too). Nothing
below imports grading.

Public names: load_aicrowd, connect, build_image, run_container, run_and_score, RunRequest, run_checks.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "aicrowd": ("load_aicrowd",),
    "images": ("connect", "build_image"),
    "container_runner": ("run_container",),
    "grader": ("run_and_score", "RunRequest"),
    "check": ("run_checks",),
})
