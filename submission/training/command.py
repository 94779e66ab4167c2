"""``python -m submission finetune``: LoRA / QLoRA on ShopBench-format data, into an adapter the baseline loads.

Prints the plan, a progress bar with the loss and tokens per second (stderr), what it wrote, the
snippet for ``models/baseline.yaml`` and, with ``--eval-data``, the comparison of the base model and
the adapter on that file (``python -m submission compare``'s table).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
from pathlib import Path

from ..errors import KitError
from ..scoring.data import ALL_AROUND
from .evaluation import compare_folders, evaluate, html_path_for
from .outputs import baseline_settings, snippet, write_settings
from .pipeline import Finished, Job, Options, prepare, run, write_training

PROG = "python -m submission finetune"
EVAL_FOLDER = "eval"

EPILOG = """examples:
  python -m submission finetune --data my_train.json --output-dir adapters/try1
  python -m submission finetune --data a.json --data b.json --output-dir adapters/try2 --eval-data data/development.json
  python -m submission finetune --data my_train.json --output-dir adapters/try1 --resume    # after an interruption
  python -m submission finetune --data data/sample.json --output-dir adapters/smoke --max-steps 5 --merge
  python -m submission finetune --data my_train.json --output-dir adapters/qlora --config models/my_qlora.yaml

data: JSON Lines in development format (input_field, output_field, task_name, task_type, metric,
is_multiple_choice, track); the model learns to answer each prompt with the string that the official
parser reads back as output_field (generation: the first reference).

OUTPUT_DIR receives adapter_config.json and adapter_model.safetensors (the adapter), baseline.yaml (the
baseline's settings with it), training.json, loss_curve.png, checkpoints/ (what --resume continues),
merged/ with --merge, and with --eval-data eval/base/ and eval/adapter/ (run folders, as
local_evaluation.py writes them) and eval/compare.html.

exit status: 0 trained (and evaluated within the limits); 1 an evaluation ended with a failure verdict;
2 bad input or configuration; 130 interrupted (continue with --resume).
"""


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True, metavar="FILE",
                        help="training questions in development format; repeat for several files")
    parser.add_argument("--output-dir", required=True, metavar="DIR",
                        help="the adapter folder to write, e.g. adapters/try1")
    parser.add_argument("--eval-data", metavar="FILE", help="after training, evaluate the base model and the adapter "
                        "on this file and compare them; training questions also in it are refused")
    parser.add_argument("--config", metavar="YAML", help="fine-tuning settings (default: models/finetune.yaml)")
    parser.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps (overrides epochs)")
    parser.add_argument("--seed", type=int, metavar="S", help="seed of LoRA's initialisation, dropout and data order "
                        "(default: the config's)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in DIR/checkpoints")
    parser.add_argument("--merge", action="store_true", help="also write the base with the adapter merged in, as "
                        "safetensors, in DIR/merged")
    parser.add_argument("--allow-overlap", action="store_true", help="train on questions that are also in --eval-data")
    parser.add_argument("--no-limits", action="store_true", help="evaluate without the grader's limits and train "
                        "without its card's rules (default: phase2's, as local_evaluation.py: no bfloat16 or "
                        "FlashAttention-2, whatever this GPU allows); everything is still measured")
    parser.add_argument("-v", "--verbose", action="store_true", help="info logging (transformers, peft, the kit)")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    return Options(tuple(args.data), Path(args.output_dir), args.eval_data, args.config, args.max_steps, args.seed,
                   args.resume, args.merge, args.allow_overlap, not args.no_limits)


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


def evaluate_and_compare(finished: Finished) -> int:
    """Base model, then adapter, on --eval-data; print the comparison; record it in training.json."""
    job, out = finished.job, finished.job.options.output_dir
    release(finished)
    folder = out / EVAL_FOLDER
    base_yaml = write_settings(folder / "base.yaml", baseline_settings(job.base, None, "none"), "The base model")
    runs = {}
    for label, config_path in (("base", base_yaml), ("adapter", out / "baseline.yaml")):
        outcome, results = evaluate(job.evaluation, config_path, folder / label, label)
        runs[label] = {"run_folder": str(folder / label), "verdict": outcome.verdict.status,
                       "all_around": results.get("all_around")}
        print(f"{label}: verdict {outcome.verdict}", file=sys.stderr if not outcome.verdict.ok else sys.stdout)
    if any(run["all_around"] is None for run in runs.values()):
        print("error: an evaluation answered no question; see the run folders' results.json", file=sys.stderr)
        return 1
    table, summary = compare_folders(folder / "base", folder / "adapter", html_path_for(folder))
    print(f"\nevaluation on {job.evaluation.data_path}: A = base model, B = with the adapter\n{table}")
    print(f"\nwrote {folder / 'base'}, {folder / 'adapter'} and {html_path_for(folder)}")
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


def finetune_main(argv: list[str], prog: str = PROG) -> int:
    """Train, write, evaluate; 0, 1 (an evaluation failed its limits), 2 (bad input) or 130 (interrupted)."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.max_steps is not None and args.max_steps < 1:
        build_parser(prog).error("--max-steps must be at least 1")
    try:
        with card_rules_applied(not args.no_limits):  # the precision plan, then the training
            job = prepare(options_from(args))
            print(describe_job(job), flush=True)
            finished = run(job)
        print(describe_training(finished), flush=True)
        return evaluate_and_compare(finished) if job.evaluation else 0
    except KitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last checkpoint is in {Path(args.output_dir) / 'checkpoints'}; continue with "
              "the same command and --resume", file=sys.stderr)
        return 130
