"""ShopBench Kit engine, in six parts, each a subpackage whose ``__init__`` says what it owns:

    scoring/   data, parsers, metrics, embeddings, the batched scorer (imports no other part)
    backends/  how the kit drives a model: settings, hardware rules, prompting, weights, the transformers
               baseline and served models (imports no other part)
    harness/   profiles and limits, the prediction loop, the model's process, verdicts, predictions
    grading/   images, containers, the grader, ``check``, aicrowd.json, the leaderboard
    reports/   the run folder, intervals, compare, the HTML pages and charts
    training/  fine-tuning into an adapter the transformers baseline loads

What every part uses stays here: ``errors`` (the kit's one error family, "did you mean"), ``interface``
(``ShopBenchBaseModel``, the participant interface), ``card`` (the grader's card as exported to the
model's process), ``environment`` (where the kit is, its ``SHOPBENCH_*`` variables, what a run records
about the machine), ``yamlio`` (the one YAML reader), ``loading`` (finding the participant's model
class), ``jsonio`` (strict, UTF-8-safe JSON writing) and ``cli`` (the command table of ``python -m
submission``). Dependencies point one way: scoring and the backends at the bottom, harness above
scoring, grading, reports and training on top. Nothing here imports the participant's ``models/``.

Participants read this package but never need to edit it; the organiser's grader uses the same code.
"""

__version__ = "0.1.0"
