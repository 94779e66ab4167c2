"""Grading: the submission's image, its container run the grader's way, scores, checks, leaderboard.

Owns:
    aicrowd.py     aicrowd.json: track (challenge_id), authors, gpu -> profile
    images.py      reaching the Docker daemon; building, saving, loading and reading images
    container_contract.py  the contract between the host and the container's entry point (inputs, run report)
    container_runner.py    running an image under a profile's limits: resources, mounts, the outer deadline
    grader.py      the container as the evaluation pipeline's runner; the verdict of a container run, judged
                   on the host; scores.json
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
