#!/usr/bin/env python3
"""ServedModel next to TransformersModel: the same SmolLM2 weights, questions and batches, in one run.

Three models answer the official development split (``../shared/data/development.json``; the script
exits 77, "skipped", when it is absent, and never copies it):

- ``in-process``: ``TransformersModel`` as configured by ``models/baseline.yaml``;
- ``served``: ``ServedModel`` as configured by ``models/served.yaml`` (``transformers serve``, one
  request at a time on the server's inference thread);
- ``served + CB``: the same with ``--continuous-batching`` (the server batches concurrent requests).

Batches are formed as the grader forms them (``submission.harness.batches.iter_batches``, batch size 16)
and the models take turns on each batch (who goes first rotates), so load from other processes on a
shared machine falls on all alike. Reported: questions per second (answering only; each server's start-up
is reported apart), the all-around score, the task mean, the track scores, parse failures, the
multiple-choice method each served model chose, and how many answers equal the in-process model's.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from submission.harness.batches import iter_batches
from submission.scoring.data import TRACKS, Question, load_questions
from submission.scoring.scorer import ScoringConfig, check_scoring_ready, score_outputs

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "development.json"
SKIPPED = 77
EXAMPLES = """examples:
  python -m benchmarks.served_vs_inprocess                          # the development split, three models
  python -m benchmarks.served_vs_inprocess --limit 32 --no-continuous-batching
  python -m benchmarks.served_vs_inprocess --data data/sample.json --json runs/served.json
"""


@dataclass
class Answers:
    outputs: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    per_track: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def build_models(continuous_batching: bool) -> tuple[dict, dict[str, float]]:
    """The models by label, and each one's start-up seconds (weights loaded, server ready)."""
    from models.served_model import ServedModel
    from models.transformers_model import TransformersModel
    from submission.backends.served.config import load_served_settings

    models, startup = {}, {}
    launch = load_served_settings(ServedModel.config_file).launch
    plans = [("in-process", TransformersModel, {}), ("served", ServedModel, {})]
    if continuous_batching:
        plans.append(("served + CB", ServedModel, {"launch": launch + " --continuous-batching"}))
    for label, make, overrides in plans:
        started = time.perf_counter()
        models[label] = make(**overrides)
        startup[label] = time.perf_counter() - started
    return models, startup


def answer_interleaved(models: dict, questions: list[Question]) -> dict[str, Answers]:
    """Every question by every model, batch by batch in the grader's order, taking turns."""
    from tqdm import tqdm

    answers = {label: Answers() for label in models}
    labels = list(models)
    with tqdm(total=len(questions), desc="all models", unit="q", file=sys.stderr) as bar:
        for index, batch in enumerate(iter_batches(models[labels[0]], questions)):
            prompts = {"prompt": [q.prompt for q in batch]}
            shift = index % len(labels)
            for label in labels[shift:] + labels[:shift]:
                started = time.perf_counter()
                outputs = models[label].batch_predict(prompts, batch[0].is_multiple_choice)
                seconds = time.perf_counter() - started
                answers[label].seconds += seconds
                for question, output in zip(batch, outputs, strict=True):
                    answers[label].outputs[question.row] = output
                    answers[label].per_track[question.track] += seconds / len(batch)
            bar.update(len(batch))
    return answers


def measure(label: str, answers: Answers, reference: Answers, questions: list[Question], model,
            startup_s: float, config: ScoringConfig) -> dict:
    result = score_outputs(questions, answers.outputs, config)
    mc_rows = [q.row for q in questions if q.is_multiple_choice]
    open_rows = [q.row for q in questions if not q.is_multiple_choice]

    def same(rows: list[int]) -> int:
        return sum(answers.outputs[r] == reference.outputs[r] for r in rows)

    return {
        "model": label, "startup_s": startup_s, "seconds": answers.seconds,
        "questions_per_second": len(questions) / answers.seconds, "all_around": result.all_around,
        "task_mean": result.task_mean, "tracks": dict(result.tracks),
        "seconds_per_track": dict(answers.per_track),
        "parse_failures": sum(task.parse_failures for task in result.tasks.values()),
        "multiple_choice_method": getattr(model, "mc_method", "argmax"),
        "same_as_in_process": {"multiple_choice": [same(mc_rows), len(mc_rows)],
                               "open": [same(open_rows), len(open_rows)]},
    }


def table(path: Path, n: int, rows: list[dict]) -> str:
    labels = [row["model"] for row in rows]
    lines = [f"\n{path}: {n} questions", f"{'':40}" + "".join(f"{label:>18}" for label in labels)]

    def add(name: str, values, fmt: str = "{:.3f}") -> None:
        lines.append(f"{name:40}" + "".join(f"{fmt.format(v) if not isinstance(v, str) else v:>18}" for v in values))

    add("questions per second", [r["questions_per_second"] for r in rows])
    add("seconds, all questions", [r["seconds"] for r in rows], "{:.1f}")
    add("start-up seconds (not counted above)", [r["startup_s"] for r in rows], "{:.1f}")
    add("all-around score", [r["all_around"] for r in rows])
    add("task mean", [r["task_mean"] for r in rows])
    for track in TRACKS:
        if track in rows[0]["tracks"]:
            add(f"  score, {track.removeprefix('amazon-kdd-cup-24-')}", [r["tracks"][track] for r in rows])
    add("parse failures", [r["parse_failures"] for r in rows], "{:d}")
    add("multiple choice by", [r["multiple_choice_method"] for r in rows], "{}")
    for kind in ("multiple_choice", "open"):
        add(f"answers equal to in-process, {kind.replace('_', ' ')}",
            [f"{r['same_as_in_process'][kind][0]}/{r['same_as_in_process'][kind][1]}" for r in rows], "{}")
    base = rows[0]["questions_per_second"]
    for row in rows[1:]:
        lines.append(f"{row['model']}: {row['questions_per_second'] / base:.2f}x the in-process questions per second; "
                     f"all-around {row['all_around'] - rows[0]['all_around']:+.3f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"questions in development format (default: {DEFAULT_DATA})")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--no-continuous-batching", action="store_true", help="skip the served + CB model")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from submission.cli import output

    output.setup()  # the kit's one logging set-up
    if not args.data.is_file():
        print(f"skipped: {args.data} is not present (the official development split is distributed by the "
              f"competition; this script never copies it); pass --data FILE", file=sys.stderr)
        return SKIPPED
    questions = load_questions(args.data, require_truth=True)[: args.limit]
    config = ScoringConfig()
    check_scoring_ready(questions, config)
    models, startup = build_models(not args.no_continuous_batching)
    try:
        answers = answer_interleaved(models, questions)
        rows = [measure(label, answers[label], answers["in-process"], questions, models[label], startup[label], config)
                for label in models]
    finally:
        for model in models.values():
            if hasattr(model, "close"):
                model.close()
    print(table(args.data, len(questions), rows))
    if args.json:
        import torch

        report = {"data": str(args.data), "n": len(questions), "machine": platform.processor() or platform.machine(),
                  "torch_threads": torch.get_num_threads(), "models": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
