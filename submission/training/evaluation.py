"""After training: the evaluator on the held-out file with the base model and with the adapter, compared.

Each evaluation is what ``local_evaluation.py`` does, through the same pipeline (``submission.evaluate``):
the harness runs the baseline (``evaluated_model.EvaluatedModel``) in its own process under the default
profile's limits (phase2, as ``local_evaluation.py`` by default; none with ``--no-limits``), the answers
are scored and the run folder written. The two folders are then compared by ``reports.comparison``
(``python -m submission compare``'s numbers) and shown by ``reports.compare`` (its table and compare.html).

An evaluation a limit ends early is not lost (``evaluate_pair``): what it answered is scored, as
``local_evaluation.py`` scores a partial run, the two runs are compared on the questions both answered, and
the command is told which limit ended it (``Pair.hints``: try ``--no-limits``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..environment import EVALUATED_MODEL_CONFIG, KIT_ROOT
from ..errors import DataError
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
from .output_folder import EVAL_FOLDER

if TYPE_CHECKING:
    from ..evaluate.local import Reporter
    from ..harness.verdict import Verdict


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


def evaluate_config(plan: EvalPlan, config_path: Path, out_dir: Path, label: str, reporter: Reporter) -> Evaluated:
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


LIMIT_NAMES = {"timeout": "a time limit", "memory": "the RAM limit", "gpu_memory": "the GPU memory limit",
               "disk": "the disk limit"}


@dataclass
class Pair:
    """The base model's and the adapter's evaluations, and their comparison (None when there is nothing to
    compare: a run answered no question, or none in common)."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # training.json's record of each run
    limited: dict[str, str] = field(default_factory=dict)  # label -> the limit that ended its evaluation
    table: str | None = None
    summary: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(run["verdict"] == "ok" for run in self.runs.values())

    def record(self, html: Path) -> dict[str, Any]:
        """What training.json records under "evaluation"."""
        compared = {**self.summary, "compare_html": str(html)} if self.summary is not None else {"compared": False}
        return {**compared, "runs": self.runs}


def _verdict(evaluated: Evaluated) -> Verdict:
    assert evaluated.outcome is not None  # a model ran: these are never saved predictions scored
    return evaluated.outcome.verdict


def describe_run(label: str, evaluated: Evaluated, total: int) -> str:
    """One line per evaluation: the verdict, and for a partial run what was answered and scored."""
    verdict = _verdict(evaluated)
    if verdict.ok:
        return f"{label}: verdict {verdict}"
    score = evaluated.results.get("all_around")
    if not evaluated.n_answered or score is None:
        return f"{label}: verdict {verdict}; no question answered"
    return (f"{label}: verdict {verdict}; {evaluated.n_answered:,} of {total:,} questions answered and scored: "
            f"all-around {score:.4f} on them")


def evaluate_pair(plan: EvalPlan, folder: Path, configs: dict[str, Path], reporter: Reporter) -> Pair:
    """Evaluate each settings file of ``configs`` (label -> YAML: base, then adapter) into ``folder``/label, score
    what each answered, and compare the two on the questions both answered (compare.html in ``folder``)."""
    pair = Pair()
    for label, config_path in configs.items():
        evaluated = evaluate_config(plan, config_path, folder / label, label, reporter)
        verdict = _verdict(evaluated)
        line = describe_run(label, evaluated, len(plan.questions))
        if verdict.ok:
            reporter.result(line)
        else:
            reporter.error(line, prefix=False)
        pair.runs[label] = {"run_folder": str(folder / label), "verdict": verdict.status,
                            "n_answered": evaluated.n_answered, "n_questions": len(plan.questions),
                            "all_around": evaluated.results.get("all_around")}
        if verdict.status in LIMIT_NAMES and plan.limits.enforced:
            pair.limited[label] = LIMIT_NAMES[verdict.status]
    silent = [label for label, run in pair.runs.items() if not run["n_answered"]]
    if silent:
        reporter.error(f"no comparison: {' and '.join(silent)} answered no question", prefix=False)
        return pair
    base, adapter = (folder / label for label in configs)
    try:
        pair.table, pair.summary = compare_folders(base, adapter, html_path_for(folder))
    except DataError as error:  # no question answered by both
        reporter.error(f"no comparison: {error}", prefix=False)
    return pair


def show_pair(pair: Pair, plan: EvalPlan, out: Path, reporter: Reporter) -> None:
    """The comparison table (or why there is none), the folders written, and which limit ended an evaluation
    with the command that evaluates again without the limits."""
    folder = out / EVAL_FOLDER
    if pair.table is not None:
        reporter.result(f"\nevaluation on {plan.data_path}: A = base model, B = with the adapter\n{pair.table}")
        reporter.result(f"\nwrote {folder / 'base'}, {folder / 'adapter'} and {html_path_for(folder)}")
    else:
        reporter.result(f"\nwrote {folder / 'base'} and {folder / 'adapter'}")
    if pair.limited:
        by_limit: dict[str, list[str]] = {}
        for label, limit in pair.limited.items():
            by_limit.setdefault(limit, []).append(label)
        ended = "; ".join(f"{limit} ended the evaluation{'s' * (len(labels) > 1)} of {' and '.join(labels)}"
                          for limit, labels in by_limit.items())
        reporter.error(f"{ended} (profile {plan.limits.profile}: the grader's limits, for a T4; this machine may be "
                       "slower). Evaluate again without the limits (everything is still measured): python -m "
                       f"submission finetune --evaluate-only --output-dir {out} --eval-data {plan.data_path} "
                       "--no-limits --overwrite", prefix=False)
