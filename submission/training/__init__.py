"""Training: fine-tune the baseline's model with LoRA or QLoRA on ShopBench-format data, into an adapter
``models/baseline.yaml`` loads (``python -m submission finetune``).

Owns:
    config.py          ``FinetuneConfig``: models/finetune.yaml (LoRA, steps, batch, sequence length),
                       unknown keys refused
    examples.py        data files -> training examples: the baseline's prompt format, the official-parser target,
                       loss on the answer only, left truncation; the overlap check against the evaluation file
    model_setup.py     device, dtype and QLoRA by the baseline's hardware rules (models/hardware.py); LoRA on the base
    trainer.py         transformers' ``Trainer``: checkpoints, resume, seed, accumulation, the progress bar
    outputs.py         training.json, the loss curve, the adapter's baseline.yaml and snippet, merged weights
    pipeline.py        ``prepare`` (every check before a model loads) and ``run`` (train, write)
    evaluation.py      the evaluation pipeline on --eval-data with the base model and the adapter, and their
                       comparison
    baseline_model.py  ``ConfiguredBaseline``: the baseline built from the YAML named in the environment
                       (what the harness runs)
    command.py         ``finetune``: the command's steps (plan, train, evaluate and compare) for
                       ``python -m submission finetune`` (its command line is ``submission/cli/finetune.py``)

May import: scoring, harness, reports and evaluate (the pipeline of its evaluations), and the participant-side helpers of models/ (prompting.py,
hardware.py, baseline_config.py, weights.py, and transformers_model.py's loaders); never grading.
Nothing in the kit but the command line imports this package (the harness names ``ConfiguredBaseline`` by its path).

Public names: FinetuneConfig, load_finetune_config, Options, prepare, run, finetune.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "config": ("FinetuneConfig", "load_finetune_config"),
    "pipeline": ("Options", "prepare", "run"),
    "command": ("finetune",),
})
