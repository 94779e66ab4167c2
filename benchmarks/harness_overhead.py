#!/usr/bin/env python3
"""Harness overhead: the judge outside the model's process (this tree) against the judge inside it (the
harness before issue 19, commit ``BASELINE_REV``), side by side in one run, with a model that answers at once.

Both harnesses run the same model (``InstantModel``, written to a temporary folder) on the same questions,
each in a fresh Python process of its own, alternately (before, now, before, now, ...), under the phase 2
limits. The judge outside drives the model's loop (a request per batch, the batch size asked before each
batch, every answer checked); the judge inside let the model's process form the batches and stream them.
Reported per batch size, as medians:

  total     run_model from call to return (scoring excluded)
  startup   starting the model's process tree until the model is ready
  loop      the rest: batches out, answers back, checked, appended to predictions.jsonl
  ratio     now / before, for total and loop (the issue's target: within 1.5x on batches of 16 and of 1)

Then one large-answer case: 16 answers of 1 MB in one batch, now and before (the model's process to
predictions.jsonl). The baseline tree is extracted with ``git archive`` from this repository.

    python -m benchmarks.harness_overhead                  # 20,000 questions, batch sizes 16 and 1, 3 runs each
    python -m benchmarks.harness_overhead --questions 2000 --batch-size 4 --repeat 5 --baseline 334a88b
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REV = "334a88b"  # the last commit whose model process decided its batches and timed itself

MODELS = '''
import os


class InstantModel:
    """Answers every prompt with "0" at once; its batch size comes from SHOPBENCH_BENCH_BATCH."""

    def __init__(self):
        self.batch_size = int(os.environ.get("SHOPBENCH_BENCH_BATCH", "16"))

    def get_batch_size(self):
        return self.batch_size

    def batch_predict(self, batch, is_multiple_choice):
        return ["0"] * len(batch["prompt"])


class LargeAnswerModel(InstantModel):
    """Answers every prompt at once with SHOPBENCH_BENCH_ANSWER_MB megabytes of text."""

    def batch_predict(self, batch, is_multiple_choice):
        size = int(float(os.environ.get("SHOPBENCH_BENCH_ANSWER_MB", "1")) * 1_000_000)
        return ["0" + "x" * (size - 1)] * len(batch["prompt"])
'''

# One run in a fresh process; only names both trees have. argv: models folder, model, questions, batch, answer MB.
DRIVER = textwrap.dedent('''
    import json, sys, tempfile, time
    from submission.harness.outcome import ModelSpec
    from submission.harness.profiles import limits_for, load_profiles
    from submission.harness.runner import run_model
    from submission.scoring.data import ALL_AROUND, Question

    folder, model, n, batch, megabytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    body = "Instructions: answer the question about the product below.\\n" + "Product title and details. " * 36
    questions = [Question(row, f"{body}\\nQuestion {row}:", row % 4 == 0) for row in range(n)]
    spec = ModelSpec(model=f"bench_models:{model}", repo=folder,
                     env={"SHOPBENCH_BENCH_BATCH": batch, "SHOPBENCH_BENCH_ANSWER_MB": megabytes})
    limits = limits_for(load_profiles()["phase2"], ALL_AROUND)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        outcome = run_model(spec, questions, out, limits)
        total = time.perf_counter() - started
    assert outcome.verdict.ok and outcome.n_answered == n, outcome.verdict
    print(json.dumps({"total_s": total, "startup_s": outcome.startup_s, "loop_s": outcome.wall_s - outcome.startup_s,
                      "batch_latency_s": outcome.batches[0].latency_s}))
''')


def baseline_tree(rev: str, into: Path) -> Path:
    """The repository at ``rev`` (its tracked files), extracted into ``into``."""
    archive = into / "baseline.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), rev], check=True)
    tree = into / f"baseline-{rev}"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def one_run(tree: Path, models: Path, model: str, n: int, batch: int, megabytes: float = 1.0) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", DRIVER, str(models), model, str(n), str(batch), str(megabytes)],
                         env=env, cwd=str(tree), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the run in {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(trees: dict[str, Path], models: Path, model: str, n: int, batch: int, repeat: int,
            megabytes: float = 1.0) -> dict:
    """``repeat`` runs of each tree, alternating; medians per tree and the ratios now / before."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(repeat):
        for name, tree in trees.items():
            runs[name].append(one_run(tree, models, model, n, batch, megabytes))
    medians = {name: {key: statistics.median(r[key] for r in found) for key in found[0]}
               for name, found in runs.items()}
    result = {"questions": n, "batch_size": batch, "repeat": repeat}
    for name, values in medians.items():
        result.update({f"{name}_{key}": round(value, 4) for key, value in values.items()})
        result[f"{name}_total_all_s"] = [round(r["total_s"], 3) for r in runs[name]]
    result["ratio_total"] = round(medians["now"]["total_s"] / medians["before"]["total_s"], 2)
    result["ratio_loop"] = round(medians["now"]["loop_s"] / medians["before"]["loop_s"], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=20_000, help="how many questions (default: 20,000)")
    parser.add_argument("--batch-size", type=int, action="append", help="batch size(s) (default: 16 and 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tree and batch size; medians (default: 3)")
    parser.add_argument("--baseline", default=BASELINE_REV, help=f"the judge-inside revision (default: {BASELINE_REV})")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shopbench-bench-") as tmp:
        models = Path(tmp) / "models"
        models.mkdir()
        (models / "bench_models.py").write_text(MODELS)
        trees = {"before": baseline_tree(args.baseline, Path(tmp)), "now": ROOT}
        results = [compare(trees, models, "InstantModel", args.questions, size, args.repeat)
                   for size in args.batch_size or [16, 1]]
        large = compare(trees, models, "LargeAnswerModel", 16, 16, args.repeat, 1.0)
    print(f"judge inside (before, {args.baseline}) against judge outside (now), {args.questions:,} questions, "
          f"medians of {args.repeat} runs each, alternating:")
    print(f"{'batch':>5} {'before s':>9} {'now s':>7} {'ratio':>6} {'loop before s':>14} {'loop now s':>11} "
          f"{'ratio':>6} {'startup before/now s':>21}")
    for r in results:
        print(f"{r['batch_size']:>5} {r['before_total_s']:>9.3f} {r['now_total_s']:>7.3f} {r['ratio_total']:>6.2f} "
              f"{r['before_loop_s']:>14.3f} {r['now_loop_s']:>11.3f} {r['ratio_loop']:>6.2f} "
              f"{r['before_startup_s']:>10.3f} / {r['now_startup_s']:.3f}")
    print(f"\nlarge answers, 16 x 1 MB in one batch (the model's process to predictions.jsonl): before "
          f"{large['before_loop_s']:.3f} s, now {large['now_loop_s']:.3f} s ({large['ratio_loop']:g}x); the batch's "
          f"recorded latency before {large['before_batch_latency_s']:.4f} s (the answers' transfer not counted), now "
          f"{large['now_batch_latency_s']:.4f} s (counted: the judge's clock runs to the last byte)")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "large_answers": large}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
