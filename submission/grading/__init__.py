"""Grading: the submission's image, its container run the grader's way, scores, checks, leaderboard.

Owns:
    aicrowd.py     aicrowd.json: track (challenge_id), authors, gpu -> profile
    images.py      reaching the Docker daemon; building, saving, loading and reading images
    container.py   the contract between the host and the container's entry point (inputs, run report)
    containers.py  running an image under a profile's limits: resources, mounts, the outer deadline
    grader.py      the verdict of a container run, scoring it on the host, scores.json
    commands.py    ``docker build``, ``docker run`` and ``grade`` on the command line
    check.py       ``check``: what the grader would refuse, found before a push
    leaderboard.py merging graded runs into Markdown, CSV and (leaderboard_html.py) an HTML page
    leaderboard_html.py  leaderboard.html from reports/templates/leaderboard.html
    queue.py       grading at scale: the Celery app, one queue per GPU count, what a grade is, the registry
    enqueue.py     ``enqueue``: one grade on the queue, every input checked first
    image_tar.py   a file of a ``docker save`` tarball (aicrowd.json), read without Docker
    worker.py      ``worker``: a compute worker for one host (a Celery worker), its start and shutdown
    grade_task.py  one grade on a worker: ``grade`` in a process of its own, GPUs, staging, publishing
    gpu_slots.py   the host's GPUs handed to grades, disjoint, with locks the kernel drops; --gpus read as ids
    results_folder.py  the workers' results folder: staging, publishing once, reading runs back
    status.py      ``status``: queued, running, done, failed, from the result backend

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
