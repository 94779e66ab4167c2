"""ShopBench Kit engine, in four parts, each a subpackage whose ``__init__`` says what it owns:

    scoring/   data, parsers, metrics, embeddings, the batched scorer (imports no other part)
    harness/   profiles and limits, the prediction loop, the model's process, verdicts, predictions
    grading/   images, containers, the grader, ``check``, aicrowd.json, the leaderboard
    reports/   the run folder, intervals, compare, the HTML pages and charts

What every part uses stays here: ``errors`` (the kit's exceptions, "did you mean"), ``environment``
(where the kit is, what a run records about the machine), ``loading`` (finding the participant's model
class), ``jsonio`` (strict, UTF-8-safe JSON writing) and ``cli`` (the command table of ``python -m
submission``). Dependencies point one way: scoring
at the bottom, harness above it, grading and reports on top.

Participants read this package but never need to edit it; the organiser's grader uses the same code.
"""

__version__ = "0.1.0"
