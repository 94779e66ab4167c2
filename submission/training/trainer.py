"""Training with transformers' ``Trainer``: checkpoints, resume, seed, accumulation, mixed precision.

We do not write our own loop: ``Trainer`` already saves the optimizer, scheduler, RNG and data position
in each checkpoint, so ``--resume`` continues a run where it stopped, bit for bit on CPU. What we add:
the examples and their padding (``examples.py``), the precision plan (``model_setup.py``), and a
progress bar with the loss and tokens per second.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.quiet import peft_quietly
from .config import FinetuneConfig
from .examples import Example, PadCollator, answer_loss, as_features
from .model_setup import PrecisionPlan

if TYPE_CHECKING:
    from transformers import TrainingArguments


@dataclass(frozen=True)
class TrainRequest:
    config: FinetuneConfig
    plan: PrecisionPlan
    checkpoints: Path  # the trainer's output_dir: checkpoint-N folders
    resume: bool  # continue from the last checkpoint in ``checkpoints`` (checked by the caller)
    answer_logits_only: bool = True  # compute the vocabulary logits only where an answer token is predicted


@dataclass
class TrainOutcome:
    model: Any  # the trained peft model, in eval mode
    global_step: int
    max_steps: int
    loss_curve: list[dict[str, float]]  # {"step", "loss", "learning_rate", "tokens_seen"} per logged step
    tokens_seen: int  # non-padding tokens (prompt and answer) over the whole run, resumed sessions included
    session_tokens: int
    session_s: float  # training time of this session
    resumed_from: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float | None:
        return self.session_tokens / self.session_s if self.session_s > 0 else None


def last_checkpoint(folder: Path) -> str | None:
    with peft_quietly():  # transformers' trainer modules import peft, and peft bitsandbytes
        from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def training_arguments(config: FinetuneConfig, plan: PrecisionPlan, checkpoints: Path) -> TrainingArguments:
    with peft_quietly():
        from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, learning_rate=config.learning_rate,
        num_train_epochs=config.epochs, max_steps=config.max_steps or -1, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
        logging_strategy="steps", logging_steps=1, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, seed=config.seed, data_seed=config.seed,
        fp16=plan.mixed_precision == "fp16", bf16=plan.mixed_precision == "bf16", use_cpu=plan.device == "cpu",
        report_to="none", disable_tqdm=True, include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False, dataloader_pin_memory=plan.device == "cuda",
    )


def make_progress_callback() -> Any:
    """A tqdm bar over optimizer steps with the last loss and the tokens per second of this session."""
    from tqdm import tqdm
    from transformers import TrainerCallback

    class ProgressBar(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training", unit="step",
                            file=sys.stderr, dynamic_ncols=True)
            self.started, self.tokens = time.perf_counter(), state.num_input_tokens_seen  # this session's start

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs and "loss" in logs:
                rate = (state.num_input_tokens_seen - self.tokens) / max(time.perf_counter() - self.started, 1e-9)
                self.bar.set_postfix_str(f"loss {logs['loss']:.4f}, {rate:,.0f} tokens/s")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar.close()

    return ProgressBar()


def loss_curve(log_history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"step": entry["step"], "loss": entry["loss"], "learning_rate": entry.get("learning_rate"),
             "tokens_seen": entry.get("num_input_tokens_seen")} for entry in log_history if "loss" in entry]


def train(model: Any, examples: Sequence[Example], pad_id: int, request: TrainRequest) -> TrainOutcome:
    """Run the trainer on ``examples``; returns the trained model and what was measured."""
    with peft_quietly():
        from transformers import PrinterCallback, Trainer

    resume_from = last_checkpoint(request.checkpoints) if request.resume else None
    progress = make_progress_callback()
    collator = PadCollator(pad_id, request.answer_logits_only)
    trainer = Trainer(model=model, args=training_arguments(request.config, request.plan, request.checkpoints),
                      train_dataset=as_features(examples), data_collator=collator, compute_loss_func=answer_loss,
                      callbacks=[progress])
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; the bar shows the loss
    trainer.train(resume_from_checkpoint=resume_from)
    session_s = time.perf_counter() - progress.started  # from the first step, after model and data are ready
    state = trainer.state
    session_tokens = state.num_input_tokens_seen - progress.tokens
    model = trainer.model
    model.eval()
    return TrainOutcome(model, state.global_step, state.max_steps, loss_curve(state.log_history),
                        state.num_input_tokens_seen, session_tokens, session_s, resume_from)
