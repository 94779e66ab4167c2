"""ShopBench Kit engine, in parts, each a subpackage whose ``__init__`` says what it owns:

    scoring/   data, parsers, metrics, embeddings, the batched scorer (imports no other part)
    backends/  how the kit drives a model: settings, hardware rules, prompting, weights, the transformers
               baseline and served models (imports no other part)
    harness/   profiles and limits, the prediction loop, the model's process, verdicts, predictions
    reports/   the run folder, intervals, compare, the HTML pages and charts
    evaluate/  the one evaluation pipeline: questions -> model run -> scores -> run folder
    grading/   images, containers, the grader, ``check``, aicrowd.json, the leaderboard
    training/  LoRA / QLoRA fine-tuning into an adapter the transformers baseline loads
    cli/       ``python -m submission``: one module per command, the logging set-up, the reporter

What every part uses stays here: ``errors`` (the kit's one error family, "did you mean"), ``interface``
(``ShopBenchBaseModel``, the participant interface), ``card`` (the grader's card as exported to the
model's process), ``cuda`` (the driver and CUDA's view of the cards, read without a CUDA context),
``environment`` (where the kit is, its ``SHOPBENCH_*`` variables, what a run records about the machine),
``yamlio`` (the one YAML reader), ``loading`` (finding the participant's model class), ``jsonio`` (strict,
UTF-8-safe JSON writing) and ``fileio`` (every file written through a fresh temporary file and a rename,
never through a link or a FIFO). Dependencies point one way: scoring and the backends at the bottom,
harness above scoring, then reports, evaluate, grading and training, and cli on top. Nothing here imports
the participant's ``models/``.

Participants read this package but never need to edit it; the organiser's grader uses the same code.
"""

__version__ = "0.1.0"
