#!/usr/bin/env python3
"""Run your model on a ShopBench split under the grader's limits, score it exactly as the grader does,
and write the results."""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from submission import environment
from submission.errors import KitError
from submission.harness.gpu import host_gpu_count
from submission.harness.outcome import HarnessOptions, ModelSpec, Progress, RunOutcome
from submission.harness.output_dir import fresh_folder, locked
from submission.harness.predictions import PREDICTIONS_FILE, answered_and_outputs, outputs_for, read_records
from submission.harness.profiles import (
    DEFAULT_PROFILE,
    Limits,
    Profile,
    budget_track_for,
    get_profile,
    limits_for,
    load_profiles,
)
from submission.harness.runner import run_model
from submission.jsonio import write_json
from submission.loading import load_model_class
from submission.reports.run_folder import base_meta, write_run_folder, written_files
from submission.reports.runstats import run_meta
from submission.reports.table import format_table
from submission.scoring.data import Question, load_questions, sample_questions
from submission.scoring.scorer import ScoringConfig, check_scoring_ready, score_outputs

log = logging.getLogger("local_evaluation")
ROOT = Path(__file__).resolve().parent
OFFICIAL_DATA = ROOT / "data" / "development.json"
SAMPLE_DATA = ROOT / "data" / "sample.json"
RUN_FILE = "run.json"  # what --resume needs to continue a run: data, limit, model, seed
RESUMED_ARGS = ("data", "limit", "sample", "model", "seed")

EPILOG = """examples:
  python local_evaluation.py                                   # UserModel on the default split, phase2 limits
  python local_evaluation.py --model models.dummy_model:DummyModel --sample 20   # 20 questions across every task
  python local_evaluation.py --limit 20                        # the first 20 lines of the data file
  python local_evaluation.py --data data/development.json --output-dir runs/try1 --seed 1
  python local_evaluation.py --profile phase1 --track amazon-kdd-cup-24-multi-lingual-abilities
  python local_evaluation.py --time-scale 0.5                  # a GPU twice as fast as a T4: halve every time limit
  python local_evaluation.py --no-limits --output-dir runs/debug   # no deadlines, no memory caps
  python local_evaluation.py --resume runs/try1                # continue after a crash, kill -9 or timeout
  python local_evaluation.py --predictions runs/try1/predictions.jsonl   # re-score, no model

exit status: 0 all answered within the limits; 1 the run ended with a failure verdict (timeout,
gpu_memory, memory, model_error, bad_output, crashed; results.json holds it and partial scores);
2 bad input or configuration.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="questions in development format (JSON Lines); default: "
                        "data/development.json if present, else the kit's sample split data/sample.json")
    parser.add_argument("--model", help="model class as 'module:Class' (default: UserModel of models/user_config.py)")
    parser.add_argument("--output-dir", help="folder for results.json and predictions.jsonl (default: runs/<time>)")
    subset = parser.add_mutually_exclusive_group()
    subset.add_argument("--limit", type=int, metavar="N", help="only the first N questions of the data file (they "
                        "may cover only some tasks and tracks)")
    subset.add_argument("--sample", type=int, metavar="N", help="N questions spread across every task, drawn with "
                        "--seed (the rows are recorded in results.json): a quick check of the whole pipeline")
    parser.add_argument("--seed", type=int, help="seed for the model's randomness (default: 0)")
    parser.add_argument("--predictions", help="score this predictions.jsonl (needs 'row' and 'output'); no model is loaded")
    parser.add_argument("--embedding-model", action="append", default=[], metavar="METRIC=PATH",
                        help="local folder of a metric's embedding model, e.g. "
                        "'multilingual-sent-transformer=/models/paraphrase-multilingual-MiniLM-L12-v2'")
    add_limit_args(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and the kit's own frames in "
                        "the model's tracebacks")
    args = parser.parse_args(argv)
    for flag in ("limit", "sample"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    if args.resume and args.predictions:
        parser.error("--resume continues a model run; --predictions scores without a model: choose one")
    return args


def add_limit_args(parser: argparse.ArgumentParser) -> None:
    """The grader's limits: shared with the container entry point."""
    group = parser.add_argument_group("grader limits (submission/harness/profiles.yaml)")
    group.add_argument("--profile", default=DEFAULT_PROFILE,
                       help=f"hardware profile whose limits apply: phase2, phase1, cpu or your own (default: {DEFAULT_PROFILE})")
    group.add_argument("--profiles-file", action="append", default=[], metavar="YAML",
                       help="add (or replace) profiles from this YAML file, same shape as submission/harness/profiles.yaml")
    group.add_argument("--track", help="track whose time budget applies (a challenge_id, e.g. "
                       "amazon-kdd-cup-24-shopping-knowledge-reasoning); default: the data's only track, "
                       "else amazon-kdd-cup-24-all-around")
    group.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                       help="multiply every time limit by X, e.g. 0.5 on a GPU twice as fast as a T4 (default: 1)")
    group.add_argument("--no-limits", action="store_true",
                       help="enforce no limit (time, RAM, GPU), for debugging; everything is still measured")
    group.add_argument("--resume", metavar="OUTPUT_DIR",
                       help="continue the run in OUTPUT_DIR after its last complete batch")


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


