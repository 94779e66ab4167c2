"""What a fine-tuning run leaves in its folder, besides the adapter: training.json, the loss curve, the
baseline settings that load the adapter, the snippet for ``models/baseline.yaml``, merged weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..backends.transformers_settings import TransformersSettings
from ..fileio import replace_file

TRAINING_FILE = "training.json"
LOSS_CHART = "loss_curve.png"
ADAPTER_CONFIG = "baseline.yaml"  # the baseline's settings with this adapter: what the evaluation loads
MERGED_FOLDER = "merged"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_entry(path: str | Path, questions: int) -> dict[str, Any]:
    return {"path": str(Path(path).resolve()), "sha256": sha256_of(path), "questions": questions}


def loss_chart(curve: Sequence[dict[str, float]], title: str) -> bytes:
    """A PNG of the training loss per optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=110)
    axes.plot([p["step"] for p in curve], [p["loss"] for p in curve], marker="." if len(curve) < 60 else None,
              color="#4c72b0")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("training loss (answer tokens)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def weights_path(base: TransformersSettings) -> str:
    """``weights`` as an absolute folder (``smollm2`` stays as it is)."""
    if base.weights == "smollm2":
        return base.weights
    path = Path(base.weights).expanduser()
    return str(path if path.is_absolute() else (base.base_dir / path).resolve())


def baseline_settings(base: TransformersSettings, adapter: Path | None, quantization: str) -> dict[str, Any]:
    """The base's baseline settings (absolute paths) with ``lora_adapter`` set to ``adapter`` (or none);
    a QLoRA adapter keeps its 4-bit base."""
    values = dataclasses.asdict(base)
    values.pop("base_dir")
    values.update(weights=weights_path(base), lora_adapter=str(adapter.resolve()) if adapter else None)
    if adapter is not None and quantization == "4bit":
        values["quantization"] = "4bit"
    return values


def write_settings(path: Path, values: dict[str, Any], what: str) -> Path:
    """A baseline YAML file that ``TransformersModel(config_path=path)`` loads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(values, sort_keys=False, allow_unicode=True)
    replace_file(path, f"# {what} (written by python -m submission finetune)\n{text}")
    return path


def write_adapter_config(folder: Path, base: TransformersSettings, quantization: str) -> Path:
    return write_settings(folder / ADAPTER_CONFIG, baseline_settings(base, folder, quantization),
                          "The baseline's settings with this adapter")


def snippet(base: TransformersSettings, adapter: Path, quantization: str, merged: Path | None) -> str:
    """What to put in the baseline's YAML, with paths relative to its folder (as it reads them)."""
    def relative(path: Path) -> str:  # absolute when it would climb more than one folder up
        rel = os.path.relpath(path.resolve(), base.base_dir.resolve())
        return str(path.resolve()) if rel.startswith(os.path.join(os.pardir, os.pardir)) else rel

    lines = [f"lora_adapter: {relative(adapter)}"]
    if quantization == "4bit" and base.quantization != "4bit":
        lines.append("quantization: 4bit            # the adapter was trained on the 4-bit (NF4) base")
    text = "\n".join("  " + line for line in lines)
    if merged is not None:
        text += (f"\nor, with the merged weights instead of the adapter:\n  weights: {relative(merged)}"
                 "\n  lora_adapter: null")
    return text


def merge_into(folder: Path, adapter: Path, dtype: str, device: str, out: Path) -> Path:
    """Load the base unquantised, merge the adapter into it, save safetensors and the tokenizer at ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..backends.quiet import peft_quietly
    from ..backends.weights import write_atomically

    with peft_quietly():
        from peft import PeftModel

    def write(tmp: Path) -> None:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), device_map={"": device})
        with peft_quietly():
            merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        merged.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(folder).save_pretrained(tmp)

    if out.exists():
        shutil.rmtree(out)
    return write_atomically(out, write)
