"""local_evaluation.py's run: its flags (``LocalOptions``), the default data file, ``--limit`` and
``--sample``, ``--resume`` (run.json), the harness under the profile's limits with a progress bar, and
the closing lines. ``local_run`` is the one call local_evaluation.py makes; the pipeline is ``pipeline``'s.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from .. import environment
from ..cuda import driver_status
from ..environment import KIT_ROOT
from ..errors import KitError
from ..fileio import read_regular
from ..harness.gpu import host_gpu_count, load_nvml
from ..harness.outcome import HarnessOptions, ModelSpec
from ..harness.output_dir import fresh_folder, locked
from ..harness.predictions import PREDICTIONS_FILE
from ..harness.profiles import DEFAULT_PROFILE, Limits, budget_track_for, get_profile, limits_for, load_profiles
from ..jsonio import write_json
from ..loading import check_model_settings, load_model_class
from ..reports.reuse import RUN_FILE, claim_output_dir, clear_run, refuse_output_names
from ..reports.run_folder import written_files
from ..reports.table import format_model_info, format_table
from ..scoring.data import Question, load_questions, sample_questions
from ..scoring.scorer import ScoringConfig, check_scoring_ready
from .pipeline import Evaluated, Evaluation, HarnessRunner, ProgressBar, evaluate

OFFICIAL_DATA = KIT_ROOT / "data" / "development.json"
SAMPLE_DATA = KIT_ROOT / "data" / "sample.json"
RESUMED = ("data", "limit", "sample", "model", "seed")


class Reporter(Protocol):
    """What the run tells the user through (``submission.cli.output.Reporter``)."""

    def info(self, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def result(self, text: str) -> None: ...
    def error(self, text: str, prefix: bool = True) -> None: ...
    def progress(self, total: int, label: str) -> Any: ...  # a tqdm bar



@dataclass(frozen=True)
class LocalOptions:
    """local_evaluation.py's flags (the names are its argparse destinations)."""

    data: str | None = None
    model: str | None = None
    output_dir: str | None = None
    limit: int | None = None
    sample: int | None = None
    seed: int | None = None
    predictions: str | None = None
    embedding_model: Sequence[str] = ()
    profile: str = DEFAULT_PROFILE
    profiles_file: Sequence[str] = ()
    track: str | None = None
    time_scale: float = 1.0
    no_limits: bool = False
    resume: str | None = None
    overwrite: bool = False  # remove the run files of --output-dir first (a folder holding a run is refused)
    verbose: bool = False
    quiet: bool = False


@dataclass(frozen=True)
class LocalPlan:
    options: LocalOptions
    evaluation: Evaluation
    limits: Limits


def local_run(options: LocalOptions, reporter: Reporter) -> int:
    """local_evaluation.py: prepare, run the model under the limits (or score --predictions), write the run
    folder, print the table; 0 all answered within the limits, 1 a failure verdict, 130 interrupted. Bad
    input raises KitError before any folder is made or model runs."""
    plan = None
    try:
        plan = prepare_local(options, reporter)
        with locked(plan.evaluation.out_dir):
            if options.overwrite:
                clear_run(plan.evaluation.out_dir)
            evaluated = evaluate(plan.evaluation, None if options.predictions else local_runner(plan, reporter))
            if not options.predictions:
                write_run_file(plan)  # again: the model may have removed or changed it, and --resume needs it
    except KeyboardInterrupt:
        reporter.error(f"\ninterrupted: {interrupted_at(plan)}", prefix=False)
        return 130
    report_local(evaluated, plan.evaluation, reporter)
    return 0 if evaluated.ok else 1


def prepare_local(options: LocalOptions, reporter: Reporter) -> LocalPlan:
    """The options with --resume's applied, the questions, the checks that need no model run, the folder."""
    out_dir = None
    if options.resume:  # nothing there is read before its names are checked: no link followed, no FIFO waited on
        out_dir = Path(options.resume)
        refuse_output_names(out_dir)
        options = apply_resume(options)
        if options.data:
            reporter.info(f"data: {options.data} (the interrupted run's, from {out_dir / RUN_FILE})")
    elif options.output_dir:  # a folder that holds a run is refused now, before anything runs
        check_output_dir(options)
    seed = 0 if options.seed is None else options.seed
    options = replace(options, seed=seed)
    data_path = Path(options.data) if options.data else default_data(reporter)
    questions = select(load_questions(data_path, require_truth=True), options, data_path, reporter)
    if not options.predictions:  # a wrong model name or setting is found now, before any folder or progress bar
        check_model_settings(load_model_class(options.model, KIT_ROOT), options.model)
    scoring = ScoringConfig(embedding_models=embedding_paths(options.embedding_model))
    check_scoring_ready(questions, scoring)
    profile = get_profile(options.profile, load_profiles(*options.profiles_file))
    limits = limits_for(profile, budget_track_for(questions, options.track), options.time_scale,
                        not options.no_limits)
    if out_dir is None:  # runs/<time>, or runs/<time>-2 when another run started in the same second
        out_dir = Path(options.output_dir) if options.output_dir else \
            fresh_folder(KIT_ROOT / "runs", time.strftime("%Y%m%d-%H%M%S"))
    sample = {"sample": {"n": options.sample, "seed": seed, "rows": [q.row for q in questions]}} \
        if options.sample else {}
    evaluation = Evaluation(tuple(questions), data_path, out_dir, options.model, seed, profile, scoring,
                            options.limit, Path(options.predictions) if options.predictions else None, sample)
    return LocalPlan(options, evaluation, limits)


