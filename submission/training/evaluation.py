"""After training: the evaluator on the held-out file with the base model and with the adapter, compared.

Each evaluation is what ``local_evaluation.py`` does, through the same pipeline (``submission.evaluate``):
the harness runs the baseline (``evaluated_model.EvaluatedModel``) in its own process under the default
profile's limits (phase2, as ``local_evaluation.py`` by default; none with ``--no-limits``), the answers
are scored and the run folder written. The two folders are then compared by ``reports.comparison``
(``python -m submission compare``'s numbers) and shown by ``reports.compare`` (its table and compare.html).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..environment import EVALUATED_MODEL_CONFIG, KIT_ROOT
from ..evaluate.pipeline import Evaluated, Evaluation, HarnessRunner, ProgressBar, evaluate
from ..fileio import replace_file
from ..harness.outcome import ModelSpec
from ..harness.profiles import (
    DEFAULT_PROFILE,
    Limits,
    Profile,
    budget_track_for,
    get_profile,
    limits_for,
    load_profiles,
)
from ..reports.compare import COMPARE_FILE, delta_chart, format_comparison, render_compare
from ..reports.comparison import compare_folders as compare_run_folders
from ..scoring.data import Question, load_questions
from ..scoring.scorer import ScoringConfig, check_scoring_ready
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


def evaluate_config(plan: EvalPlan, config_path: Path, out_dir: Path, label: str, reporter) -> Evaluated:
    """Run the baseline with ``config_path`` on the plan's questions; a scored run folder at ``out_dir``
    (``reporter``: the command's, for the progress bar)."""
    if out_dir.exists():  # an earlier evaluation of this output folder: replaced, never mixed in
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    spec = ModelSpec(model=SPEC, repo=str(KIT_ROOT), seed=plan.seed,
                     env={EVALUATED_MODEL_CONFIG: str(config_path.resolve())})
    bar = ProgressBar(reporter.progress(len(plan.questions), f"evaluating {label}"))
    evaluation = Evaluation(tuple(plan.questions), plan.data_path, out_dir, f"{label}: {config_path}", plan.seed,
                            plan.profile, plan.scoring)
    return evaluate(evaluation, HarnessRunner(spec, plan.limits, progress=bar))


def compare_folders(base_dir: Path, adapter_dir: Path, html_path: Path) -> tuple[str, dict[str, Any]]:
    """The comparison table (B = adapter minus A = base) and its summary; writes compare.html."""
    comparison = compare_run_folders(base_dir, adapter_dir)
    replace_file(html_path, render_compare(comparison, delta_chart(comparison)))
    r = comparison.result
    summary = {"base_all_around": r.all_around.a, "adapter_all_around": r.all_around.b,
               "delta_all_around": r.all_around.delta, "interval": [r.all_around.low, r.all_around.high],
               "p_value": r.all_around.p_value, "base_task_mean": r.task_mean.a, "adapter_task_mean": r.task_mean.b,
               "fixed": len(comparison.fixed), "broken": len(comparison.broken)}
    return format_comparison(comparison), summary


def html_path_for(eval_dir: Path) -> Path:
    return eval_dir / COMPARE_FILE
