#!/usr/bin/env python3
"""GPU checks of the harness's T4 emulation: run on a machine with a CUDA GPU (exit 77, "skipped", without one).

Each check runs a small model through ``run_model`` in its own process, under a profile (the kit's
phase2, or a 1-GPU profile with a CAP GiB cap written for the check), and compares the verdict with the
expected one. Checks that need more than this machine has are skipped with the reason.

  torch_cap           cap CAP; the model allocates 2 x CAP through torch: torch's cap, set only through
                      PYTORCH_CUDA_ALLOC_CONF, raises CUDA OOM -> gpu_memory naming GPU 0
  nvml_cap            cap CAP; 2 x CAP with cuMemAlloc (outside torch): the NVML watchdog -> gpu_memory
  within_cap          cap CAP; CAP / 2 through torch -> ok; NVML's and torch's peaks between CAP / 2 and CAP
  visible_gpus        a 1-GPU profile: the model sees torch.cuda.device_count() == 1
  t4_20gb             phase2: 20 GB through torch -> gpu_memory (cards of 24 GiB or more)
  spawned_driver_16gb phase2: a process the model spawns holds 16 GB (cuMemAlloc) -> gpu_memory from NVML's
                      accounting of the model's processes (cards of 24 GiB or more)
  spawned_torch_16gb  phase2: a spawned process allocates 16 GB through torch: the cap it inherits stops it
                      -> gpu_memory (cards of 24 GiB or more)
  capability_seen     phase2: backends.hardware.cuda_capability() in the model's process is 7.5 at most
  bf16_refused        phase2: the transformers baseline with dtype: bfloat16 -> model_error naming the card
                      (meaningful on compute capability 8.0 or more)
  fa2_refused         phase2: attn_implementation: flash_attention_2 -> model_error (idem)
  fork_after_import   phase2: a model that imports torch, then forks a worker that uses CUDA -> ok
  baseline_4bit_fp16  phase2: the baseline in 4 bits (bitsandbytes) -> ok, computing in float16

Run it from the repository root, as a module:

    python -m acceptance.gpu_memory_check                       # all checks, a JSON report on stdout
    python -m acceptance.gpu_memory_check --json gpu_report.json --only torch_cap,bf16_refused

Exit status: 0 every check that ran passed, 1 a check failed, 77 no CUDA GPU here (nothing checked).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from submission.harness.outcome import ModelSpec, RunOutcome
from submission.harness.profiles import limits_for, load_profiles, profile_from_dict
from submission.harness.runner import run_model
from submission.scoring.data import ALL_AROUND, TRACKS, Question

ROOT = Path(__file__).resolve().parents[1]

GIB = 1024**3
QUESTIONS = [Question(row, f"question {row}", False) for row in range(4)]
MODEL = "acceptance.gpu_memory_check:GpuModel"
WORKER = """
import ctypes, sys, time, torch
size = int(sys.argv[2])
try:
    if sys.argv[1] == "torch":
        held = torch.empty(size, dtype=torch.uint8, device="cuda:0"); torch.cuda.synchronize()
    else:
        torch.zeros(1, device="cuda:0"); pointer = ctypes.c_uint64()
        status = ctypes.CDLL("libcuda.so.1").cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(size))
        if status: raise RuntimeError(f"cuMemAlloc_v2 failed with CUresult {status}")
except Exception as exc:
    sys.exit(" ".join(str(exc).split())[:1000])  # one line: the model raises it as its own first line
