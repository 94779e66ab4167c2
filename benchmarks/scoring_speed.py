#!/usr/bin/env python3
"""How fast the kit scores, next to a plain per-sample grader, on the same predictions, in one run.

The data: the official development split (../shared/data/development.json) repeated --copies times
(215 gives 20,640 predictions, about the size of the full ShopBench), with every copy's generation
outputs and truths made distinct, so that no embedding can be reused across copies. Outputs mix right
answers and the tricky strings of the fidelity tests. Timings exclude loading the embedding model.

    python -m benchmarks.scoring_speed                       # kit: 215 copies; plain loop: 215 copies
    python -m benchmarks.scoring_speed --reference-copies 20  # plain loop on fewer copies, per-row rates
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import reference_grader
from benchmarks.reference_grader import TRICKY, perfect_output
from submission.environment import EMBEDDING_CACHE
from submission.scoring import embeddings
from submission.scoring.data import load_questions
from submission.scoring.embeddings import load_model, resolve_model_path
from submission.scoring.scorer import ScoringConfig, score_outputs

ROOT = Path(__file__).resolve().parents[1]

DEV = ROOT.parent / "shared" / "data" / "development.json"


def replicate(questions, copies: int, seed: int):
    rng = random.Random(seed)
    rows, outputs = [], {}
    for copy in range(copies):
        for q in questions:
            truth = q.truth
            if q.task_type == "generation":
                tag = f" (copy {copy})"
                truth = [t + tag for t in truth] if isinstance(truth, list) else truth + tag
            row = len(rows)
            rows.append(dataclasses.replace(q, row=row, truth=truth))
            answer = rng.choice([perfect_output(rows[-1])] + TRICKY[q.task_type])
            outputs[row] = answer + (f" {copy}" if q.task_type == "generation" else "")
    return rows, outputs


class EmbedTimer:
    """Wraps submission.scoring.embeddings.embed to time the embedding share of scoring."""

    def __init__(self):
        self.seconds, self.texts, self._embed = 0.0, 0, embeddings.embed
        embeddings.embed = self

    def __call__(self, model, texts, *args, **kwargs):
        started = time.perf_counter()
        vectors = self._embed(model, texts, *args, **kwargs)
        self.seconds += time.perf_counter() - started
        self.texts += len(vectors)
        return vectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEV))
    parser.add_argument("--copies", type=int, default=215)
    parser.add_argument("--reference-copies", type=int, default=215, help="copies for the plain loop (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"skipped: {args.data} not found (the official development split lives in ../shared)")
        return 0
    base = load_questions(args.data, require_truth=True)
    path = resolve_model_path("sent-transformer")
    model = load_model(path)
    model.encode(["warm up"])
    config = ScoringConfig(embedding_models={"sent-transformer": str(path)})

    questions, outputs = replicate(base, args.copies, args.seed)
    os.environ[EMBEDDING_CACHE] = tempfile.mkdtemp(prefix="bench-embeddings-")
    kit_times = {}
    for label in ("cold truth cache", "warm truth cache"):
        timer = EmbedTimer()
        started = time.perf_counter()
        ours = score_outputs(questions, outputs, config)
        kit_s = time.perf_counter() - started
        embeddings.embed = timer._embed
        kit_times[label] = kit_s
        print(f"kit scorer, {label}: {len(questions)} predictions in {kit_s:.2f} s "
              f"({len(questions) / kit_s:.0f} rows/s)  all-around {ours.all_around:.6f}")
        print(f"  of which embedding {timer.texts} texts: {timer.seconds:.2f} s "
              f"({timer.texts / max(timer.seconds, 1e-9):.0f} texts/s); everything else: {kit_s - timer.seconds:.2f} s")
    if args.reference_copies:
        ref_q, ref_out = replicate(base, args.reference_copies, args.seed)
        started = time.perf_counter()
        plain = reference_grader.grade(ref_q, ref_out, {"sent-transformer": model})
        ref_s = time.perf_counter() - started
        print(f"plain loop: {len(ref_q)} predictions in {ref_s:.2f} s ({len(ref_q) / ref_s:.0f} rows/s)"
              f"  all-around {float(plain['all_around']):.6f}")
        for label, kit_s in kit_times.items():
            print(f"speed-up, {label} (rows/s): {(len(questions) / kit_s) / (len(ref_q) / ref_s):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