def apply_resume(args: argparse.Namespace) -> Path:
    """--resume DIR: the output folder, with --data/--limit/--model/--seed taken from DIR/run.json
    unless given (and refused when given differently)."""
    out_dir = Path(args.resume)
    if args.output_dir and Path(args.output_dir).resolve() != out_dir.resolve():
        raise KitError(f"--resume {args.resume} writes to that folder; drop --output-dir {args.output_dir}")
    if not (out_dir / PREDICTIONS_FILE).is_file():
        raise KitError(f"--resume {args.resume}: no {PREDICTIONS_FILE} there; is it the output folder of a run?")
    run_file = out_dir / RUN_FILE
    saved = json.loads(run_file.read_text(encoding="utf-8")) if run_file.is_file() else {}
    for key in RESUMED_ARGS:
        given = getattr(args, key)
        if given is None:
            setattr(args, key, saved.get(key))
        elif key in saved and saved[key] is not None and str(given) != str(saved[key]):
            raise KitError(f"--{key} {given} differs from the interrupted run's {saved[key]} ({run_file}); "
                           f"resume with the same --{key} or drop it")
    return out_dir


@dataclass(frozen=True)
class Setup:
    data_path: Path
    questions: list[Question]
    config: ScoringConfig
    resolved: dict[str, str]
    out_dir: Path
    profile: Profile
    limits: Limits


def prepare(args: argparse.Namespace) -> Setup:
    out_dir = apply_resume(args) if args.resume else None
    args.seed = 0 if args.seed is None else args.seed
    data_path = choose_data(args.data)
    questions = select(load_questions(data_path, require_truth=True), args, data_path)
    if not args.predictions:  # a wrong model name is found now, before any folder or progress bar
        load_model_class(args.model, ROOT)
    config = ScoringConfig(embedding_models=embedding_paths(args.embedding_model))
    resolved = check_scoring_ready(questions, config)
    profile = get_profile(args.profile, load_profiles(*args.profiles_file))
    limits = limits_for(profile, budget_track_for(questions, args.track), args.time_scale, not args.no_limits)
    if out_dir is None and args.output_dir:
        out_dir = Path(args.output_dir)
    elif out_dir is None:  # runs/<time>, or runs/<time>-2 when another run started in the same second
        out_dir = fresh_folder(ROOT / "runs", time.strftime("%Y%m%d-%H%M%S"))
    return Setup(data_path, questions, config, resolved, out_dir, profile, limits)


def select(questions: list[Question], args: argparse.Namespace, data_path: Path) -> list[Question]:
    """The questions of the run: all, the first --limit N, or --sample N spread across the tasks."""
    if args.sample is not None:
        picked = sample_questions(questions, args.sample, args.seed)
        print(f"--sample {args.sample}: {len(picked)} questions from {covered(picked)} (seed {args.seed})")
        return picked
    if args.limit is None or args.limit >= len(questions):
        return questions
    picked = questions[: args.limit]
    print(f"--limit {args.limit}: the first {args.limit} questions of {data_path.name}, from {covered(picked)} "
          f"of its {covered(questions)}; --sample {args.limit} spreads them across every task")
    return picked


def covered(questions: list[Question]) -> str:
    tasks, tracks = {q.task_name for q in questions}, {q.track for q in questions}
    return f"{len(tasks)} task{'s' * (len(tasks) != 1)} and {len(tracks)} track{'s' * (len(tracks) != 1)}"