time.sleep(float(sys.argv[3]))
"""


# ---------------------------------------------------------------- the model the checks run


class GpuModel:
    """What it does depends on GPU_CHECK_MODE (set by the check): allocate through torch or the driver
    in its first batch, spawn a process that does, report what it sees, build the baseline, fork."""

    def __init__(self):
        import torch

        self.torch, self.mode, self.held = torch, os.environ["GPU_CHECK_MODE"], []
        self.size = int(float(os.environ.get("GPU_CHECK_BYTES", GIB)))
        self.hold_s = float(os.environ.get("GPU_CHECK_HOLD_S", "0"))
        self.answer = "1"
        if self.mode == "baseline":
            self.answer = build_baseline(json.loads(os.environ["GPU_CHECK_BASELINE"]))
        elif self.mode == "fork":
            self.answer = fork_cuda_worker()

    def get_batch_size(self) -> int:
        return 2

    def batch_predict(self, batch, is_multiple_choice):
        n = len(batch["prompt"])
        if self.mode == "count":
            return [str(self.torch.cuda.device_count())] * n
        if self.mode == "capability":
            from submission.backends.hardware import cuda_capability

            return [json.dumps([cuda_capability(), self.torch.cuda.get_device_capability(0)])] * n
        if self.mode in ("torch", "driver") and not self.held:
            self.held.append(allocate(self.torch, self.mode, self.size))
            time.sleep(self.hold_s)
        if self.mode.startswith("spawn-") and not self.held:
            self.held.append(spawn_allocating(self.mode.split("-", 1)[1], self.size, self.hold_s))
        return [self.answer] * n


def allocate(torch, how: str, size: int):
    if how == "torch":
        tensor = torch.empty(size, dtype=torch.uint8, device="cuda:0")
        torch.cuda.synchronize()
        return tensor
    import ctypes

    torch.zeros(1, device="cuda:0")  # the primary context, current
    pointer = ctypes.c_uint64()
    status = ctypes.CDLL("libcuda.so.1").cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(size))
    if status != 0:
        raise RuntimeError(f"cuMemAlloc_v2 failed with CUresult {status}")
    return pointer.value


def spawn_allocating(how: str, size: int, hold_s: float) -> int:
    """A new process (inheriting this one's environment, as a model's workers do) allocates ``size``
    bytes and holds them; its failure is raised here with what it printed."""
    worker = subprocess.Popen([sys.executable, "-c", WORKER, how, str(size), str(hold_s)], stderr=subprocess.PIPE)
    _, err = worker.communicate()
    if worker.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines() or ["(nothing on stderr)"]
        raise RuntimeError(f"the worker failed: {lines[-1]}")
    return worker.pid


def fork_cuda_worker() -> str:
    """Fork (torch imported, CUDA not initialised) a worker that uses CUDA: fails if this process had
    initialised CUDA before the model was imported."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_cuda_in_fork, args=(queue,))
    worker.start()
    worker.join(120)
    return queue.get(timeout=5) if worker.exitcode == 0 else f"fork worker exit code {worker.exitcode}"


def _cuda_in_fork(queue) -> None:
    import torch

    queue.put(f"forked-cuda-ok {float(torch.ones(4, device='cuda:0').sum())}")


def build_baseline(settings: dict) -> str:
    """The kit's transformers baseline on a tiny checkpoint; answers with the dtypes it computes in."""
    from submission.backends.transformers import TransformersModel

    model = TransformersModel(**settings).model
    compute = getattr(getattr(model.config, "quantization_config", None), "bnb_4bit_compute_dtype", None)
    layers = sorted({type(m).__name__ for m in model.modules() if "Linear" in type(m).__name__})
    return json.dumps({"dtype": str(model.dtype), "compute": str(compute), "linear": layers})


