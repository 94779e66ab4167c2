"""The scripts behind every number in the README, and the reference grader they measure the kit against.

Run each from the repository root, as a module (the kit is installed by ``setup.sh``; the repository
root, where ``models/`` and ``local_evaluation.py`` are, comes first on ``sys.path`` with ``-m``):

    python -m benchmarks.scoring_speed
    python -m benchmarks.harness_overhead
    python -m benchmarks.bootstrap_speed
    python -m benchmarks.baseline_vs_starter_kit
    python -m benchmarks.served_vs_inprocess
    python -m benchmarks.finetune_speed
    python -m benchmarks.sample_split_echo

``reference_grader.py`` is a plain re-implementation of the official per-sample scoring loop: the
oracle of the scoring tests and the baseline of ``scoring_speed``. Acceptance checks that need special
hardware are in ``acceptance/``.
"""
