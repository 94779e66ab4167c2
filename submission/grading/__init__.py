"""Grading: the submission's image, its container run the grader's way, scores, checks, leaderboard.

Owns:
    aicrowd.py     aicrowd.json: track (challenge_id), authors, gpu -> profile
    images.py      reaching the Docker daemon; building, saving, loading and reading images; the build context
    build_log.py   the classic builder's output: steps, cached or not, each stage's last image
    image_cache.py after a build: intermediate images removed, dependency stages kept as cache, largest layers
    container.py   the contract between the host and the container's entry point (inputs, run report)
    containers.py  running an image under a profile's limits: resources, mounts, the outer deadline
    grader.py      the verdict of a container run, scoring it on the host, scores.json
    commands.py    ``docker build``, ``docker run`` and ``grade`` on the command line
    check.py       ``check``: what the grader would refuse, found before a push
    config_paths.py  ``check``: the paths the model configs name, inside the repository, tracked, in the context
    smoke.py       ``check``'s smoke run, in the submission's image (or this Python environment, with a warning)
    leaderboard.py merging graded runs into Markdown and CSV

May import: scoring, harness and reports (to write the same run folder as local_evaluation.py). Nothing
below imports grading.

Public names: load_aicrowd, connect, build_image, run_container, run_and_score, RunRequest, run_checks.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "aicrowd": ("load_aicrowd",),
    "images": ("connect", "build_image"),
    "containers": ("run_container",),
    "grader": ("run_and_score", "RunRequest"),
    "check": ("run_checks",),
})
