"""After training: the evaluator on the held-out file with the base model and with the adapter, compared.

Each evaluation is what ``local_evaluation.py`` does, from the same parts: ``harness.run_model`` runs the
baseline (``evaluated_model.EvaluatedModel``) in its own process under the default profile's limits
(phase2, as ``local_evaluation.py`` by default; none with ``--no-limits``), ``scoring.score_outputs``
scores it, ``reports.write_run_folder`` writes the run folder. The two folders are then compared by
``reports.compare`` (``python -m submission compare``'s numbers and compare.html).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..environment import EVALUATED_MODEL_CONFIG, KIT_ROOT, describe
from ..harness.outcome import ModelSpec, Progress, RunOutcome
from ..harness.predictions import PREDICTIONS_FILE, answered_and_outputs, read_records
from ..harness.profiles import (
    DEFAULT_PROFILE,
    Limits,
    Profile,
    budget_track_for,
    get_profile,
    limits_for,
    load_profiles,
)
from ..harness.runner import run_model
from ..reports.compare import COMPARE_FILE, compare_runs, delta_chart, format_comparison, render_compare
from ..reports.run_folder import base_meta, write_run_folder
from ..reports.run_view import load_run_dir
from ..reports.runstats import run_meta
from ..scoring.data import Question, load_questions
from ..scoring.scorer import ScoringConfig, check_scoring_ready, score_outputs
from .evaluated_model import SPEC


@dataclass(frozen=True)
class EvalPlan:
    """The held-out file, checked before training starts (so a missing embedding model fails first)."""

    data_path: Path
    questions: list[Question]
    scoring: ScoringConfig
    embedding_models: dict[str, str]
    profile: Profile
    limits: Limits
    seed: int


def plan_evaluation(data_path: str | Path, seed: int, enforce_limits: bool = True) -> EvalPlan:
    """Load and check the evaluation file and what scoring it needs; the default profile's limits
    (``enforce_limits=False``: none, as ``local_evaluation.py --no-limits``)."""
    path = Path(data_path)
    questions = load_questions(path, require_truth=True)
    scoring = ScoringConfig()
    resolved = check_scoring_ready(questions, scoring)
    profile = get_profile(DEFAULT_PROFILE, load_profiles())
    limits = limits_for(profile, budget_track_for(questions), enabled=enforce_limits)
    return EvalPlan(path, questions, scoring, resolved, profile, limits, seed)


def _progress_bar(total: int, label: str):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=f"evaluating {label}", unit="q", file=sys.stderr, dynamic_ncols=True)

    def update(progress: Progress) -> None:
        bar.update(progress.answered - bar.n)

    return bar, update


def evaluate(plan: EvalPlan, config_path: Path, out_dir: Path, label: str) -> tuple[RunOutcome, dict[str, Any]]:
    """Run the baseline with ``config_path`` on the plan's questions; write a scored run folder at ``out_dir``."""
    if out_dir.exists():  # an earlier evaluation of this output folder: replaced, never mixed in
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    spec = ModelSpec(model=SPEC, repo=str(KIT_ROOT), seed=plan.seed, env={EVALUATED_MODEL_CONFIG: str(config_path.resolve())})
    bar, update = _progress_bar(len(plan.questions), label)
    try:
        outcome = run_model(spec, plan.questions, out_dir, plan.limits, on_progress=update)
    finally:
        bar.close()
    path = out_dir / PREDICTIONS_FILE
    records = read_records(path) if path.is_file() else []
    answered, outputs = answered_and_outputs(records, plan.questions, str(path))
    result = score_outputs(answered, outputs, plan.scoring) if answered else None
    meta = {**base_meta(plan.data_path, len(plan.questions), None, plan.seed, f"{label}: {config_path}"),
            "embedding_models": plan.embedding_models, **describe(KIT_ROOT),
            **run_meta(outcome, plan.profile, records, plan.questions)}
    return outcome, write_run_folder(out_dir, answered, outputs, records, result, meta, plan.seed)


def compare_folders(base_dir: Path, adapter_dir: Path, html_path: Path) -> tuple[str, dict[str, Any]]:
    """The comparison table (B = adapter minus A = base) and its summary; writes compare.html."""
    comparison = compare_runs(load_run_dir(base_dir), load_run_dir(adapter_dir))
    html_path.write_text(render_compare(comparison, delta_chart(comparison)), encoding="utf-8")
    r = comparison.result
    summary = {"base_all_around": r.all_around.a, "adapter_all_around": r.all_around.b,
               "delta_all_around": r.all_around.delta, "interval": [r.all_around.low, r.all_around.high],
               "p_value": r.all_around.p_value, "base_task_mean": r.task_mean.a, "adapter_task_mean": r.task_mean.b,
               "fixed": len(comparison.fixed), "broken": len(comparison.broken)}
    return format_comparison(comparison), summary


def html_path_for(eval_dir: Path) -> Path:
    return eval_dir / COMPARE_FILE
