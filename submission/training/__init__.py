"""Training: fine-tune the transformers baseline's model with LoRA or QLoRA on ShopBench-format data, into an
adapter ``models/baseline.yaml`` loads (``python -m submission finetune``).

Owns:
    config.py          ``FinetuneConfig``: models/finetune.yaml (LoRA, steps, batch, sequence length), read
                       with ``submission.yamlio`` (unknown keys refused with file and line)
    examples.py        data files -> training examples: the baseline's prompt format, the official-parser target,
                       loss on the answer only, left truncation; the overlap check against the evaluation file
    model_setup.py     device, dtype and QLoRA by the backends' hardware rules (backends/hardware.py); LoRA on the base
    trainer.py         transformers' ``Trainer``: checkpoints, resume, seed, accumulation, the progress bar
    outputs.py         training.json, the loss curve, the adapter's baseline.yaml and snippet, merged weights
    pipeline.py        ``prepare`` (every check before a model loads) and ``run`` (train, write)
    output_folder.py   what --output-dir may hold: refused when not empty (--resume, --overwrite), a finished run
                       not resumed, the repository's own folders refused
    evaluation.py      the evaluation pipeline on --eval-data with the base model and the adapter, and their
                       comparison (a run a limit ended early: scored on what it answered, the limit named)
    reevaluation.py    --evaluate-only: the adapter already in --output-dir against its base, no training
    evaluated_model.py ``EvaluatedModel``: the transformers backend built from the settings YAML named in
                       the environment (what the harness runs for an evaluation)
    command.py         ``finetune``: the command's steps (plan, train, evaluate and compare) for
                       ``python -m submission finetune`` (its command line is ``submission/cli/finetune.py``)

May import: scoring, harness, reports, evaluate (the pipeline of its evaluations) and backends (settings,
hardware, prompting, weights, and the transformers backend's loaders); never grading, nor the
participant's models/. Nothing in the kit but the command line imports this package (the harness names
``EvaluatedModel`` by its path).

Public names: FinetuneConfig, load_finetune_config, Options, prepare, run, finetune.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "config": ("FinetuneConfig", "load_finetune_config"),
    "pipeline": ("Options", "prepare", "run"),
    "command": ("finetune",),
})
