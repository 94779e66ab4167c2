"""The steps of ``python -m submission finetune`` (``submission/cli/finetune.py``): plan, train, evaluate.

``finetune(options, reporter)`` shows the plan, trains (a progress bar with the loss and tokens per
second, on stderr), shows what it wrote and the snippet for ``models/baseline.yaml`` and, with
``--eval-data``, evaluates the base model and the adapter on that file and shows their comparison
(``python -m submission compare``'s table). ``reporter`` is the command's (``cli.output.Reporter``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys

from ..errors import KitError
from ..scoring.data import ALL_AROUND
from .evaluation import compare_folders, evaluate_config, html_path_for
from .outputs import baseline_settings, snippet, write_settings
from .pipeline import Finished, Job, Options, prepare, run, write_training

EVAL_FOLDER = "eval"

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


def evaluate_and_compare(finished: Finished, reporter) -> int:
    """Base model, then adapter, on --eval-data; show the comparison; record it in training.json."""
    job, out = finished.job, finished.job.options.output_dir
    release(finished)
    folder = out / EVAL_FOLDER
    base_yaml = write_settings(folder / "base.yaml", baseline_settings(job.base, None, "none"), "The base model")
    runs = {}
    for label, config_path in (("base", base_yaml), ("adapter", out / "baseline.yaml")):
        evaluated = evaluate_config(job.evaluation, config_path, folder / label, label, reporter)
        verdict = evaluated.outcome.verdict
        runs[label] = {"run_folder": str(folder / label), "verdict": verdict.status,
                       "all_around": evaluated.results.get("all_around")}
        if verdict.ok:
            reporter.result(f"{label}: verdict {verdict}")
        else:
            reporter.error(f"{label}: verdict {verdict}", prefix=False)
    if any(run["all_around"] is None for run in runs.values()):
        reporter.error("an evaluation answered no question; see the run folders' results.json")
        return 1
    table, summary = compare_folders(folder / "base", folder / "adapter", html_path_for(folder))
    reporter.result(f"\nevaluation on {job.evaluation.data_path}: A = base model, B = with the adapter\n{table}")
    reporter.result(f"\nwrote {folder / 'base'}, {folder / 'adapter'} and {html_path_for(folder)}")
    finished.training["evaluation"] = {**summary, "runs": runs, "compare_html": str(html_path_for(folder))}
    write_training(out, finished.training)
    return 0 if all(run["verdict"] == "ok" for run in runs.values()) else 1


@contextlib.contextmanager
def card_rules_applied(enabled: bool = True):
    """Train under the grader's card, as the evaluation runs: the default profile's compute capability,
    bfloat16 and FlashAttention-2 rules for backends/hardware.py, in this process's environment while the
    block runs (variables already set are kept)."""
    from ..harness.gpu import card_rules
    from ..harness.profiles import DEFAULT_PROFILE, get_profile, limits_for, load_profiles

    rules = card_rules(limits_for(get_profile(DEFAULT_PROFILE, load_profiles()), ALL_AROUND)) if enabled else {}
    added = [name for name, value in rules.items() if value is not None and name not in os.environ]
    os.environ.update({name: rules[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def finetune(options: Options, reporter) -> int:
    """Train, write, evaluate; 0, or 1 when an evaluation ended with a failure verdict. Bad input raises a
    KitError before a model loads."""
    with card_rules_applied(options.enforce_limits):  # the precision plan, then the training
        job = prepare(options)
        reporter.result(describe_job(job))
        finished = run(job)
    reporter.result(describe_training(finished))
    return evaluate_and_compare(finished, reporter) if job.evaluation else 0
