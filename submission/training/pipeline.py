"""The fine-tuning run from start to end: check everything, train, write the adapter and its records.

``prepare`` reads and checks every input before any model loads (settings, data, targets, overlap with
the evaluation file, the precision plan, the output folder and the checkpoints to resume: see
``output_folder.py``); ``run`` trains and writes the outputs. The command (``command.py``) prints; this
module returns what happened.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.transformers_settings import TransformersSettings, load_transformers_settings
from ..environment import KIT_ROOT, describe
from ..errors import ConfigError, DataError
from ..fileio import replace_file
from .config import DEFAULT_FINETUNE_CONFIG, FinetuneConfig, load_finetune_config
from .evaluation import EvalPlan, plan_evaluation
from .examples import (
    Example,
    PromptFormat,
    Sourced,
    build_examples,
    find_overlap,
    load_training_data,
    overlap_message,
    targets_for,
)
from .model_setup import PrecisionPlan, add_lora, current_plan, load_base
from .output_folder import (
    ADAPTER_FILES,
    CHECKPOINTS,
    RUN_FILE,
    check_for_training,
    checkpoint_progress,
    clear_own_files,
    contents,
    finished_at,
    finished_message,
    refuse_repository_folder,
)
from .outputs import LOSS_CHART, MERGED_FOLDER, TRAINING_FILE, data_entry, loss_chart, merge_into, write_adapter_config
from .trainer import TrainOutcome, TrainRequest, train


@dataclass(frozen=True)
class Options:
    """What the command line asks for."""

    data: tuple[str, ...]
    output_dir: Path
    eval_data: str | None = None
    config: str | None = None
    max_steps: int | None = None
    seed: int | None = None
    resume: bool = False
    merge: bool = False
    allow_overlap: bool = False
    enforce_limits: bool = True  # the evaluations run under the default profile's limits
    overwrite: bool = False  # remove what an earlier fine-tuning run wrote in output_dir first
    evaluate_only: bool = False  # the adapter in output_dir against its base on eval_data; no training


@dataclass(frozen=True)
class Job:
    options: Options
    config: FinetuneConfig
    config_source: str
    base: TransformersSettings
    train: list[Sourced]
    targets: list[str]
    overlap: int
    evaluation: EvalPlan | None
    plan: PrecisionPlan
    identity: dict[str, Any]  # data hashes and settings: recorded, and checked on --resume
    finished: str | None = None  # --resume of a run that already reached its last step: what to say instead


@dataclass
class Finished:
    job: Job
    outcome: TrainOutcome
    training: dict[str, Any]  # what training.json holds
    files: list[str] = field(default_factory=list)


def _base_config(config: FinetuneConfig) -> TransformersSettings:
    try:
        return load_transformers_settings(config.base_config_path)
    except ConfigError as error:
        raise ConfigError(f"base_config: {error}", key="base_config") from None


def prepare(options: Options) -> Job:
    """Every check that needs no model: a bad input fails here, in seconds, with file, line and fix."""
    refuse_repository_folder(options.output_dir)
    config = load_finetune_config(options.config, max_steps=options.max_steps, seed=options.seed)
    base = _base_config(config)
    train_items = load_training_data(options.data)
    targets = targets_for(train_items)
    evaluation = plan_evaluation(options.eval_data, config.seed, options.enforce_limits) if options.eval_data else None
    overlap = find_overlap(train_items, evaluation.questions) if evaluation else []
    if overlap and not options.allow_overlap:
        raise DataError(overlap_message(overlap, len(train_items), str(options.eval_data)))
    identity = {"data": [data_entry(path, sum(item.where.startswith(f"{path}:") for item in train_items))
                         for path in options.data],
                "config": config.as_dict(), "base_config": str(config.base_config_path.resolve())}
    job = Job(options, config, str(options.config or DEFAULT_FINETUNE_CONFIG), base, train_items, targets, len(overlap),
              evaluation, current_plan(config, base), identity)
    return dataclasses.replace(job, finished=check_output(job))


def check_output(job: Job) -> str | None:
    """The output folder may receive this run (output_folder.py); --resume needs checkpoints made from the same
    data and settings. Returns what to say instead of training when a resumed run already finished."""
    out, resume = job.options.output_dir, job.options.resume
    progress = checkpoint_progress(out)
    run_file = out / CHECKPOINTS / RUN_FILE
    saved = json.loads(run_file.read_text(encoding="utf-8")) if progress is not None and run_file.is_file() else None
    finished = finished_at(progress, job.config.max_steps, saved.get("config") if saved else None)
    check_for_training(out, resume, job.options.overwrite, finished)
    if not resume:
        return None
    for key in ("data", "config", "base_config"):
        if saved is not None and _comparable(saved.get(key), key) != _comparable(job.identity[key], key):
            raise ConfigError(f"--resume: the {key.replace('_', ' ')} differ from the interrupted run's "
                              f"({run_file}); resume with the same --data, --config and --seed")
    if finished is None or progress is None:
        return None
    return finished_message(out, progress, finished, all((out / name).is_file() for name in ADAPTER_FILES))


def _comparable(value: Any, key: str) -> Any:
    """The identity without what may change between sessions: max_steps (train further) and paths' spelling."""
    if key == "config" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "max_steps"}
    if key == "data" and isinstance(value, list):
        return [(entry.get("sha256"), entry.get("questions")) for entry in value]
    return value


