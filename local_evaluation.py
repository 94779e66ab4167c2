#!/usr/bin/env python3
"""Run your model on a ShopBench split, score it exactly as the grader does, and write the results."""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

from submission import environment
from submission.data import Question, load_questions
from submission.errors import KitError, ModelOutputError
from submission.harness import BatchRecord, run_predictions
from submission.loading import load_model_class
from submission.predictions import PREDICTIONS_FILE, PredictionWriter, outputs_for, read_records, write_scored
from submission.report import RESULTS_FILE, format_table, results_dict, scored_records, write_json
from submission.scoring import ScoringConfig, check_scoring_ready, score_outputs

log = logging.getLogger("local_evaluation")
ROOT = Path(__file__).resolve().parent
OFFICIAL_DATA = ROOT / "data" / "development.json"
SAMPLE_DATA = ROOT / "data" / "sample.json"

EPILOG = """examples:
  python local_evaluation.py                                   # UserModel on the default split
  python local_evaluation.py --model models.dummy_model:DummyModel --limit 20
  python local_evaluation.py --data data/development.json --output-dir runs/try1 --seed 1
  python local_evaluation.py --predictions runs/try1/predictions.jsonl   # re-score, no model
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="questions in development format (JSON Lines); default: "
                        "data/development.json if present, else the kit's sample split data/sample.json")
    parser.add_argument("--model", help="model class as 'module:Class' (default: UserModel of models/user_config.py)")
    parser.add_argument("--output-dir", help="folder for results.json and predictions.jsonl (default: runs/<time>)")
    parser.add_argument("--limit", type=int, help="only the first N questions of the data file")
    parser.add_argument("--seed", type=int, default=0, help="seed for the model's randomness (default: 0)")
    parser.add_argument("--predictions", help="score this predictions.jsonl (needs 'row' and 'output'); no model is loaded")
    parser.add_argument("--embedding-model", action="append", default=[], metavar="METRIC=PATH",
                        help="local folder of a metric's embedding model, e.g. "
                        "'multilingual-sent-transformer=/models/paraphrase-multilingual-MiniLM-L12-v2'")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def choose_data(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if OFFICIAL_DATA.is_file():
        print(f"data: {OFFICIAL_DATA} (the official development split)")
        return OFFICIAL_DATA
    print(f"data: {SAMPLE_DATA} (the kit's sample split; put the official development.json at "
          f"{OFFICIAL_DATA} to use it)")
    return SAMPLE_DATA


def embedding_paths(pairs: list[str]) -> dict[str, str]:
    paths = {}
    for pair in pairs:
        metric, sep, path = pair.partition("=")
        if not sep or not path:
            raise KitError(f"--embedding-model '{pair}': expected METRIC=PATH")
        paths[metric.strip()] = path.strip()
    return paths


def seed_everything(seed: int) -> None:
    """Give the participant's model a seeded start: SHOPBENCH_SEED, and the global RNGs it may use."""
    os.environ["SHOPBENCH_SEED"] = str(seed)
    random.seed(seed)
    for name in ("numpy", "torch"):
        module = sys.modules.get(name)
        if name == "numpy" and module:
            module.random.seed(seed)
        if name == "torch" and module:
            module.manual_seed(seed)


def predict(args, questions: list[Question], out_dir: Path) -> tuple[dict[int, str], list[BatchRecord]]:
    from tqdm import tqdm

    seed_everything(args.seed)
    model_class = load_model_class(args.model, ROOT)
    log.info("building %s", model_class.__name__)
    model = model_class()
    with PredictionWriter(out_dir / PREDICTIONS_FILE) as writer, tqdm(
        total=len(questions), desc="predicting", unit="q", file=sys.stderr
    ) as bar:
        batches = run_predictions(model, questions, writer, on_batch=lambda b: bar.update(len(b.rows)))
    records = read_records(out_dir / PREDICTIONS_FILE)
    return outputs_for(records, questions, str(out_dir / PREDICTIONS_FILE)), batches


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        data_path = choose_data(args.data)
        questions = load_questions(data_path, require_truth=True)[: args.limit]
        config = ScoringConfig(embedding_models=embedding_paths(args.embedding_model))
        resolved = check_scoring_ready(questions, config)
        out_dir = Path(args.output_dir or ROOT / "runs" / time.strftime("%Y%m%d-%H%M%S"))
        out_dir.mkdir(parents=True, exist_ok=True)
        batches: list[BatchRecord] = []
        if args.predictions:
            records = read_records(args.predictions)
            outputs = outputs_for(records, questions, args.predictions)
            extra = {r["row"]: {k: v for k, v in r.items() if k in ("batch", "latency_s")} for r in records}
        else:
            outputs, batches = predict(args, questions, out_dir)
            extra = {row: {"batch": b.index, "latency_s": round(b.latency_s, 6)} for b in batches for row in b.rows}
        predicted = time.perf_counter()
        result = score_outputs(questions, outputs, config)
        scored = time.perf_counter()
    except ModelOutputError as exc:
        print(f"error: the model broke the interface: {exc}\nevery answer made before it is in "
              f"{out_dir / PREDICTIONS_FILE}", file=sys.stderr)
        return 1
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_scored(out_dir / PREDICTIONS_FILE, scored_records(questions, outputs, result, extra))
    meta = {
        "data_file": str(data_path), "n_questions": len(questions), "limit": args.limit, "seed": args.seed,
        "model": args.model or "models.user_config:UserModel", "predictions_from": args.predictions,
        "embedding_models": resolved,
        "timings": {"predict_s": round(predicted - started, 3), "score_s": round(scored - predicted, 3),
                    "batches": len(batches)},
        **environment.describe(ROOT),
    }
    write_json(out_dir / RESULTS_FILE, results_dict(result, meta))
    print(format_table(result))
    print(f"\nwrote {out_dir / RESULTS_FILE} and {out_dir / PREDICTIONS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
