#!/usr/bin/env python3
"""Harness overhead: how long questions take to pass through the harness with a model that answers at once.

Target (the issue): 20,000 questions in under 5 s on 2 cores, scoring excluded. Reported separately:
  startup   starting the model's process until the model is ready (interpreter, imports, constructor)
  loop      the rest: batches out, answers back, checked, appended to predictions.jsonl (flushed per batch)
  total     run_model from call to return, under the phase2 limits (deadlines, RSS polling, RLIMIT_AS)
and, for comparison, the in-process loop (run_predictions) without a child process or limits. Then one
large-answer case: 16 answers of 1 MB in one batch through the harness, against writing the same bytes
to a file in this process (the transfer must stay linear, and outside the batch's recorded latency).

    python -m benchmarks.harness_overhead                 # 20,000 questions, batch sizes 16, 8 and 1
    python -m benchmarks.harness_overhead --questions 2000 --batch-size 4 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from submission.harness.batches import run_predictions
from submission.harness.outcome import ModelSpec
from submission.harness.predictions import PredictionWriter
from submission.harness.profiles import limits_for, load_profiles
from submission.harness.runner import run_model
from submission.scoring.data import ALL_AROUND, Question

ROOT = Path(__file__).resolve().parents[1]


class InstantModel:
    """Answers every prompt with "0" at once; its batch size comes from SHOPBENCH_BENCH_BATCH."""

    def __init__(self):
        import os

        self.batch_size = int(os.environ.get("SHOPBENCH_BENCH_BATCH", "16"))

    def get_batch_size(self) -> int:
        return self.batch_size

    def batch_predict(self, batch, is_multiple_choice):
        return ["0"] * len(batch["prompt"])


class LargeAnswerModel(InstantModel):
    """Answers every prompt at once with SHOPBENCH_BENCH_ANSWER_MB megabytes of text."""

    def batch_predict(self, batch, is_multiple_choice):
        import os

        size = int(float(os.environ.get("SHOPBENCH_BENCH_ANSWER_MB", "1")) * 1_000_000)
        return ["0" + "x" * (size - 1)] * len(batch["prompt"])


def questions(n: int) -> list[Question]:
    """Prompts of about a kilobyte, a quarter multiple choice, like ShopBench's mix."""
    body = "Instructions: answer the question about the product below.\n" + "Product title and details. " * 36
    return [Question(row, f"{body}\nQuestion {row}:", row % 4 == 0) for row in range(n)]


def child_run(qs: list[Question], batch_size: int) -> dict[str, float]:
    limits = limits_for(load_profiles()["phase2"], ALL_AROUND)
    spec = ModelSpec(model="benchmarks.harness_overhead:InstantModel", repo=str(ROOT),
                     env={"SHOPBENCH_BENCH_BATCH": str(batch_size)})
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        outcome = run_model(spec, qs, out, limits)
        total = time.perf_counter() - started
    assert outcome.verdict.ok and outcome.n_answered == len(qs), outcome.verdict
    return {"total_s": total, "startup_s": outcome.startup_s, "loop_s": outcome.wall_s - outcome.startup_s}


def in_process_run(qs: list[Question], batch_size: int) -> float:
    model = InstantModel()
    model.batch_size = batch_size
    with tempfile.TemporaryDirectory() as out, PredictionWriter(Path(out) / "p.jsonl", fsync_every_s=1.0) as writer:
        started = time.perf_counter()
        run_predictions(model, qs, writer)
        return time.perf_counter() - started


def measure(n: int, batch_size: int, repeat: int) -> dict:
    qs = questions(n)
    runs = [child_run(qs, batch_size) for _ in range(repeat)]
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    return {
        "questions": n, "batch_size": batch_size, "repeat": repeat,
        "total_s": round(median["total_s"], 3), "total_max_s": round(max(r["total_s"] for r in runs), 3),
        "startup_s": round(median["startup_s"], 3), "loop_s": round(median["loop_s"], 3),
        "loop_us_per_question": round(median["loop_s"] / n * 1e6, 1),
        "in_process_s": round(statistics.median(in_process_run(qs, batch_size) for _ in range(repeat)), 3),
    }


def large_answers(n: int, megabytes: float, repeat: int) -> dict:
    """``n`` answers of ``megabytes`` MB in one batch through the harness (model process to predictions.jsonl),
    against writing the same bytes to a file in this process (json lines, flushed and fsynced)."""
    qs = questions(n)
    limits = limits_for(load_profiles()["phase2"], ALL_AROUND)
    spec = ModelSpec(model="benchmarks.harness_overhead:LargeAnswerModel", repo=str(ROOT),
                     env={"SHOPBENCH_BENCH_BATCH": str(n), "SHOPBENCH_BENCH_ANSWER_MB": str(megabytes)})
    harness, plain, latency = [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            outcome = run_model(spec, qs, out, limits)
            assert outcome.verdict.ok and outcome.answers_cut == 0, outcome.verdict
            harness.append(outcome.wall_s - outcome.startup_s)
            latency.append(outcome.batches[0].latency_s)
            answer = "0" + "x" * (int(megabytes * 1_000_000) - 1)
            started = time.perf_counter()
            with PredictionWriter(Path(out) / "plain.jsonl") as writer:
                writer.write_batch({"row": q.row, "output": answer} for q in qs)
            plain.append(time.perf_counter() - started)
    return {"answers": n, "megabytes_each": megabytes, "harness_s": round(statistics.median(harness), 3),
            "file_write_s": round(statistics.median(plain), 3), "batch_latency_s": round(statistics.median(latency), 4),
            "ratio": round(statistics.median(harness) / statistics.median(plain), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=20_000, help="how many questions (default: 20,000)")
    parser.add_argument("--batch-size", type=int, action="append", help="batch size(s) (default: 16, 8, 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per batch size; medians reported (default: 3)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    results = [measure(args.questions, size, args.repeat) for size in args.batch_size or [16, 8, 1]]
    print(f"{'questions':>9} {'batch':>5} {'total s':>8} {'max s':>6} {'startup s':>9} {'loop s':>7} "
          f"{'us/q':>6} {'in-process s':>12}")
    for r in results:
        print(f"{r['questions']:>9,} {r['batch_size']:>5} {r['total_s']:>8.3f} {r['total_max_s']:>6.3f} "
              f"{r['startup_s']:>9.3f} {r['loop_s']:>7.3f} {r['loop_us_per_question']:>6.1f} {r['in_process_s']:>12.3f}")
    large = large_answers(16, 1.0, args.repeat)
    print(f"\nlarge answers: {large['answers']} x {large['megabytes_each']:g} MB in one batch: harness (model process "
          f"to predictions.jsonl) {large['harness_s']:.3f} s, writing the same bytes to a file {large['file_write_s']:.3f} s "
          f"({large['ratio']:g}x); the batch's recorded latency {large['batch_latency_s']:.4f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "large_answers": large}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
