#!/usr/bin/env python3
"""Why the kit's sample split is for testing the pipeline, not for choosing models.

A rule-based model that knows nothing (``EchoModel``: every answer is the prompt itself, shaped by the
baseline's shapers into what the parser reads, and "0" for multiple choice) against the SmolLM2 baseline, on the
kit's sample split and on the official development split, through local_evaluation.py (no limits, seed 0). The
sample split's generation tasks reward repeating the prompt's words, so the echo can score as high as a real
model there.

    python -m benchmarks.sample_split_echo                   # both models, both splits (about 2 minutes)
    python -m benchmarks.sample_split_echo --no-baseline     # the echo only
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import local_evaluation
from submission.backends.task_inference import infer_task_type, shape_output
from submission.interface import ShopBenchBaseModel

ROOT = Path(__file__).resolve().parents[1]

DEV_DATA = ROOT.parent / "shared" / "data" / "development.json"


class EchoModel(ShopBenchBaseModel):
    """Answers every open question with its own prompt, shaped for the task type the baseline infers
    (retrieval and ranking: the listed ids in order; NER: the prompt's first line, cut at commas;
    generation: its first paragraph), and every multiple-choice question with "0"."""

    def get_batch_size(self) -> int:
        return 16

    def batch_predict(self, batch, is_multiple_choice):
        if is_multiple_choice:
            return ["0"] * len(batch["prompt"])
        return [shape_output(infer_task_type(p), p, p) for p in batch["prompt"]]


def all_around(model: str, data: Path) -> dict:
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
        code = local_evaluation.main(["--model", model, "--data", str(data), "--no-limits", "--output-dir", out])
        results = json.loads((Path(out) / "results.json").read_text())
    assert code == 0, f"{model} on {data}: exit status {code}"
    return {"all_around": results["all_around"], "task_mean": results["task_mean"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-baseline", action="store_true", help="run the echo model only")
    args = parser.parse_args(argv)
    splits = {"sample (ours, 55 q)": ROOT / "data" / "sample.json"}
    if DEV_DATA.is_file():
        splits["development (official, 96 q)"] = DEV_DATA
    else:
        print(f"note: {DEV_DATA} is absent: the development split is skipped", file=sys.stderr)
    models = {"echo (rule-based)": "benchmarks.sample_split_echo:EchoModel"}
    if not args.no_baseline:
        models["SmolLM2 baseline"] = "models.transformers_model:TransformersModel"
    print(f"{'model':<20} {'split':<30} {'all-around':>10} {'task mean':>10}")
    for name, model in models.items():
        for split, path in splits.items():
            scores = all_around(model, path)
            print(f"{name:<20} {split:<30} {scores['all_around']:>10.4f} {scores['task_mean']:>10.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