def tiny_checkpoint(folder: Path) -> Path:
    """A 2-layer Llama with random weights and a small BPE tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(["question 0 1 2 3 answer"] * 8, trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|im_end|>",
        chat_template="{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                      "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, eos_token_id=eos, pad_token_id=eos,
                         bos_token_id=None)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------- running one check


def check_profile(n_gpus: int, cap_gib: float):
    minutes = {t: 10 for t in (*TRACKS, ALL_AROUND)}
    raw = {"gpus": n_gpus, "gpu_name": "check", "gpu_memory_gib": cap_gib, "compute_capability": None,
           "bfloat16": None, "flash_attention_2": None, "vcpus": 8, "ram_gb": 64, "seconds_per_sample": 120,
           "track_minutes": minutes}
    return profile_from_dict("gpu-check", raw, "gpu_memory_check.py")


def run_check(profile, **env) -> tuple[RunOutcome, list[str]]:
    spec = ModelSpec(model=MODEL, repo=str(ROOT), env={f"GPU_CHECK_{k.upper()}": str(v) for k, v in env.items()})
    with tempfile.TemporaryDirectory() as out:
        outcome = run_model(spec, QUESTIONS, out, limits_for(profile, ALL_AROUND))
        path = Path(out) / "predictions.jsonl"
        outputs = [json.loads(line)["output"] for line in path.read_text().splitlines()] if path.exists() else []
    return outcome, outputs


def summary(outcome: RunOutcome, outputs: list[str]) -> dict:
    return {"verdict": str(outcome.verdict), "gpus": [asdict(g) for g in outcome.gpus], "notes": list(outcome.notes),
            "wall_s": round(outcome.wall_s, 2), "outputs": sorted(set(outputs))[:3]}


def verdict_is(status: str, starts: str = "", contains: str = ""):
    def judge(outcome: RunOutcome, outputs: list[str]) -> bool:
        detail = outcome.verdict.detail
        return outcome.verdict.status == status and detail.startswith(starts) and contains in detail
    return judge


def ok_answering(predicate):
    return lambda outcome, outputs: outcome.verdict.ok and bool(outputs) and all(predicate(o) for o in outputs)


def peaks_between(low: float, high: float):
    def judge(outcome: RunOutcome, outputs: list[str]) -> bool:
        usage = outcome.gpus[0] if outcome.gpus else None
        peaks = [p for p in (usage.peak_bytes, usage.torch_peak_bytes) if p] if usage else []
        return outcome.verdict.ok and bool(peaks) and all(low <= p <= high for p in peaks)
    return judge


def capability_at_most_75(output: str) -> bool:
    seen, _ = json.loads(output)
    return seen is not None and tuple(seen) <= (7, 5)


def fp16_4bit(output: str) -> bool:
    seen = json.loads(output)
    return seen["compute"] == "torch.float16" and "Linear4bit" in seen["linear"]


# ---------------------------------------------------------------- the checks


def environment() -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "devices": [
        {"name": torch.cuda.get_device_name(i), "capability": list(torch.cuda.get_device_capability(i)),
         "total_gib": round(torch.cuda.get_device_properties(i).total_memory / GIB, 2)}
        for i in range(torch.cuda.device_count())]}
    from submission.harness.gpu import load_nvml, plan_gpus

    nvml = load_nvml()
    info["nvml"] = nvml is not None
    if nvml is not None:
        plan = plan_gpus(None, nvml)
        info["nvml_process_call"], info["nvml_notes"] = plan.processes_call, list(plan.notes)
        info["accounting_mode"] = sorted(plan.accounting)
    for package in ("transformers", "bitsandbytes", "pynvml"):
        info[package] = _has(package)
    return info


def _has(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


class Checkpoint:
    """The tiny checkpoint, written on first use (only the baseline checks need transformers)."""

    def __init__(self, folder: Path):
        self.folder, self.made = folder, False

    def __call__(self) -> Path:
        if not self.made:
            tiny_checkpoint(self.folder)
            self.made = True
        return self.folder


def checks(cap: float, checkpoint: Checkpoint) -> tuple[list[tuple], object]:
    """(name, why it is skipped or None, profile, the model's settings, judge) for every check, and the
    settings maker of the baseline checks."""
    import torch

    small, phase2 = check_profile(1, cap), load_profiles()["phase2"]
    big = None if torch.cuda.get_device_properties(0).total_memory >= 24 * GIB else "the card has less than 24 GiB"
    no_hf = None if _has("transformers") and _has("tokenizers") else "transformers or tokenizers is not installed"
    no_bnb = no_hf or (None if _has("bitsandbytes") else "bitsandbytes is not installed")
    baseline = lambda **s: {"mode": "baseline", "baseline": json.dumps({"weights": str(checkpoint()), **s})}  # noqa: E731
    return [
        ("torch_cap", None, small, {"mode": "torch", "bytes": 2 * cap * GIB, "hold_s": 3},
         verdict_is("gpu_memory", "GPU 0 ")),
        ("nvml_cap", None, small, {"mode": "driver", "bytes": 2 * cap * GIB, "hold_s": 3},
         verdict_is("gpu_memory", "GPU 0 ")),
        ("within_cap", None, small, {"mode": "torch", "bytes": cap / 2 * GIB, "hold_s": 3},
         peaks_between(cap / 2 * GIB, cap * GIB)),
        ("visible_gpus", None, small, {"mode": "count"}, ok_answering(lambda o: o == "1")),
        ("t4_20gb", big, phase2, {"mode": "torch", "bytes": 20e9, "hold_s": 1}, verdict_is("gpu_memory", "GPU 0 ")),
        ("spawned_driver_16gb", big, phase2, {"mode": "spawn-driver", "bytes": 16e9, "hold_s": 10},
         verdict_is("gpu_memory", "GPU 0 ")),
        ("spawned_torch_16gb", big, phase2, {"mode": "spawn-torch", "bytes": 16e9, "hold_s": 1},
         verdict_is("gpu_memory", "GPU 0 ", "CUDA out of memory")),
        ("capability_seen", None, phase2, {"mode": "capability"}, ok_answering(capability_at_most_75)),
        ("bf16_refused", no_hf, phase2, {"mode": "lazy-baseline", "settings": dict(dtype="bfloat16")},
         verdict_is("model_error", contains="bfloat16 is not available on the grader's card")),
        ("fa2_refused", no_hf, phase2, {"mode": "lazy-baseline", "settings": dict(attn_implementation="flash_attention_2")},
         verdict_is("model_error", contains="flash_attention_2 is not available on the grader's card")),
        ("fork_after_import", None, phase2, {"mode": "fork"}, ok_answering(lambda o: o.startswith("forked-cuda-ok"))),
        ("baseline_4bit_fp16", no_bnb, phase2, {"mode": "lazy-baseline", "settings": dict(quantization="4bit")},
         ok_answering(fp16_4bit)),
    ], baseline


def run_one(name, skip, profile, settings, judge, baseline) -> dict:
    if skip:
        return {"status": "skipped", "why": skip}
    started = time.perf_counter()
    try:
        if settings.get("mode") == "lazy-baseline":
            settings = baseline(**settings["settings"])
        outcome, outputs = run_check(profile, **settings)
        passed = judge(outcome, outputs)
        return {"status": "passed" if passed else "failed", **summary(outcome, outputs),
                "check_s": round(time.perf_counter() - started, 1)}
    except Exception:  # noqa: BLE001 - a broken check is a failed check, and the others still run
        return {"status": "failed", "error": traceback.format_exc()[-3000:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap-gib", type=float, default=2.0, help="per-card cap of the 1-GPU check profile (default: 2)")
    parser.add_argument("--json", help="also write the report to this file")
    parser.add_argument("--only", help="comma-separated check names (default: all)")
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
    with tempfile.TemporaryDirectory() as tmp:
        table, baseline = checks(args.cap_gib, Checkpoint(Path(tmp) / "tiny"))
        wanted = set(args.only.split(",")) if args.only else None
        for name, skip, profile, settings, judge in table:
            if wanted is None or name in wanted:
                result = report["checks"][name] = run_one(name, skip, profile, settings, judge, baseline)
                print(f"{result['status'].upper()} {name}: {result.get('verdict') or result.get('why') or 'error'}",
                      file=sys.stderr, flush=True)
                if args.json:  # written after every check: a run cut short keeps what it found
                    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if all(c["status"] != "failed" for c in report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
