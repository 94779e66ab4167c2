"""Backends: how the kit drives a model, for the transformers baseline, served models and fine-tuning.

Owns:
    settings.py               ``ModelSettings``: the settings every backend shares (weights, device, dtype,
                              batch size, token budget, chat template, system prompt), ``GenerationBudget``,
                              and the one loader (``load_settings``: YAML file, overrides, validation)
    transformers_settings.py  ``TransformersSettings``: quantisation, LoRA, attention, batching (models/baseline.yaml)
    transformers.py           ``TransformersModel``: the transformers baseline (loading, multiple choice by
                              logits, generation within each task type's budget)
    hardware.py               the profile's card rules: device, dtype, attention kernel, ``max_memory``
    prompting.py              a prompt -> the text a model reads (inference and training share it)
    task_inference.py         a prompt's task type, and raw text shaped into what its parser accepts
    weights.py                where weights come from: a folder, or SmolLM2 converted once
                              (``python -m submission.backends.weights``)
    quiet.py                  ``peft_quietly``: the two library messages that do not concern a run (bitsandbytes'
                              CPU kernel notice, a transformers FutureWarning), dropped where peft is used
    served/                   ``ServedModel``: a model answered by an OpenAI-compatible server (client,
                              answers, launcher, guard, gpu, config, model; see its ``__init__``)

May import: the shared top-level modules (``errors``, ``interface``, ``card``, ``environment``,
``yamlio``, ``jsonio``, ``_lazy``); never scoring, harness, grading, reports, training or the
participant's ``models/``. torch and transformers are imported by the modules that need them, when used.

Public names (the stable surface a participant may use and subclass; everything else may change):
    TransformersModel, TransformersSettings, ServedModel, ServedSettings, ModelSettings, GenerationBudget,
    load_settings. A subclass names its default settings file in the class attribute ``config_file``
    (``models/transformers_model.py`` and ``models/served_model.py`` do), and may override
    ``batch_predict``, ``get_batch_size``, ``run_info`` and ``close`` like any ShopBench model; both read and
    check their settings file in the interface's optional ``check_settings()`` classmethod, loading nothing.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "transformers": ("TransformersModel",),
    "transformers_settings": ("TransformersSettings",),
    "served.model": ("ServedModel",),
    "served.config": ("ServedSettings",),
    "settings": ("ModelSettings", "GenerationBudget", "load_settings"),
})
