"""``finetune --evaluate-only``: the adapter already in ``--output-dir`` against its base on ``--eval-data``,
no training, so that evaluating again (another file, ``--no-limits``) never means resuming a run.

The adapter's settings are the ``baseline.yaml`` that fine-tuning wrote beside it (its ``lora_adapter``
pointed at the folder as it is now, wherever it moved), or, without one, the fine-tuning config's
``base_config`` with ``lora_adapter`` set to the folder. The base is the same settings without the
adapter. Training questions that are also in ``--eval-data`` are refused unless ``--allow-overlap``, as
for a training run, when training.json names the training files and they are unchanged. The evaluation
goes to ``DIR/eval`` (an earlier one is replaced only with ``--overwrite``) and into training.json.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.transformers_settings import check_weights_path, load_transformers_settings
from ..errors import DataError
from .config import FinetuneConfig, load_finetune_config
from .evaluation import EvalPlan, evaluate_pair, html_path_for, plan_evaluation, show_pair
from .examples import find_overlap, load_training_data, overlap_message
from .output_folder import EVAL_FOLDER, check_for_evaluation
from .outputs import ADAPTER_CONFIG, TRAINING_FILE, sha256_of, weights_path, write_settings
from .pipeline import Options, write_training

if TYPE_CHECKING:
    from ..evaluate.local import Reporter


@dataclass(frozen=True)
class EvaluationJob:
    out: Path
    evaluation: EvalPlan
    adapter: dict[str, Any]  # the baseline settings with the adapter (absolute paths)
    source: str  # where they come from, for the plan's line
    overlap_note: str | None  # why the overlap with the training data could not be checked


def adapter_settings(out: Path, config: FinetuneConfig) -> tuple[dict[str, Any], str]:
    """The baseline settings that load the adapter in ``out``, and where they come from."""
    written = out / ADAPTER_CONFIG
    path = written if written.is_file() else config.base_config_path
    settings = load_transformers_settings(path)
    check_weights_path(settings)
    values = dataclasses.asdict(settings)
    values.pop("base_dir")
    values.update(weights=weights_path(settings), lora_adapter=str(out.resolve()))
    source = str(written) if written.is_file() else f"{path} with lora_adapter: {out}"
    return values, source


def check_overlap(out: Path, plan: EvalPlan, allow: bool) -> str | None:
    """Refuse evaluation questions the adapter was trained on (training.json's data files, if unchanged);
    returns a note when that cannot be checked."""
    record = out / TRAINING_FILE
    if not record.is_file():
        return f"{out} has no {TRAINING_FILE}: whether its training data overlaps --eval-data is not checked"
    entries = json.loads(record.read_text(encoding="utf-8")).get("data") or []
    for entry in entries:
        path = Path(entry["path"])
        if not path.is_file() or sha256_of(path) != entry.get("sha256"):
            return (f"the training file {path} is {'gone' if not path.is_file() else 'changed'}: whether the "
                    "training data overlaps --eval-data is not checked")
    train = load_training_data([entry["path"] for entry in entries])
    overlap = find_overlap(train, plan.questions)
    if overlap and not allow:
        raise DataError(overlap_message(overlap, len(train), str(plan.data_path)))
    return None


def prepare_evaluation(options: Options) -> EvaluationJob:
    """Every check before a model loads: the folder and its adapter, the settings, the data, the overlap."""
    out = options.output_dir
    check_for_evaluation(out, options.overwrite)
    config = load_finetune_config(options.config, seed=options.seed)
    adapter, source = adapter_settings(out, config)
    if options.eval_data is None:  # the command refuses --evaluate-only without it
        raise DataError("--evaluate-only needs --eval-data FILE: the questions to evaluate the adapter on")
    plan = plan_evaluation(options.eval_data, config.seed, options.enforce_limits)
    return EvaluationJob(out, plan, adapter, source, check_overlap(out, plan, options.allow_overlap))


def record_evaluation(out: Path, evaluation: dict[str, Any]) -> bool:
    """Put the evaluation into training.json (when the folder has one); True if it did."""
    path = out / TRAINING_FILE
    if not path.is_file():
        return False
    training = json.loads(path.read_text(encoding="utf-8"))
    training["evaluation"] = evaluation
    write_training(out, training)
    return True


def evaluate_only(options: Options, reporter: Reporter) -> int:
    """0 when both evaluations ended ``ok``, else 1 (what they answered is scored and compared)."""
    job = prepare_evaluation(options)
    reporter.result(f"evaluating the adapter in {job.out} against its base on {job.evaluation.data_path} "
                    f"({len(job.evaluation.questions):,} questions); no training\nadapter settings: {job.source}")
    if job.overlap_note:
        reporter.note(job.overlap_note)
    folder = job.out / EVAL_FOLDER
    if folder.exists():  # --overwrite (checked): the earlier evaluation goes
        shutil.rmtree(folder)
    configs = {"base": write_settings(folder / "base.yaml", {**job.adapter, "lora_adapter": None, "merge_lora": False},
                                      "The base model: the adapter's settings without it"),
               "adapter": write_settings(folder / "adapter.yaml", job.adapter, "The adapter's settings")}
    pair = evaluate_pair(job.evaluation, folder, configs, reporter)
    show_pair(pair, job.evaluation, job.out, reporter)
    if record_evaluation(job.out, pair.record(html_path_for(folder))):
        reporter.result(f"recorded in {job.out / TRAINING_FILE}")
    return 0 if pair.ok else 1