def check_output_dir(options: LocalOptions) -> None:
    """--output-dir holding a run: refused unless --overwrite (--resume named when it can continue it)."""
    if options.output_dir is None:
        return
    out_dir = Path(options.output_dir)
    if options.overwrite and options.predictions and Path(options.predictions).resolve() == \
            (out_dir / PREDICTIONS_FILE).resolve():
        raise KitError(f"--predictions {options.predictions} is the predictions.jsonl of --output-dir {out_dir}, "
                       "which --overwrite removes first; score it into another --output-dir")
    claim_output_dir(out_dir, options.overwrite, resume_flag=not options.predictions)


def apply_resume(options: LocalOptions) -> LocalOptions:
    """--resume DIR: --data/--limit/--sample/--model/--seed from DIR/run.json unless given (refused when
    given differently)."""
    if options.resume is None:
        return options
    out_dir = Path(options.resume)
    if options.output_dir and Path(options.output_dir).resolve() != out_dir.resolve():
        raise KitError(f"--resume {options.resume} writes to that folder; drop --output-dir {options.output_dir}")
    if not (out_dir / PREDICTIONS_FILE).is_file():
        raise KitError(f"--resume {options.resume}: no {PREDICTIONS_FILE} there; is it the output folder of a run?")
    run_file = out_dir / RUN_FILE
    saved = json.loads(read_regular(run_file)) if run_file.is_file() else {}
    for key in RESUMED:
        given = getattr(options, key)
        if given is None:
            recorded: dict[str, Any] = {key: saved.get(key)}
            options = replace(options, **recorded)
        elif key in saved and saved[key] is not None and str(given) != str(saved[key]):
            raise KitError(f"--{key} {given} differs from the interrupted run's {saved[key]} ({run_file}); "
                           f"resume with the same --{key} or drop it")
    return options


def default_data(reporter: Reporter) -> Path:
    if OFFICIAL_DATA.is_file():
        reporter.info(f"data: {OFFICIAL_DATA} (the official development split)")
        return OFFICIAL_DATA
    reporter.info(f"data: {SAMPLE_DATA} (the kit's sample split; put the official development.json at "
                  f"{OFFICIAL_DATA} to use it)")
    return SAMPLE_DATA


def select(questions: list[Question], options: LocalOptions, data_path: Path, reporter: Reporter) -> list[Question]:
    """The questions of the run: all, the first --limit N, or --sample N spread across the tasks."""
    if options.sample is not None:
        picked = sample_questions(questions, options.sample, options.seed or 0)
        reporter.info(f"--sample {options.sample}: {len(picked)} questions from {covered(picked)} "
                      f"(seed {options.seed})")
        return picked
    if options.limit is None or options.limit >= len(questions):
        return questions
    picked = questions[: options.limit]
    reporter.info(f"--limit {options.limit}: the first {options.limit} questions of {data_path.name}, from "
                  f"{covered(picked)} of its {covered(questions)}; --sample {options.limit} spreads them across "
                  "every task")
    return picked


def covered(questions: Sequence[Question]) -> str:
    tasks, tracks = {q.task_name for q in questions}, {q.track for q in questions}
    return f"{len(tasks)} task{'s' * (len(tasks) != 1)} and {len(tracks)} track{'s' * (len(tracks) != 1)}"


def embedding_paths(pairs: Sequence[str]) -> dict[str, str]:
    paths = {}
    for pair in pairs:
        metric, sep, path = pair.partition("=")
        if not sep or not path:
            raise KitError(f"--embedding-model '{pair}': expected METRIC=PATH")
        paths[metric.strip()] = path.strip()
    return paths