def load_for_training(job: Job) -> tuple[Path, Any, list[Example], Any]:
    """Seed, tokenizer, examples, base model with fresh LoRA adapters."""
    from transformers import set_seed

    from ..backends.transformers import load_tokenizer
    from ..backends.weights import resolve_weights

    set_seed(job.config.seed)
    folder = resolve_weights(job.base.weights, job.base.base_dir)
    tokenizer = load_tokenizer(folder, job.base.use_chat_template)
    fmt = PromptFormat(job.base.system_prompt, job.base.use_chat_template)
    examples = build_examples(tokenizer, fmt, job.train, job.targets, job.config.max_seq_length)
    model = load_base(folder, job.plan, job.base, job.config.gradient_checkpointing)
    model = add_lora(model, job.config.lora, job.config_source)
    return folder, tokenizer, examples, model


def run(job: Job, answer_logits_only: bool = True) -> Finished:
    """Train and write the adapter, baseline.yaml, training.json and the loss curve (and merged weights).

    ``answer_logits_only=False`` computes the logits of every position, as a plain causal-LM loss does
    (same loss, more time and memory; benchmarks/finetune_speed.py measures both)."""
    out = job.options.output_dir
    if job.options.overwrite:  # checked in prepare: only what an earlier fine-tuning run wrote is there
        clear_own_files(contents(out))
    checkpoints = out / CHECKPOINTS
    checkpoints.mkdir(parents=True, exist_ok=True)
    replace_file(checkpoints / RUN_FILE, json.dumps(job.identity, indent=2) + "\n")
    started = time.time()
    folder, tokenizer, examples, model = load_for_training(job)
    request = TrainRequest(job.config, job.plan, checkpoints, job.options.resume, answer_logits_only)
    outcome = train(model, examples, tokenizer.pad_token_id, request)
    outcome.model.save_pretrained(out)
    files = ["adapter_config.json", "adapter_model.safetensors"]
    write_adapter_config(out, job.base, job.plan.quantization)
    replace_file(out / LOSS_CHART, loss_chart(outcome.loss_curve, f"fine-tuning {out.name}"))
    files += ["baseline.yaml", LOSS_CHART, TRAINING_FILE]
    merged = None
    if job.options.merge:
        merged = merge_into(folder, out, job.plan.dtype, job.plan.device, out / MERGED_FOLDER)
        files.append(f"{MERGED_FOLDER}/")
    training = training_record(job, outcome, examples, folder, (started, merged))
    write_training(out, training)
    return Finished(job, outcome, training, files)


def training_record(job: Job, outcome: TrainOutcome, examples: Sequence, folder: Path, extra: tuple) -> dict[str, Any]:
    started, merged = extra
    return {
        "data": job.identity["data"],
        "eval_data": data_entry(job.evaluation.data_path, len(job.evaluation.questions)) if job.evaluation else None,
        "overlap": {"questions": job.overlap, "allowed": job.options.allow_overlap},
        "config_file": str(Path(job.config_source).resolve()), "config": job.config.as_dict(),
        "base": {"config_file": job.identity["base_config"], "weights": job.base.weights, "weights_folder": str(folder),
                 "use_chat_template": job.base.use_chat_template, "system_prompt": job.base.system_prompt},
        "precision": {"device": job.plan.device, "dtype": job.plan.dtype, "quantization": job.plan.quantization,
                      "mixed_precision": job.plan.mixed_precision, "compute_capability": job.plan.capability},
        "examples": {"count": len(examples), "tokens": sum(len(e.input_ids) for e in examples),
                     "answer_tokens": sum(e.answer_tokens for e in examples),
                     "prompts_cut": sum(e.prompt_cut > 0 for e in examples),
                     "answers_cut": sum(e.answer_cut > 0 for e in examples)},
        "steps": {"done": outcome.global_step, "max": outcome.max_steps, "resumed_from": outcome.resumed_from},
        "loss_curve": outcome.loss_curve,
        "time": {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                 "wall_s": round(time.time() - started, 3), "train_s": round(outcome.session_s, 3),
                 "tokens_seen": outcome.tokens_seen, "session_tokens": outcome.session_tokens,
                 "tokens_per_s": round(outcome.tokens_per_s, 2) if outcome.tokens_per_s else None},
        "adapter": str(job.options.output_dir.resolve()), "merged": str(merged) if merged else None,
        "evaluation": None,
        **describe(KIT_ROOT),
    }


def write_training(out: Path, training: dict[str, Any]) -> None:
    replace_file(out / TRAINING_FILE, json.dumps(training, indent=2, ensure_ascii=False) + "\n")
