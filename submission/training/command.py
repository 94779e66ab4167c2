"""The steps of ``python -m submission finetune`` (``submission/cli/finetune.py``): plan, train, evaluate.

``finetune(options, reporter)`` shows the plan, trains (a progress bar with the loss and tokens per
second, on stderr), shows what it wrote and the snippet for ``models/baseline.yaml`` and, with
``--eval-data``, evaluates the base model and the adapter on that file and shows their comparison
(``python -m submission compare``'s table). ``--resume`` of a run that already reached its last step says
so and trains nothing; ``--evaluate-only`` evaluates the adapter already in the folder
(``reevaluation.py``). ``reporter`` is the command's (``cli.output.Reporter``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..scoring.data import ALL_AROUND
from .evaluation import evaluate_pair, html_path_for, show_pair
from .output_folder import EVAL_FOLDER
from .outputs import ADAPTER_CONFIG, baseline_settings, snippet, write_settings
from .pipeline import Finished, Job, Options, prepare, run, write_training
from .reevaluation import evaluate_only

if TYPE_CHECKING:
    from ..evaluate.local import Reporter


def describe_job(job: Job) -> str:
    c, p = job.config, job.plan
    files = ", ".join(f"{e['path']} ({e['questions']})" for e in job.identity["data"])
    steps = f"{c.max_steps} steps" if c.max_steps else f"{c.epochs:g} epochs"
    overlap = f"; {job.overlap} also in --eval-data (--allow-overlap)" if job.overlap else ""
    return (f"data: {len(job.train):,} questions from {files}{overlap}\n"
            f"base: {job.base.weights} ({c.base_config_path}) on {p.device} as {p.dtype}"
            f"{', 4-bit NF4 (QLoRA)' if p.quantization == '4bit' else ''}\n"
            f"LoRA r={c.lora.r} alpha={c.lora.alpha:g} dropout={c.lora.dropout:g} "
            f"on {', '.join(c.lora.target_modules)}; "
            f"{steps}, batch {c.batch_size} x {c.gradient_accumulation_steps} accumulated, lr {c.learning_rate:g}, "
            f"max {c.max_seq_length} tokens, seed {c.seed}" + (" (resuming)" if job.options.resume else ""))


def describe_training(finished: Finished) -> str:
    t, out = finished.training, finished.job.options.output_dir
    ex, curve = t["examples"], t["loss_curve"]
    cut = f"; {ex['prompts_cut']} prompts cut at the left to fit" if ex["prompts_cut"] else ""
    rate = f"{t['time']['tokens_per_s']:,.0f} tokens/s" if t["time"]["tokens_per_s"] else "no step run"
    loss = f"; loss {curve[0]['loss']:.4f} at step {curve[0]['step']} -> {curve[-1]['loss']:.4f} at step " \
           f"{curve[-1]['step']}" if curve else ""
    lines = [f"examples: {ex['count']:,} ({ex['tokens']:,} tokens, {ex['answer_tokens']:,} of them answer tokens "
             f"with loss){cut}",
             f"trained {t['steps']['done']} steps ({t['time']['train_s']:.1f} s this session, {rate}){loss}",
             f"wrote {', '.join(finished.files)} in {out}", "",
             "to use it, put this in models/baseline.yaml (paths relative to models/):",
             snippet(finished.job.base, out, finished.job.plan.quantization,
                     out / "merged" if finished.job.options.merge else None)]
    return "\n".join(lines)


def release(finished: Finished) -> None:
    """Free the trained model's memory (GPU included) before the evaluations load theirs."""
    finished.outcome.model = None
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def evaluate_and_compare(finished: Finished, reporter: Reporter) -> int:
    """Base model, then adapter, on --eval-data; show the comparison; record it in training.json. A run that a
    limit ended early is scored on what it answered (exit status 1)."""
    job, out = finished.job, finished.job.options.output_dir
    release(finished)
    folder = out / EVAL_FOLDER
    base_yaml = write_settings(folder / "base.yaml", baseline_settings(job.base, None, "none"), "The base model")
    evaluation = job.evaluation
    assert evaluation is not None  # called with --eval-data only
    pair = evaluate_pair(evaluation, folder, {"base": base_yaml, "adapter": out / ADAPTER_CONFIG}, reporter)
    show_pair(pair, evaluation, out, reporter)
    finished.training["evaluation"] = pair.record(html_path_for(folder))
    write_training(out, finished.training)
    return 0 if pair.ok else 1


@contextlib.contextmanager
def card_rules_applied(enabled: bool = True) -> Iterator[None]:
    """Train under the grader's card, as the evaluation runs: the default profile's compute capability,
    bfloat16 and FlashAttention-2 rules for backends/hardware.py, in this process's environment while the
    block runs (variables already set are kept)."""
    from ..harness.gpu import card_rules
    from ..harness.profiles import DEFAULT_PROFILE, get_profile, limits_for, load_profiles

    rules = card_rules(limits_for(get_profile(DEFAULT_PROFILE, load_profiles()), ALL_AROUND)) if enabled else {}
    added = {name: value for name, value in rules.items() if value is not None and name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def finetune(options: Options, reporter: Reporter) -> int:
    """Train, write, evaluate (or, with --evaluate-only, evaluate the adapter there); 0, or 1 when an evaluation
    ended with a failure verdict. Bad input raises a KitError before a model loads."""
    if options.evaluate_only:
        return evaluate_only(options, reporter)
    with card_rules_applied(options.enforce_limits):  # the precision plan, then the training
        job = prepare(options)
        if job.finished is not None:  # --resume of a run that already reached its last step
            reporter.result(job.finished)
            return 0
        reporter.result(describe_job(job))
        finished = run(job)
    reporter.result(describe_training(finished))
    if job.evaluation:
        return evaluate_and_compare(finished, reporter)
    if (options.output_dir / EVAL_FOLDER).exists():  # an earlier session's evaluation, of the adapter before this one
        reporter.note(f"{options.output_dir / EVAL_FOLDER} holds the evaluation of this adapter before this session's "
                      f"training; evaluate the new one with --evaluate-only --overwrite --eval-data FILE")
    return 0