class ProgressBar:
    """tqdm with the projected run time against the budget: 'projected 52.3 of 70 min'."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="predicting", unit="q", file=sys.stderr)
        self.shown = 0.0

    def __call__(self, progress: Progress) -> None:
        self.bar.update(progress.answered - self.bar.n)
        now = time.monotonic()
        if progress.projected_s is None or now - self.shown < 0.5:
            return
        self.shown = now
        text = f"projected {progress.projected_s / 60:.1f}"
        text += f" of {progress.budget_s / 60:g} min" if progress.budget_s else " min"
        if progress.budget_s and progress.projected_s > progress.budget_s:
            text += " (over budget)"
        self.bar.set_postfix_str(text)

    def close(self) -> None:
        self.bar.close()


def write_run_file(args: argparse.Namespace, setup: Setup) -> None:
    run = {"data": str(setup.data_path), "limit": args.limit, "sample": args.sample, "model": args.model,
           "seed": args.seed}
    write_json(setup.out_dir / RUN_FILE, run)


def predict(args: argparse.Namespace, setup: Setup) -> RunOutcome:
    seed_everything(args.seed)
    if not args.resume:
        write_run_file(args, setup)
    spec = ModelSpec(model=args.model, repo=str(ROOT), seed=args.seed)
    print(f"limits: {describe_limits(setup.limits)}")
    bar = ProgressBar(len(setup.questions))
    try:
        options = HarnessOptions(resume=bool(args.resume), full_traceback=args.verbose)
        outcome = run_model(spec, setup.questions, setup.out_dir, setup.limits, options, on_progress=bar)
    finally:
        bar.close()
    if not (setup.out_dir / RUN_FILE).is_file():  # the model removed it: --resume needs it
        write_run_file(args, setup)
    return outcome


def describe_limits(limits: Limits) -> str:
    if not limits.enforced:
        return f"none (--no-limits; profile {limits.profile} only labels the run)"
    budget = f"{limits.budget_s / 60:g} min for {limits.budget_track.replace('amazon-kdd-cup-24-', '')}"
    scale = f", time scale {limits.time_scale:g}" if limits.time_scale != 1 else ""
    return (f"profile {limits.profile}: {limits.seconds_per_sample:g} s per sample, budget {budget}{scale}, "
            f"RAM {limits.ram_bytes / 1e9:g} GB, {limits.gpus} GPU(s){gpu_note(limits.gpus)}")


def gpu_note(wanted: int | None) -> str:
    """What a profile's GPUs mean on this machine, when it has fewer."""
    here = host_gpu_count() if wanted else 0
    if not wanted or here >= wanted:
        return ""
    if here == 0:
        return (" (this machine has none: the model runs on the CPU, the GPU limits are not emulated, and the time "
                "limits are a T4's, so a CPU run may time out where the grader's would not: --no-limits or "
                "--time-scale X to explore)")
    return f" (this machine has {here}: the model sees {here}, each capped as a T4)"


def answered_outputs(args, setup: Setup) -> tuple[list[Question], dict[int, str], list[dict]]:
    """The questions that have an output, their outputs, and the records they came from."""
    source = args.predictions or str(setup.out_dir / PREDICTIONS_FILE)
    records = read_records(source)
    if args.predictions:
        return setup.questions, outputs_for(records, setup.questions, source), records
    return (*answered_and_outputs(records, setup.questions, source), records)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, interrupted)  # a SIGTERM ends the run like Ctrl-C: the model's processes too
    setup = None
    try:
        setup = prepare(args)
        with locked(setup.out_dir):
            return run_and_write(args, setup)
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted_at(setup)}", file=sys.stderr)
        return 130


def interrupted_at(setup: Setup | None) -> str:
    path = setup.out_dir / PREDICTIONS_FILE if setup is not None else None
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return "no question was answered"
    return f"every complete batch is in {path}; continue with --resume {setup.out_dir}"


def interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def run_and_write(args: argparse.Namespace, setup: Setup) -> int:
    started = time.perf_counter()
    outcome = None if args.predictions else predict(args, setup)
    answered, outputs, records = answered_outputs(args, setup)
    predicted = time.perf_counter()
    result = score_outputs(answered, outputs, setup.config) if answered else None
    scored = time.perf_counter()
    timings = {"predict_s": round(predicted - started, 3), "score_s": round(scored - predicted, 3),
               "batches": len(outcome.batches) if outcome else 0}
    write_outputs(args, setup, outcome, (answered, outputs, records, result), timings)
    return 0 if outcome is None or outcome.verdict.ok else 1


def write_outputs(args, setup: Setup, outcome: RunOutcome | None, scoring: tuple, timings: dict) -> None:
    answered, outputs, records, result = scoring
    meta = {
        **base_meta(setup.data_path, len(setup.questions), args.limit, args.seed, args.model, args.predictions),
        **({"sample": {"n": args.sample, "seed": args.seed, "rows": [q.row for q in setup.questions]}}
           if args.sample else {}),
        "embedding_models": setup.resolved, "timings": timings, **environment.describe(ROOT),
    }
    if outcome is not None:
        harness = run_meta(outcome, setup.profile, records, setup.questions)
        meta = {**meta, **harness, "timings": {**timings, **harness["timings"]}}
    results = write_run_folder(setup.out_dir, answered, outputs, records, result, meta, args.seed)
    report(outcome, result, answered, setup, results.get("intervals"))


def report(outcome: RunOutcome | None, result, answered: list[Question], setup: Setup, intervals=None) -> None:
    if outcome is not None and not outcome.verdict.ok:
        verdict = outcome.verdict
        what = "the model broke the interface" if verdict.status == "bad_output" else verdict.status
        kept = (f"every answer made before it is in {setup.out_dir / PREDICTIONS_FILE}; continue with --resume "
                f"{setup.out_dir}" if outcome.n_answered else "no question was answered before it")
        print(f"error: {what}: {verdict.detail}\n{kept}", file=sys.stderr)
        print(f"\nPARTIAL RESULTS: {len(answered)} of {len(setup.questions)} questions answered "
              f"(verdict: {verdict.status})")
    if result is not None:
        print(format_table(result, intervals))
    if outcome is not None:
        print(f"\nverdict: {outcome.verdict}")
    files = written_files(result) + ([RUN_FILE] if (setup.out_dir / RUN_FILE).is_file() else [])
    print(f"\nwrote {', '.join(files)} in {setup.out_dir}")


if __name__ == "__main__":
    sys.exit(main())
