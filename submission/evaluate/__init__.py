"""Evaluate: the one pipeline from questions to a scored run folder, and local_evaluation.py's run.

Owns:
    pipeline.py    ``evaluate(evaluation, runner)``: check scoring -> run the model through a runner ->
                   read its predictions -> judge the run -> score -> metadata -> the run folder; the
                   runner protocol (``Runner`` -> ``ModelRun``) and the local harness as a runner
                   (``HarnessRunner``). The grader and fine-tuning's evaluation call it too.
    local.py       ``local_run``: local_evaluation.py's flags, default data, --limit/--sample, --resume,
                   the progress bar and the closing lines

May import: scoring, harness and reports (and the shared top-level modules); grading and training
import it, nothing below them does.

Public names: evaluate, Evaluation, Evaluated, Answers, ModelRun, Runner, HarnessRunner, ProgressBar,
read_answers, LocalOptions, local_run.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "pipeline": ("evaluate", "Evaluation", "Evaluated", "Answers", "ModelRun", "Runner", "HarnessRunner",
                 "ProgressBar", "read_answers"),
    "local": ("LocalOptions", "local_run"),
})
