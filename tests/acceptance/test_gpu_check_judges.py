"""The prepared GPU script (acceptance/gpu_memory_check.py) on the CPU: its judges fail when what they check
is broken (torch's cap judged on torch's own message, the visible GPU on the form of CUDA_VISIBLE_DEVICES,
the card on what torch reports), the time limit holds, the refusal check runs through the real harness,
and the wheel list matches the pins."""

from __future__ import annotations

import json
import re
import sys
from types import SimpleNamespace

import pytest
import torch
from kit_paths import ROOT

from acceptance import gpu_check_judges as judges
from acceptance import gpu_memory_check as script
from submission.harness import gpu_host
from submission.harness.outcome import RunOutcome
from submission.harness.profiles import limits_for, load_profiles
from submission.harness.verdict import Verdict
from submission.scoring.data import ALL_AROUND

PHASE2 = limits_for(load_profiles()["phase2"], ALL_AROUND)
WATCHDOG = "GPU 0 (NVIDIA H200): peak 4.00 GiB of this process, cap 2.00 GiB"
TORCH_OOM = ("GPU 0 (NVIDIA H200): peak 2.00 GiB of this process, cap 2.00 GiB; batch_predict (batch 0, 2 prompts) "
             "raised OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB. GPU 0 has a total capacity")


def outcome(status: str, detail: str) -> RunOutcome:
    return RunOutcome(verdict=Verdict(status, detail), limits=PHASE2, n_questions=4, n_answered=0, n_resumed=0,
                      batches=(), init_s=1.0, wall_s=2.0, prior_elapsed_s=0.0, projected_s=None, peak_rss_bytes=None,
                      gpus=(), notes=())


def test_torchs_cap_is_judged_on_torchs_own_message_not_the_watchdogs():
    assert judges.torch_out_of_memory(outcome("gpu_memory", TORCH_OOM), [])
    assert not judges.torch_out_of_memory(outcome("gpu_memory", WATCHDOG), [])  # torch's cap broken: NVML caught it
    assert not judges.torch_out_of_memory(None, ["LimitsError: ..."])


def test_the_visible_gpu_must_be_named_by_its_index():
    judge = judges.ok_answering(judges.one_gpu_by_index)
    ok = outcome("ok", "4 questions answered")
    assert judge(ok, [json.dumps({"count": 1, "visible": "0"})])
    assert not judge(ok, [json.dumps({"count": 1, "visible": "GPU-5d2b1c3a-0000-4000-8000-000000000000"})])
    assert not judge(ok, [json.dumps({"count": 2, "visible": "0,1"})])
    assert not judges.ok_answering(judges.no_gpu)(ok, [json.dumps({"count": 1, "visible": "0"})])


def test_the_card_is_judged_on_what_torch_reports_in_the_models_process():
    t4 = {"capability": [7, 5], "bf16": False, "flash_sdp": False, "flash_attn": "ImportError: No module",
          "flash_attn_installed": False}
    assert judges.t4_card(json.dumps(t4))
    for broken in ({"capability": [9, 0]}, {"bf16": True}, {"flash_sdp": True},
                   {"flash_attn_installed": True, "flash_attn": "imported"}):
        assert not judges.t4_card(json.dumps({**t4, **broken})), broken


def test_the_other_item_checks_fail_when_broken():
    assert judges.indices_parsed(json.dumps({"ids": [0], "count": 1}))
    bad_int = "ValueError: invalid literal for int() with base 10: 'GPU-5d'"
    assert not judges.indices_parsed(json.dumps({"error": bad_int}))
    scratch = {"files": 3, "tmpdir": "/tmp/s"}
    assert judges.triton_in_scratch(json.dumps({**scratch, "triton_cache": "/tmp/s/cache/triton"}))
    assert not judges.triton_in_scratch(json.dumps({**scratch, "triton_cache": "/root/.triton/cache"}))
    refused = judges.refused("nvidia-ml-py")
    assert refused(None, ["LimitsError: ... the package nvidia-ml-py (import pynvml) is not installed"])
    assert not refused(outcome("ok", "4 questions answered"), ["1"])  # ran unmeasured: the old behaviour


@pytest.fixture
def gpu_table(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(total_memory=141 * 1024**3))
    profiles = {"small": script.check_profile(1, 2.0), **load_profiles()}
    table, _ = judges.checks(2.0, profiles, judges.Checkpoint(tmp_path / "tiny"), None)
    return {check.name: check for check in table}


def test_the_table_has_a_check_for_items_1_2_3_and_5(gpu_table):
    for name in ("visible_gpus", "spawned_indices", "nvml_missing_refused", "tree_without_psutil", "triton_compile",
                 "triton_container", "capability_seen", "bf16_weights"):
        assert name in gpu_table
    assert gpu_table["nvml_missing_refused"].hide == ("pynvml",)
    assert gpu_table["tree_without_psutil"].hide == ("psutil",)
    assert gpu_table["triton_compile"].env == {"HOME": judges.UNWRITABLE_HOME}
    assert gpu_table["triton_container"].skip.startswith("needs docker and --container-image")
    assert all(check.judge is not None or check.runner is not None or check.skip for check in gpu_table.values())


def test_the_nvml_check_runs_through_the_harness_and_is_refused(gpu_table, monkeypatch):
    monkeypatch.setattr(gpu_host, "nvidia_gpu_present", lambda: True)  # as on the GPU machine
    result = script.run_one(gpu_table["nvml_missing_refused"], None)
    assert result["status"] == "passed", result
    assert "pynvml" not in sys.modules or sys.modules["pynvml"] is not None  # the harness got it back


def test_the_script_keeps_to_its_time_limit(gpu_table):
    report = script.run_all(list(gpu_table.values()), None, script.MIN_CHECK_S - 1, None, {"checks": {}})
    assert {result["status"] for result in report["checks"].values()} == {"skipped"}
    assert all("time budget" in r["why"] or r["why"] == gpu_table[n].skip for n, r in report["checks"].items())


def test_without_a_gpu_nothing_is_checked(capsys):
    assert script.main([]) == 77
    assert capsys.readouterr().out.startswith("SKIPPED: no CUDA GPU here")


def test_the_wheel_list_matches_requirements_and_says_how_to_fetch_it():
    text = (ROOT / "acceptance" / "gpu_wheels.txt").read_text()
    pins = dict(line.split("==") for line in text.splitlines() if line and not line.startswith("#"))
    required = dict(re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s#]+)", line).groups()
                    for line in (ROOT / "requirements.txt").read_text().splitlines() if re.match(r"[A-Za-z].*==", line))
    assert set(pins) == {"psutil", "nvidia-ml-py", "accelerate", "bitsandbytes", "PyYAML"}
    assert all(required[name] == version for name, version in pins.items())
    download = next(line for line in text.splitlines() if "pip download" in line)
    assert "--python-version 3.12" in download and "--only-binary=:all:" in download and "--no-deps" in download
    assert "--platform manylinux_2_24_x86_64" in download  # bitsandbytes 0.50.2's only Linux x86-64 wheel
