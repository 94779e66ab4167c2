#!/usr/bin/env python3
"""The transformers baseline next to a starter-kit-style loop: same process, weights and questions.

The starter-kit style is what the KDD Cup 2024 starter kit's LLM baseline does, on transformers: every
prompt prefixed with its system prompt (no chat template), one ``generate`` per batch in data order,
1 new token for multiple choice and 100 for everything else, greedy, no constrained decoding, the raw
text returned. The baseline is ``models.transformers_model.TransformersModel`` as configured by
``models/baseline.yaml``. Both get the same batches, formed as the grader forms them
(``submission.harness.batches.iter_batches``), of the baseline's batch size.

The two take turns on each batch, so that load from other processes on a shared machine falls on
both alike. Reported per data file: questions per second, seconds per track (each batch's time shared
equally by its questions), the all-around score and the task mean, for both; and, independent of the
machine, the model's forward passes (one per prefill and per decoding step) and the token positions
they computed, padding included. On a CPU the positions (prefill) set the time; on a GPU, where a
forward pass of a small batch costs about the same whatever its length, the passes do.
"""

from __future__ import annotations

import argparse
import json
import logging
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

EXAMPLES = """examples:
  python -m benchmarks.baseline_vs_starter_kit                  # development split and sample split
  python -m benchmarks.baseline_vs_starter_kit --data data/sample.json --limit 20
  python -m benchmarks.baseline_vs_starter_kit --json runs/benchmark.json
"""
DEFAULT_DATA = (ROOT.parent / "shared" / "data" / "development.json", ROOT / "data" / "sample.json")
STARTER_SYSTEM_PROMPT = (
    "You are a helpful online shopping assistant. Please answer the following question about online "
    "shopping and follow the given instructions.\n\n"
)
STARTER_MC_TOKENS, STARTER_OPEN_TOKENS = 1, 100

log = logging.getLogger("benchmark")


class StarterKitStyle:
    """The starter kit's baseline loop on an already loaded transformers model and tokenizer."""

    def __init__(self, model, tokenizer, batch_size: int) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def get_batch_size(self) -> int:
        return self.batch_size

    def batch_predict(self, batch: dict, is_multiple_choice: bool) -> list[str]:
        import torch

        texts = [STARTER_SYSTEM_PROMPT + prompt for prompt in batch["prompt"]]
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.model.device)
        max_new_tokens = STARTER_MC_TOKENS if is_multiple_choice else STARTER_OPEN_TOKENS
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                         pad_token_id=self.tokenizer.pad_token_id)
        return self.tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


@dataclass(frozen=True)
class Measured:
    """One model's run over one data file."""

    seconds: float
    questions_per_second: float
    seconds_per_track: dict[str, float]
    all_around: float
    task_mean: float
    tracks: dict[str, float]
    parse_failures: int
    forward_passes: int
    token_positions: int


@dataclass
class Timing:
    outputs: dict[int, str] = field(default_factory=dict)
    per_track: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    seconds: float = 0.0
    forward_passes: int = 0  # calls of the model's forward: one per decoding step, one per prefill
    token_positions: int = 0  # input positions those calls computed, padding included


def count_forwards(module, timings: dict[str, Timing], current: list[str]):
    """A forward pre-hook crediting each forward call and its input positions to ``current[0]``."""

    def hook(_module, args, kwargs):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        timing = timings[current[0]]
        timing.forward_passes += 1
        timing.token_positions += int(input_ids.numel()) if input_ids is not None else 0

    return module.register_forward_pre_hook(hook, with_kwargs=True)


def predict_interleaved(models: dict, questions: list[Question]) -> dict[str, Timing]:
    """Answer every question with every model, batch by batch in the grader's order.

    The models take turns on each batch (who goes first alternates), so a neighbour's load on a
    shared machine falls on both alike.
    """
    from tqdm import tqdm

    timings = {label: Timing() for label in models}
    labels = list(models)
    first = models[labels[0]]
    current = [labels[0]]
    handle = count_forwards(first.model, timings, current)  # both loops run this same module
    with tqdm(total=len(questions), desc="both models", unit="q", file=sys.stderr) as bar:
        for index, batch in enumerate(iter_batches(first, questions)):
            prompts = {"prompt": [q.prompt for q in batch]}
            for label in labels if index % 2 == 0 else labels[::-1]:
                current[0] = label
                started = time.perf_counter()
                answers = models[label].batch_predict(prompts, batch[0].is_multiple_choice)
                seconds = time.perf_counter() - started
                timing = timings[label]
                timing.seconds += seconds
                for question, answer in zip(batch, answers, strict=True):
                    timing.outputs[question.row] = answer
                    timing.per_track[question.track] += seconds / len(batch)
            bar.update(len(batch))
    handle.remove()
    return timings


