"""Helpers of the fine-tuning tests: small data files and fine-tuning YAML files for the tiny Llama."""

from __future__ import annotations

import json
from pathlib import Path

from kit_paths import SAMPLE_DATA

SMALL_BUDGET = "max_new_tokens: {retrieval: 6, ranking: 8, ner: 6, generation: 6}\n"
FAST_SETTINGS = {  # the tiny model learns in a few steps of these
    "learning_rate": 2.0e-2, "batch_size": 4, "gradient_accumulation_steps": 1, "max_seq_length": 160,
    "warmup_ratio": 0, "lr_scheduler": "constant", "save_steps": 4, "save_total_limit": None,
    "lora": {"r": 8, "alpha": 16, "dropout": 0.05},  # on the default target modules
}


def sample_rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLE_DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def write_finetune_config(path: Path, base_yaml: Path, **changes) -> Path:
    """A fine-tuning YAML on ``base_yaml`` with FAST_SETTINGS and ``changes``."""
    import yaml

    path.write_text(yaml.safe_dump({"base_config": str(base_yaml), **FAST_SETTINGS, **changes}), encoding="utf-8")
    return path
