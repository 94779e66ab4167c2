#!/usr/bin/env python3
"""GPU checks of the harness's T4 emulation: run on a machine with a CUDA GPU (exit 77, "skipped", without one).

Each check runs a small model (``acceptance/gpu_check_models.py``) through ``run_model`` under a profile
(the kit's phase2 or cpu, or a 1-GPU profile with a CAP GiB cap written for the check) and judges the
verdict; each can fail on a one-GPU machine when what it checks is broken. Checks that need more than this
machine has are skipped with the reason.

  torch_cap            cap CAP; 2 x CAP through torch: torch's own out-of-memory error (its cap, set only
                       through PYTORCH_CUDA_ALLOC_CONF), not the NVML watchdog -> gpu_memory
  nvml_cap             cap CAP; 2 x CAP with cuMemAlloc (outside torch): the NVML watchdog -> gpu_memory
  within_cap           cap CAP; CAP / 2 through torch -> ok; NVML's and torch's peaks between CAP / 2 and CAP
  visible_gpus         a 1-GPU profile: one device, named by its index in CUDA_VISIBLE_DEVICES (item 1)
  hidden_gpus          the cpu profile: the model sees no GPU
  spawned_indices      a process the model spawns parses CUDA_VISIBLE_DEVICES with int(), as vLLM does, and
                       allocates on cuda:0 -> ok (item 1)
  nvml_missing_refused phase2 with nvidia-ml-py hidden from the harness: refused before the model runs (item 2)
  tree_without_psutil  cap CAP, psutil hidden from the harness: a spawned process holding 2 x CAP through the
                       driver is found from /proc -> gpu_memory (item 2)
  triton_compile       phase2, HOME unwritable as the container's read-only root: torch.compile on the GPU
                       compiles with Triton into the scratch -> ok (item 3)
  triton_container     the same in a container (--container-image IMAGE with torch; docker and the NVIDIA
                       runtime needed), with the runner's cache variables (item 3)
  capability_seen      phase2: torch.cuda.get_device_capability() is 7.5 and is_bf16_supported() False in the
                       model's process, flash SDP off, flash_attn refused where installed (item 5)
  bf16_weights         phase2: a model holding bfloat16 weights on the GPU -> unsupported naming the card (item 5)
  t4_20gb              phase2: 20 GB through torch -> torch's out-of-memory error (cards of 24 GiB or more)
  spawned_driver_16gb  phase2: a process the model spawns holds 16 GB (cuMemAlloc) -> gpu_memory from NVML's
                       accounting of the model's processes (cards of 24 GiB or more)
  spawned_torch_16gb   phase2: a spawned process allocates 16 GB through torch: the cap it inherits stops it
  bf16_refused         phase2: the transformers baseline with dtype: bfloat16 -> model_error naming the card
  fa2_refused          phase2: attn_implementation: flash_attention_2 -> model_error (idem)
  fork_after_import    phase2: a model that imports torch, then forks a worker that uses CUDA -> ok
  baseline_4bit_fp16   phase2: the baseline in 4 bits (bitsandbytes) -> ok, computing in float16

Run it from the repository root, as a module (the wheels it needs beyond torch and transformers, for a
machine without a package index: ``acceptance/gpu_wheels.txt``):

    python -m acceptance.gpu_memory_check                       # all checks, a JSON report on stdout
    python -m acceptance.gpu_memory_check --json gpu_report.json --only torch_cap,bf16_weights

The checks share a time limit (--budget-s, default 330 s): each gets as its track budget what is left
of it (at most CHECK_BUDGET_S; a check that hangs ends as a timeout verdict), and a check with less than
MIN_CHECK_S left is skipped, saying so. So the script ends within about 6 minutes on one GPU, whatever
happens. Exit status: 0 every check that ran passed, 1 a check
failed, 77 no CUDA GPU here (nothing checked).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

from acceptance import gpu_check_judges as judges
from acceptance.gpu_check_judges import Check
from submission.errors import LimitsError
from submission.harness.outcome import ModelSpec, RunOutcome
from submission.harness.profiles import limits_for, load_profiles, profile_from_dict
from submission.harness.runner import run_model
from submission.scoring.data import ALL_AROUND, TRACKS, Question

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3
QUESTIONS = [Question(row, f"question {row}", False) for row in range(4)]
MODEL = "acceptance.gpu_check_models:GpuModel"
CHECK_BUDGET_S = 150.0  # the most one check may take: a check that hangs ends as a timeout verdict
DEFAULT_BUDGET_S = 330.0  # all checks together
MIN_CHECK_S = 20.0  # a check needs at least this much of the time left to start


def check_profile(n_gpus: int, cap_gib: float):
    minutes = {t: 10 for t in (*TRACKS, ALL_AROUND)}
    raw = {"gpus": n_gpus, "gpu_name": "check", "gpu_memory_gib": cap_gib, "compute_capability": None,
           "bfloat16": None, "flash_attention_2": None, "vcpus": 8, "ram_gb": 64, "seconds_per_sample": 120,
           "track_minutes": minutes}
    return profile_from_dict("gpu-check", raw, "gpu_memory_check.py")


@contextlib.contextmanager
def hidden(modules: tuple[str, ...]):
    """The harness (this process) without ``modules``: importing them fails, as where they are not installed."""
    saved = {name: sys.modules.get(name) for name in modules}
    try:
        for name in modules:
            sys.modules[name] = None
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def run_check(check: Check, budget_s: float = CHECK_BUDGET_S) -> tuple[RunOutcome | None, list[str]]:
    """Run the check's model under its profile, within ``budget_s``; a refusal before the model runs is
    returned as the one output "LimitsError: ..." with no outcome."""
    env = {f"GPU_CHECK_{k.upper()}": str(v) for k, v in check.settings.items()} | dict(check.env)
    spec = ModelSpec(model=MODEL, repo=str(ROOT), env=env)
    limits = dataclasses.replace(limits_for(check.profile, ALL_AROUND), budget_s=budget_s)
    with tempfile.TemporaryDirectory() as out, hidden(check.hide):
        try:
            outcome = run_model(spec, QUESTIONS, out, limits)
        except LimitsError as exc:
            return None, [f"LimitsError: {exc}"]
        path = Path(out) / "predictions.jsonl"
        outputs = [json.loads(line)["output"] for line in path.read_text().splitlines()] if path.exists() else []
    return outcome, outputs


def summary(outcome: RunOutcome | None, outputs: list[str]) -> dict:
    if outcome is None:
        return {"refused": outputs[0][:1000]}
    return {"verdict": str(outcome.verdict), "gpus": [dataclasses.asdict(g) for g in outcome.gpus],
            "notes": list(outcome.notes), "wall_s": round(outcome.wall_s, 2), "outputs": sorted(set(outputs))[:3]}


def run_one(check: Check, baseline, budget_s: float = CHECK_BUDGET_S) -> dict:
    if check.skip:
        return {"status": "skipped", "why": check.skip}
    started = time.perf_counter()
    try:
        if check.runner is not None:  # a check that does not go through run_model (a container)
            passed, found = check.runner(budget_s)
            return {"status": "passed" if passed else "failed", **found,
                    "check_s": round(time.perf_counter() - started, 1)}
        if check.settings.get("mode") == "lazy-baseline":
            check = dataclasses.replace(check, settings=baseline(**check.settings["settings"]))
        outcome, outputs = run_check(check, budget_s)
        passed = check.judge(outcome, outputs)
        return {"status": "passed" if passed else "failed", **summary(outcome, outputs),
                "check_s": round(time.perf_counter() - started, 1)}
    except Exception:  # noqa: BLE001 - a broken check is a failed check, and the others still run
        return {"status": "failed", "error": traceback.format_exc()[-3000:]}


def run_all(table: list[Check], baseline, budget_s: float, wanted: set[str] | None, report: dict,
            write=None) -> dict:
    """Run the checks in order within ``budget_s`` in all: each gets what is left (at most
    CHECK_BUDGET_S); one with less than MIN_CHECK_S left is skipped, saying so."""
    started = time.monotonic()
    for check in table:
        if wanted is not None and check.name not in wanted:
            continue
        left = budget_s - (time.monotonic() - started)
        if left < MIN_CHECK_S:
            result = {"status": "skipped", "why": f"the script's time budget ({budget_s:g} s) was used up"}
        else:
            result = run_one(check, baseline, min(CHECK_BUDGET_S, left))
        report["checks"][check.name] = result
        print(f"{result['status'].upper()} {check.name}: "
              f"{result.get('verdict') or result.get('refused') or result.get('why') or 'error'}",
              file=sys.stderr, flush=True)
        if write is not None:  # written after every check: a run cut short keeps what it found
            write(report)
    report["total_s"] = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap-gib", type=float, default=2.0,
                        help="per-card cap of the 1-GPU check profile (default: 2)")
    parser.add_argument("--json", help="also write the report to this file")
    parser.add_argument("--only", help="comma-separated check names (default: all)")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help=f"seconds for all the checks together (default: {DEFAULT_BUDGET_S:g})")
    parser.add_argument("--container-image", help="an image with torch (CUDA) for triton_container")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("SKIPPED: torch is not installed; nothing checked")
        return 77
    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA GPU here; run this on a GPU machine")
        return 77
    report = {"environment": judges.environment(), "checks": {}}
    write = (lambda r: Path(args.json).write_text(json.dumps(r, indent=2) + "\n")) if args.json else None
    with tempfile.TemporaryDirectory() as tmp:
        profiles = {"small": check_profile(1, args.cap_gib), **load_profiles()}
        table, baseline = judges.checks(args.cap_gib, profiles, judges.Checkpoint(Path(tmp) / "tiny"),
                                        args.container_image)
        wanted = set(args.only.split(",")) if args.only else None
        run_all(table, baseline, args.budget_s, wanted, report, write)
    print(json.dumps(report, indent=2))
    return 0 if all(c["status"] != "failed" for c in report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
