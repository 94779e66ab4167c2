"""Fixtures for the fine-tuning tests: the tiny random Llama as a base, its baseline YAML, small data files."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_llama import save_tiny_llama
from training_fixtures import SMALL_BUDGET, sample_rows, write_rows


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """The tiny Llama with wide random weights, so that an adapter can move its loss far (see make_tiny_llama)."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), initializer_range=0.3)


@pytest.fixture(scope="session")
def tiny_base(tiny_dir, tmp_path_factory) -> Path:
    """A baseline YAML whose weights are the tiny Llama (short generation budgets)."""
    path = tmp_path_factory.mktemp("tiny-base") / "baseline.yaml"
    path.write_text(f"weights: {tiny_dir}\n{SMALL_BUDGET}", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def data_files(tmp_path_factory) -> dict[str, Path]:
    """train: 12 exact-match questions of the sample split; eval: 4 others, none with a training prompt
    (the sample split repeats one prompt on purpose)."""
    folder = tmp_path_factory.mktemp("finetune-data")
    exact, seen = [], set()
    for row in sample_rows():
        if row["task_type"] != "generation" and row["input_field"] not in seen:
            exact.append(row)
            seen.add(row["input_field"])
    multiple_choice = [row for row in exact if row["is_multiple_choice"]]
    open_ended = [row for row in exact if not row["is_multiple_choice"]]
    train = multiple_choice[:8] + open_ended[:4]
    held_out = multiple_choice[8:11] + open_ended[4:5]
    return {"train": write_rows(folder / "train.json", train), "eval": write_rows(folder / "eval.json", held_out)}
