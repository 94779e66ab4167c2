"""The model's disk in a local run: a per-run TMPDIR measured against the profile's scratch cap, no file
larger than it (RLIMIT_FSIZE), a cap on what it adds to the output folder; the verdict `disk`, every
earlier answer kept, and the disk space given back."""

from __future__ import annotations

import os
import shutil
import tempfile

from kit_paths import TESTS
from test_runner import FAST, QUESTIONS, saved, tiny_limits

from submission.harness.outcome import ModelSpec
from submission.harness.runner import run_model

SCRATCH_MB, OUTPUT_MB = 20, 2


def run(tmp_path, model, **env):
    limits = tiny_limits(tmp_path, disk_gb=SCRATCH_MB / 1000, output_mb=OUTPUT_MB)
    spec = ModelSpec(model=f"fake_models.hostile:{model}", repo=str(TESTS),
                     env={"FAKE_FAIL_BATCH": "2", **{k.upper(): str(v) for k, v in env.items()}})
    return run_model(spec, QUESTIONS, tmp_path / "out", limits, FAST)


def free_bytes(path) -> int:
    return shutil.disk_usage(path).free


def scratch_folders() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("shopbench-scratch-")}


def test_many_files_past_the_scratch_cap_end_with_disk_and_the_space_is_given_back(tmp_path):
    before, folders = free_bytes(tempfile.gettempdir()), scratch_folders()
    outcome = run(tmp_path, "FillsScratch", fake_write_mb=60, fake_file_mb=4)
    assert outcome.verdict.status == "disk", outcome.verdict
    assert "the model's scratch space (TMPDIR" in outcome.verdict.detail and "cap 20.0 MB" in outcome.verdict.detail
    assert outcome.n_answered == 4 and [r["row"] for r in saved(tmp_path)] == [0, 1, 2, 4]  # batches 0 and 1
    assert scratch_folders() <= folders  # this run's scratch folder is gone
    assert free_bytes(tempfile.gettempdir()) > before - 20_000_000  # 60 MB written, all given back


def test_one_file_past_the_scratch_cap_fails_the_write_and_ends_with_disk(tmp_path):
    outcome = run(tmp_path, "FillsScratch", fake_write_mb=30, fake_file_mb=30)
    assert outcome.verdict.status == "disk"
    assert "raised OSError: [Errno 27] File too large" in outcome.verdict.detail
    assert "the scratch cap is 20.0 MB per file and in all (the model's scratch space: TMPDIR=" in \
        outcome.verdict.detail and outcome.n_answered == 4


def test_writing_past_the_output_cap_ends_with_disk_and_the_model_files_are_removed(tmp_path):
    out = tmp_path / "out"
    before = free_bytes(tmp_path)
    outcome = run(tmp_path, "FillsOutput", fake_write_mb=40, fake_output_dir=out)
    assert outcome.verdict.status == "disk", outcome.verdict
    assert "the output folder, predictions.jsonl aside" in outcome.verdict.detail
    assert "cap 2.0 MB" in outcome.verdict.detail and outcome.n_answered == 4
    assert sorted(p.name for p in out.iterdir()) == ["predictions.jsonl"]
    assert free_bytes(tmp_path) > before - 20_000_000
    assert any("removed the" in note for note in outcome.notes)


def test_a_model_that_writes_a_little_within_the_caps_runs_normally(tmp_path):
    out = tmp_path / "out"
    outcome = run(tmp_path, "FillsOutput", fake_write_mb=1, fake_output_dir=out, fake_delay_after_s=0)
    assert outcome.verdict.status == "ok" and outcome.n_answered == len(QUESTIONS)
    outcome = run(tmp_path, "FillsScratch", fake_write_mb=8, fake_file_mb=4, fake_delay_after_s=0)
    assert outcome.verdict.status == "ok" and outcome.n_answered == len(QUESTIONS)