def measure(timing: Timing, questions: list[Question], config: ScoringConfig) -> Measured:
    """Score one model's answers and put them next to its timings."""
    result = score_outputs(questions, timing.outputs, config)
    return Measured(
        seconds=timing.seconds, questions_per_second=len(questions) / timing.seconds,
        seconds_per_track=dict(timing.per_track), all_around=result.all_around, task_mean=result.task_mean,
        tracks=dict(result.tracks), parse_failures=sum(task.parse_failures for task in result.tasks.values()),
        forward_passes=timing.forward_passes, token_positions=timing.token_positions,
    )


def warm_up(baseline, starter, questions: list[Question]) -> None:
    """One small multiple-choice and one open batch through each loop, so neither pays first-call costs."""
    for is_mc in (True, False):
        group = [q for q in questions if q.is_multiple_choice == is_mc][:2]
        if group:
            for model in (baseline, starter):
                model.batch_predict({"prompt": [q.prompt for q in group]}, group[0].is_multiple_choice)


def short(track: str) -> str:
    return track.removeprefix("amazon-kdd-cup-24-")


def table(name: str, n: int, baseline: Measured, starter: Measured) -> str:
    """A plain-text comparison of the two runs on one data file."""
    lines = [f"\n{name}: {n} questions", f"{'':44}{'baseline':>12}{'starter-kit style':>20}"]

    def row(label: str, a: float, b: float, fmt: str = "{:.3f}") -> None:
        lines.append(f"{label:44}{fmt.format(a):>12}{fmt.format(b):>20}")

    row("questions per second", baseline.questions_per_second, starter.questions_per_second)
    row("seconds, all questions", baseline.seconds, starter.seconds, "{:.1f}")
    for track in TRACKS:
        if track in baseline.seconds_per_track:
            row(f"  seconds, {short(track)}", baseline.seconds_per_track[track], starter.seconds_per_track[track],
                "{:.1f}")
    row("all-around score", baseline.all_around, starter.all_around)
    row("task mean", baseline.task_mean, starter.task_mean)
    for track in TRACKS:
        if track in baseline.tracks:
            row(f"  score, {short(track)}", baseline.tracks[track], starter.tracks[track])
    row("parse failures", baseline.parse_failures, starter.parse_failures, "{:d}")
    row("forward passes (prefills + decoding steps)", baseline.forward_passes, starter.forward_passes, "{:d}")
    row("token positions computed (padding included)", baseline.token_positions, starter.token_positions, "{:d}")
    ratio = baseline.questions_per_second / starter.questions_per_second
    gain = baseline.all_around - starter.all_around
    lines.append(f"speed-up: {ratio:.2f}x questions per second; all-around {gain:+.3f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", type=Path,
                        help="a data file in development format (repeatable); default: the development split "
                        "at ../shared/data/development.json and data/sample.json, those present")
    parser.add_argument("--config", type=Path, help="baseline YAML (default: models/baseline.yaml)")
    parser.add_argument("--limit", type=int, help="only the first N questions of each file")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def data_files(requested: list[Path] | None) -> list[Path]:
    if requested:
        return requested
    present = [path for path in DEFAULT_DATA if path.is_file()]
    for path in DEFAULT_DATA:
        if not path.is_file():
            print(f"skipping {path}: not present", file=sys.stderr)
    return present


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from submission.cli import output

    output.setup()  # the kit's one logging set-up
    import torch

    from models.transformers_model import TransformersModel

    paths = data_files(args.data)
    if not paths:
        print("no data: pass --data FILE", file=sys.stderr)
        return 2
    baseline = TransformersModel(config_path=args.config)
    starter = StarterKitStyle(baseline.model, baseline.tokenizer, baseline.get_batch_size())
    config = ScoringConfig()
    report = {"device": str(baseline.model.device), "torch_threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(), "batch_size": baseline.get_batch_size(),
              "weights": baseline.config.weights, "files": {}}
    for path in paths:
        questions = load_questions(path, require_truth=True)[: args.limit]
        check_scoring_ready(questions, config)
        warm_up(baseline, starter, questions)
        timings = predict_interleaved({"baseline": baseline, "starter-kit style": starter}, questions)
        measured = {label: measure(timing, questions, config) for label, timing in timings.items()}
        print(table(str(path), len(questions), measured["baseline"], measured["starter-kit style"]))
        report["files"][str(path)] = {"n": len(questions), **{k: vars(v) for k, v in measured.items()}}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
