#!/usr/bin/env python3
"""Training speed of ``python -m submission finetune``: tokens per second for the baseline's model.

Runs the fine-tuning pipeline (``submission.training``) on the kit's sample split with the default
base (SmolLM2-135M-Instruct from models/baseline.yaml, float32 on CPU) and the default LoRA settings of
models/finetune.yaml, for a fixed number of optimizer steps, into a temporary folder. Tokens are the
non-padding tokens of the batches (prompt and answer: what the forward and backward passes compute);
the time runs from the trainer's first step to its last (model loading and saving excluded).

Two ways of computing the same loss take turns, run after run: the vocabulary logits of the answer
positions only (what the command does: ``logits_to_keep``) and of every position (a plain causal-LM
loss); their speed ratio is printed, and their loss curves must agree.

    python -m benchmarks.finetune_speed [--steps 8] [--batch-size 4] [--max-seq-length 512] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from submission.training.pipeline import Options, prepare, run

ROOT = Path(__file__).resolve().parents[1]


def write_config(folder: Path, args: argparse.Namespace) -> Path:
    path = folder / "finetune.yaml"
    path.write_text(f"base_config: {ROOT / 'models' / 'baseline.yaml'}\nbatch_size: {args.batch_size}\n"
                    f"gradient_accumulation_steps: 1\nmax_seq_length: {args.max_seq_length}\n"
                    f"save_steps: {args.steps}\n", encoding="utf-8")
    return path


def one_run(args: argparse.Namespace, answer_logits_only: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="finetune-speed-") as tmp:
        config = write_config(Path(tmp), args)
        job = prepare(Options((args.data,), Path(tmp) / "adapter", config=str(config), max_steps=args.steps))
        return run(job, answer_logits_only=answer_logits_only).training


def describe(t: dict, label: str, batch_size: int) -> str:
    return (f"{label}: {t['steps']['done']} steps of {batch_size} examples on {t['precision']['device']} "
            f"({t['precision']['dtype']}), {t['time']['session_tokens']:,} tokens in {t['time']['train_s']:.1f} s: "
            f"{t['time']['tokens_per_s']:,.0f} training tokens/s ({t['time']['train_s'] / t['steps']['done']:.2f} s "
            f"per step); loss {t['loss_curve'][0]['loss']:.3f} -> {t['loss_curve'][-1]['loss']:.3f}")


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--data", default=str(ROOT / "data" / "sample.json"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    import torch

    print(f"CPU threads: {torch.get_num_threads()} (of {os.cpu_count()} cores); cuda: {torch.cuda.is_available()}; "
          f"load average before: {os.getloadavg()[0]:.2f} (other processes slow every figure down)")
    rates: dict[str, list[float]] = {"answer logits": [], "all logits": []}
    for attempt in range(args.repeat):
        answer, every = one_run(args, True), one_run(args, False)
        for label, t in (("answer logits", answer), ("all logits", every)):
            rates[label].append(t["time"]["tokens_per_s"])
            print(f"run {attempt + 1}, {describe(t, label, args.batch_size)}")
        drift = max(abs(a["loss"] - b["loss"]) for a, b in zip(answer["loss_curve"], every["loss_curve"], strict=True))
        print(f"run {attempt + 1}: largest difference between the two loss curves: {drift:.2e}; "
              f"load average now: {os.getloadavg()[0]:.2f}")
    lora = answer["config"]["lora"]
    print(f"\ntraining tokens/s, SmolLM2-135M-Instruct, LoRA r={lora['r']} on {', '.join(lora['target_modules'])}, "
          f"median of {args.repeat}: {median(rates['answer logits']):,.0f} (answer logits only, the command's way), "
          f"{median(rates['all logits']):,.0f} (all logits); ratio "
          f"{median(rates['answer logits']) / median(rates['all logits']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
