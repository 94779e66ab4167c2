#!/usr/bin/env python3
"""GPU checks of the harness: run on a machine with a CUDA GPU (it exits 77, "skipped", without one).

Each check runs a small real model through ``run_model`` in its own process, under a profile written
for the check, and compares the verdict with the expected one:

  environment   torch sees CUDA; NVML (pip install nvidia-ml-py) lists this machine's GPUs and our pids
  torch_cap     1 GPU capped at CAP GiB; the model allocates 2 x CAP through torch: the
                set_per_process_memory_fraction cap raises CUDA OOM -> verdict gpu_memory
  nvml_cap      same cap; the model allocates 2 x CAP with cuMemAlloc (outside torch's allocator) and
                holds it: the NVML watchdog stops it -> verdict gpu_memory naming GPU 0, its peak, the cap
  within_cap    the model allocates CAP / 2 -> verdict ok; results report the peak per device
                (NVML's and torch's) between CAP / 2 and CAP
  visible_gpus  a 1-GPU profile: the model sees torch.cuda.device_count() == 1
  t4_cap        the phase2 profile (T4: 15 GiB per card): the model allocates 20 GiB through torch ->
                gpu_memory (skipped on cards with less than 24 GiB)

    python benchmarks/gpu_memory_check.py                 # all checks, a JSON report on stdout
    python benchmarks/gpu_memory_check.py --cap-gib 2 --json gpu_report.json

Exit status: 0 every check passed, 1 a check failed, 77 no CUDA GPU here (nothing checked).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from submission.harness.outcome import ModelSpec, RunOutcome
from submission.harness.profiles import limits_for, load_profiles, profile_from_dict  # noqa: E402
from submission.harness.runner import run_model  # noqa: E402
from submission.scoring.data import ALL_AROUND, TRACKS, Question  # noqa: E402

GIB = 1024**3
QUESTIONS = [Question(row, f"question {row}", False) for row in range(4)]


class GpuModel:
    """Allocates GPU_CHECK_GIB on cuda:0 in its first batch, by GPU_CHECK_MODE: 'torch' (the caching
    allocator) or 'driver' (cuMemAlloc, which torch's cap does not see), then holds it GPU_CHECK_HOLD_S.
    Mode 'count' answers with torch.cuda.device_count()."""

    def __init__(self):
        import torch

        self.torch = torch
        self.mode = os.environ["GPU_CHECK_MODE"]
        self.size = int(float(os.environ.get("GPU_CHECK_GIB", "1")) * GIB)
        self.held = []

    def get_batch_size(self) -> int:
        return 2

    def batch_predict(self, batch, is_multiple_choice):
        torch = self.torch
        if self.mode == "count":
            return [str(torch.cuda.device_count())] * len(batch["prompt"])
        if not self.held:
            if self.mode == "torch":
                self.held.append(torch.empty(self.size, dtype=torch.uint8, device="cuda:0"))
                torch.cuda.synchronize()
            else:
                self.held.append(driver_alloc(torch, self.size))
            time.sleep(float(os.environ.get("GPU_CHECK_HOLD_S", "0")))
        return ["1"] * len(batch["prompt"])


def driver_alloc(torch, size: int) -> int:
    """cuMemAlloc in torch's current context on cuda:0: memory torch's allocator never sees."""
    import ctypes

    torch.zeros(1, device="cuda:0")  # make the primary context current
    libcuda = ctypes.CDLL("libcuda.so.1")
    pointer = ctypes.c_uint64()
    status = libcuda.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(size))
    if status != 0:
        raise RuntimeError(f"cuMemAlloc_v2 failed with CUresult {status}")
    return pointer.value


def check_profile(n_gpus: int, cap_gib: float):
    minutes = {t: 10 for t in (*TRACKS, ALL_AROUND)}
    raw = {"gpus": n_gpus, "gpu_name": "check", "gpu_memory_gib": cap_gib, "compute_capability": None,
           "bfloat16": None, "flash_attention_2": None, "vcpus": 8, "ram_gb": 64, "seconds_per_sample": 60,
           "track_minutes": minutes}
    return profile_from_dict("gpu-check", raw, "gpu_memory_check.py")


def run_check(profile, **env) -> tuple[RunOutcome, list[str]]:
    spec = ModelSpec(model="benchmarks.gpu_memory_check:GpuModel", repo=str(ROOT),
                     env={f"GPU_CHECK_{k.upper()}": str(v) for k, v in env.items()})
    with tempfile.TemporaryDirectory() as out:
        outcome = run_model(spec, QUESTIONS, out, limits_for(profile, ALL_AROUND))
        outputs = [json.loads(line)["output"] for line in (Path(out) / "predictions.jsonl").read_text().splitlines()]
    return outcome, outputs


def summary(outcome: RunOutcome) -> dict:
    return {"verdict": str(outcome.verdict), "gpus": [asdict(g) for g in outcome.gpus],
            "notes": list(outcome.notes), "wall_s": round(outcome.wall_s, 2)}


def environment() -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "devices": [
        {"name": torch.cuda.get_device_name(i), "total_gib": round(torch.cuda.get_device_properties(i).total_memory / GIB, 2)}
        for i in range(torch.cuda.device_count())]}
    from submission.harness.limits import load_nvml

    nvml = load_nvml()
    info["nvml"] = nvml is not None
    if nvml is not None:
        torch.zeros(1, device="cuda:0")
        handle = nvml.nvmlDeviceGetHandleByIndex(0)
        pids = [p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)]
        info["nvml_lists_own_pid"] = os.getpid() in pids
    return info


def checks(cap: float) -> list[tuple[str, bool, dict]]:
    import torch

    results = []
    small = check_profile(1, cap)
    for name, mode, gib, expected in (("torch_cap", "torch", 2 * cap, "gpu_memory"),
                                      ("nvml_cap", "driver", 2 * cap, "gpu_memory"),
                                      ("within_cap", "torch", cap / 2, "ok")):
        outcome, _ = run_check(small, mode=mode, gib=gib, hold_s=3)
        passed = outcome.verdict.status == expected
        if name == "nvml_cap":
            passed = passed and outcome.verdict.detail.startswith("GPU 0 ")
        if name == "within_cap":
            peaks = [p for p in (outcome.gpus[0].peak_bytes, outcome.gpus[0].torch_peak_bytes) if p]
            passed = passed and bool(peaks) and all(cap / 2 * GIB <= p <= cap * GIB for p in peaks)
        results.append((name, passed, summary(outcome)))
    outcome, outputs = run_check(small, mode="count")
    results.append(("visible_gpus", outcome.verdict.ok and set(outputs) == {"1"},
                    {**summary(outcome), "device_count_seen": sorted(set(outputs))}))
    if torch.cuda.get_device_properties(0).total_memory >= 24 * GIB:
        outcome, _ = run_check(load_profiles()["phase2"], mode="torch", gib=20, hold_s=1)
        results.append(("t4_cap", outcome.verdict.status == "gpu_memory", summary(outcome)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap-gib", type=float, default=2.0, help="per-card cap of the check profile (default: 2)")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("SKIPPED: torch is not installed; nothing checked")
        return 77
    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA GPU here; run this on a GPU machine")
        return 77
    report = {"environment": environment(), "checks": {}}
    for name, passed, details in checks(args.cap_gib):
        report["checks"][name] = {"passed": passed, **details}
        print(f"{'PASS' if passed else 'FAIL'} {name}: {details['verdict']}", file=sys.stderr)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if all(c["passed"] for c in report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
