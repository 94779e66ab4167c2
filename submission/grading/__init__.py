"""Grading: the submission's image, its container run the grader's way, scores, checks, leaderboard.

Owns:
    aicrowd.py     aicrowd.json: track (challenge_id), authors, gpu -> profile
    images.py      reaching the Docker daemon; building, saving, loading and reading images; the build context
    build_log.py   the classic builder's output: steps, cached or not, each stage's last image
    image_cache.py after a build: intermediate images removed, dependency stages kept as cache, largest layers
    container_contract.py  the contract between the host (the judge) and the container (the model's loop): the
                   command, the job, the model's own tmpfs; nothing of the run is mounted or read back
    container_runner.py    running an image under a profile's limits, judged on the host: resources, the
                   container's creation, the judge over its attach socket, stop and removal on every ending
    container_channel.py   the judge's transport to a container: stdin/stdout through the attach socket, the
                   log under a cap, the host's own watch (cgroup pids, host NVML), signals to the grader
    grader.py      the container as the evaluation pipeline's runner (the judge's records and verdict);
                   scores.json
    check.py       what the grader would refuse, found before a push (``python -m submission check``)
    config_paths.py  ``check``: the paths the model configs name, inside the repository, tracked, in the context
    smoke.py       ``check``'s smoke run, in the submission's image (or this Python environment, with a warning)
    leaderboard.py merging graded runs into Markdown and CSV (and, leaderboard_html.py, an HTML page)
    leaderboard_html.py  leaderboard.html from reports/templates/leaderboard.html
    queue.py       grading at scale: the Celery app, one queue per GPU count, what a grade is, the registry
    enqueue.py     one grade on the queue, every input checked first (``python -m submission enqueue``)
    image_tar.py   a file of a ``docker save`` tarball (aicrowd.json), read without Docker
    worker.py      a compute worker for one host (a Celery worker), its start and shutdown
    grade_task.py  one grade on a worker: ``grade`` in a process of its own, GPUs, staging, publishing
    gpu_slots.py   the host's GPUs handed to grades, disjoint, with locks the kernel drops; --gpus read as ids
    results_folder.py  the workers' results folder: staging, publishing once, reading runs back
    status.py      queued, running, done, failed, from the result backend (``python -m submission status``)

The commands (``docker build``, ``docker run``, ``grade``, ``check``, ``leaderboard``, ``worker``, ``enqueue``,
``status``) are in ``submission/cli/``.

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