def seed_everything(seed: int) -> None:
    """Give the participant's model a seeded start: SHOPBENCH_SEED, and the global RNGs it may use."""
    os.environ[environment.SEED] = str(seed)
    random.seed(seed)
    for name in ("numpy", "torch"):
        module = sys.modules.get(name)
        if name == "numpy" and module:
            module.random.seed(seed)
        if name == "torch" and module:
            module.manual_seed(seed)


def write_run_file(plan: LocalPlan) -> None:
    o = plan.options
    write_json(plan.evaluation.out_dir / RUN_FILE, {"data": str(plan.evaluation.data_path), "limit": o.limit,
                                                    "sample": o.sample, "model": o.model, "seed": o.seed})


def local_runner(plan: LocalPlan, reporter: Reporter) -> HarnessRunner:
    """The harness under the plan's limits, with a progress bar; run.json written first (for --resume)."""
    options = plan.options
    seed = options.seed or 0  # prepare_local set it
    seed_everything(seed)
    if not options.resume:
        write_run_file(plan)
    reporter.info(f"limits: {describe_limits(plan.limits)}")
    bar = ProgressBar(reporter.progress(len(plan.evaluation.questions), "predicting"))
    spec = ModelSpec(model=options.model, repo=str(KIT_ROOT), seed=seed)
    harness = HarnessOptions(resume=bool(options.resume), full_traceback=options.verbose)
    return HarnessRunner(spec, plan.limits, harness, bar)


def describe_limits(limits: Limits) -> str:
    if not limits.enforced:
        return f"none (--no-limits; profile {limits.profile} only labels the run)"
    track = limits.budget_track.replace("amazon-kdd-cup-24-", "")
    budget = "none" if limits.budget_s is None else f"{limits.budget_s / 60:g} min for {track}"
    scale = f", time scale {limits.time_scale:g}" if limits.time_scale != 1 else ""
    ram = "no RAM cap" if limits.ram_bytes is None else f"RAM {limits.ram_bytes / 1e9:g} GB"
    return (f"profile {limits.profile}: {limits.seconds_per_sample:g} s per sample, budget {budget}{scale}, "
            f"{ram}, {limits.gpus} GPU(s){gpu_note(limits.gpus)}")


def gpu_note(wanted: int | None) -> str:
    """What a profile's GPUs mean on this machine, when it has fewer; and on a machine with GPUs, its driver
    against what the installed torch needs."""
    here = host_gpu_count() if wanted else 0
    if not wanted:
        return ""
    if here == 0:
        return (" (this machine has none: the model runs on the CPU, the GPU limits are not emulated, and the time "
                "limits are a T4's, so a CPU run may time out where the grader's would not: --no-limits or "
                "--time-scale X to explore)")
    driver = driver_status(load_nvml()).text
    if here >= wanted:
        return f" ({driver})"
    return f" (this machine has {here}: the model sees {here}, each capped as a T4; {driver})"


def interrupted_at(plan: LocalPlan | None) -> str:
    if plan is None:
        return "no question was answered"
    path = plan.evaluation.out_dir / PREDICTIONS_FILE
    if not path.is_file() or path.stat().st_size == 0:
        return "no question was answered"
    return f"every complete batch is in {path}; continue with --resume {plan.evaluation.out_dir}"


def report_local(evaluated: Evaluated, evaluation: Evaluation, reporter: Reporter) -> None:
    """The closing lines: the failure and what was kept, the table, the verdict, the files written."""
    outcome, out_dir = evaluated.outcome, evaluation.out_dir
    failed = outcome is not None and not outcome.verdict.ok
    if failed:
        reporter.result(f"\nPARTIAL RESULTS: {evaluated.n_answered} of {len(evaluation.questions)} questions "
                        "answered")
    if evaluated.result is not None:
        reporter.result(format_table(evaluated.result, evaluated.results.get("intervals")))
    summary = format_model_info(evaluated.results.get("model_info"))
    if summary:  # after the run, not beside its progress bar
        reporter.result("\n" + "\n".join(summary))
    if outcome is not None and failed:  # the verdict, once: on stderr, with what was kept
        verdict = outcome.verdict
        what = "the model broke the interface" if verdict.status == "bad_output" else verdict.status
        kept = (f"every answer made before it is in {out_dir / PREDICTIONS_FILE}; continue with --resume "
                f"{out_dir}" if outcome.n_answered else "no question was answered before it")
        reporter.error(f"{what}: {verdict.detail}\n{kept}")
    elif outcome is not None:
        reporter.result(f"\nverdict: {outcome.verdict}")
    files = written_files(evaluated.result) + ([RUN_FILE] if (out_dir / RUN_FILE).is_file() else [])
    reporter.result(f"\nwrote {', '.join(files)} in {out_dir}")
