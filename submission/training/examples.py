"""Training examples: development-format files -> token ids with the loss on the answer only.

Each question becomes ``format_prompt(prompt)`` (``backends/prompting.py``, exactly what the baseline
reads at inference) followed by its target (``scoring.targets.build_target``) and the end-of-sequence
token. The prompt is tokenised on its own, as the baseline tokenises it before generating, and its
labels are -100, so only the answer tokens carry loss. A sequence longer than ``max_seq_length`` loses
the beginning of its prompt (the question's end and the answer survive); an answer longer than half of
it is cut at its end.

Training on questions you score yourself on is the commonest way to fool yourself: ``find_overlap``
finds training prompts that also appear in the evaluation file (compared by a hash of the normalised
text), and the command refuses them unless told otherwise.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.prompting import format_prompt
from ..errors import DataError
from ..scoring.data import Question, load_questions
from ..scoring.targets import TargetError, build_target

IGNORE = -100  # the label value PyTorch's cross-entropy skips
OVERLAP_EXAMPLES = 3


@dataclass(frozen=True)
class Sourced:
    """A question and where it came from: "file:line" for messages."""

    question: Question
    where: str


@dataclass(frozen=True)
class PromptFormat:
    """How a prompt is shown to the model: the baseline's settings (``models/baseline.yaml``)."""

    system_prompt: str
    use_chat_template: bool


@dataclass(frozen=True)
class Example:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # IGNORE on the prompt, the token ids on the answer
    where: str
    prompt_cut: int  # prompt tokens dropped from the left
    answer_cut: int  # answer tokens dropped from the right

    @property
    def answer_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def load_training_data(paths: Sequence[str | Path]) -> list[Sourced]:
    """Every question of every file, validated like the evaluator's data (file, line and field in errors)."""
    sourced = []
    for path in paths:
        for question in load_questions(path, require_truth=True):
            sourced.append(Sourced(question, f"{path}:{question.row + 1}"))
    return sourced


def normalise(text: str) -> str:
    """Unicode NFKC, case-folded, whitespace runs as one space, stripped."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()


def prompt_key(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def find_overlap(train: Sequence[Sourced], held_out: Sequence[Question]) -> list[Sourced]:
    """The training questions whose normalised prompt is also a prompt of ``held_out``."""
    keys = {prompt_key(q.prompt) for q in held_out}
    return [item for item in train if prompt_key(item.question.prompt) in keys]


def overlap_message(overlap: Sequence[Sourced], n_train: int, eval_path: str | Path) -> str:
    shown = "; ".join(f"{item.where}: {item.question.prompt[:70]!r}" for item in overlap[:OVERLAP_EXAMPLES])
    return (f"{len(overlap):,} of {n_train:,} training questions also appear in the evaluation file {eval_path} "
            f"(same prompt after normalising case and spaces), e.g. {shown}. A score on questions the model was "
            "trained on says little about new ones: remove them from the training data, or pass --allow-overlap "
            "to train on them anyway (training.json records the overlap)")


def targets_for(train: Sequence[Sourced]) -> list[str]:
    """Each question's target; DataError naming file and line for a truth that has no answer."""
    targets = []
    for item in train:
        task_type = item.question.task_type
        if task_type is None:
            raise DataError(f"{item.where}: no task_type; training needs the answer fields of each question")
        try:
            targets.append(build_target(task_type, item.question.truth))
        except TargetError as error:
            raise DataError(f"{item.where}: {error}; remove the line or fix its output_field") from None
    return targets


def encode_example(tokenizer: Any, fmt: PromptFormat, item: Sourced, target: str, max_len: int) -> Example:
    """Prompt and answer token ids, cut to ``max_len`` (prompt from the left, answer from the right)."""
    text = format_prompt(tokenizer, item.question.prompt, fmt.system_prompt, fmt.use_chat_template)
    # As TransformersModel.encode: a chat template writes its own special tokens; a raw prompt gets the usual ones.
    prompt = list(tokenizer(text, add_special_tokens=not fmt.use_chat_template)["input_ids"])
    answer = list(tokenizer(target, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]
    answer_cut = prompt_cut = 0
    if len(prompt) + len(answer) > max_len:
        keep = min(len(answer), max(max_len - len(prompt), max_len // 2))
        answer_cut, answer = len(answer) - keep, answer[:keep]
        prompt_cut, prompt = max(0, len(prompt) - (max_len - keep)), prompt[-(max_len - keep):]
    return Example(tuple(prompt + answer), tuple([IGNORE] * len(prompt) + answer), item.where, prompt_cut, answer_cut)


def build_examples(tokenizer: Any, fmt: PromptFormat, train: Sequence[Sourced], targets: Sequence[str],
                   max_len: int) -> list[Example]:
    """One example per question (``targets`` from ``targets_for``, in the same order)."""
    if tokenizer.eos_token_id is None:
        raise DataError("the base model's tokenizer has no end-of-sequence token; training needs one to teach "
                        "the model where an answer ends (set eos_token in its tokenizer_config.json)")
    return [encode_example(tokenizer, fmt, item, target, max_len) for item, target in zip(train, targets, strict=True)]


class PadCollator:
    """A batch of examples as tensors, padded on the left as the baseline pads at inference.

    Pads take the pad id, attention mask 0 and label IGNORE; ``position_ids`` count from each row's first
    real token (as ``TransformersModel`` passes them). Every answer then ends at the last position, so
    with ``answer_logits_only`` the batch asks the model for the logits of the last ``logits_to_keep``
    positions only: those that predict an answer token (and one more), not the whole prompt's.
    """

    def __init__(self, pad_id: int, answer_logits_only: bool = True) -> None:
        self.pad_id, self.answer_logits_only = pad_id, answer_logits_only

    def __call__(self, features: Sequence[dict[str, Sequence[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids, labels, mask = [], [], []
        for f in features:
            pad = width - len(f["input_ids"])
            ids.append([self.pad_id] * pad + list(f["input_ids"]))
            labels.append([IGNORE] * pad + list(f["labels"]))
            mask.append([0] * pad + [1] * len(f["input_ids"]))
        attention_mask = torch.tensor(mask)
        batch: dict[str, Any] = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels),
                                 "attention_mask": attention_mask,
                                 "position_ids": (attention_mask.cumsum(-1) - 1).clamp(min=0)}
        if self.answer_logits_only:
            answer = max(sum(label != IGNORE for label in f["labels"]) for f in features)
            batch["logits_to_keep"] = min(width, answer + 1)  # the position before an answer predicts its first token
        return batch


def answer_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy of the answer tokens, for logits of the last positions of a left-padded batch.

    ``outputs.logits`` holds the last ``k`` positions (all of them, or ``logits_to_keep``); the logit at
    position i predicts the token at i + 1. Summed over the answer tokens and divided by
    ``num_items_in_batch`` (the answer tokens of all the accumulated batches, counted by the trainer),
    else by this batch's answer tokens.
    """
    import torch

    logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
    keep = logits.shape[1]
    targets = labels[:, labels.shape[1] - keep + 1:].to(logits.device)
    total = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                             targets.reshape(-1), ignore_index=IGNORE, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum()
    return total / count


def as_features(examples: Sequence[Example]) -> list[dict[str, list[int]]]:
    """What the trainer's data loader reads: one dict per example."""
    return [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in examples]
