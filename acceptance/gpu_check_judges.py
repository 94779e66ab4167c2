"""The GPU checks' table and judges (``acceptance/gpu_memory_check.py`` runs them).

Each judge reads what the harness returned (the verdict, the model's answers) and is written so that the
check fails on a one-GPU machine when the thing it checks is broken: torch's cap is judged on torch's own
out-of-memory message (the NVML watchdog's verdict names the card too), the visible GPU on the form of
``CUDA_VISIBLE_DEVICES``, the card on what torch reports in the model's process. The judges are plain
functions, tested on the CPU (``tests/acceptance/test_gpu_check_judges.py``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1024**3
TORCH_OOM = "CUDA out of memory"  # torch's OutOfMemoryError message, which the verdict's detail quotes
UNWRITABLE_HOME = "/dev/null/home"  # even root cannot create anything under it: the container's read-only root


@dataclass(frozen=True)
class Check:
    name: str
    profile: object
    settings: dict
    judge: Callable
    skip: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # the model's environment, beyond GPU_CHECK_*
    hide: tuple[str, ...] = ()  # modules the harness runs without
    runner: Callable | None = None  # a check that does not go through run_model


# ---------------------------------------------------------------- judges


def verdict_is(status: str, starts: str = "", contains: str = ""):
    def judge(outcome, outputs) -> bool:
        if outcome is None:
            return False
        detail = outcome.verdict.detail
        return outcome.verdict.status == status and detail.startswith(starts) and contains in detail
    return judge


def torch_out_of_memory(outcome, outputs) -> bool:
    """torch's own cap stopped it: its out-of-memory error, not the NVML watchdog (which names GPU 0 too)."""
    return verdict_is("gpu_memory", "GPU 0 ", TORCH_OOM)(outcome, outputs)


def ok_answering(predicate):
    def judge(outcome, outputs) -> bool:
        return outcome is not None and outcome.verdict.ok and bool(outputs) and all(predicate(o) for o in outputs)
    return judge


def peaks_between(low: float, high: float):
    def judge(outcome, outputs) -> bool:
        usage = outcome.gpus[0] if outcome is not None and outcome.gpus else None
        peaks = [p for p in (usage.peak_bytes, usage.torch_peak_bytes) if p] if usage else []
        return outcome is not None and outcome.verdict.ok and bool(peaks) and all(low <= p <= high for p in peaks)
    return judge


def refused(contains: str):
    """The harness refused before the model ran (no outcome), saying ``contains``."""
    def judge(outcome, outputs) -> bool:
        return outcome is None and bool(outputs) and outputs[0].startswith("LimitsError: ") and contains in outputs[0]
    return judge


def one_gpu_by_index(output: str) -> bool:
    seen = json.loads(output)
    return seen["count"] == 1 and re.fullmatch(r"\d+", seen["visible"] or "") is not None


def no_gpu(output: str) -> bool:
    return json.loads(output)["count"] == 0


def indices_parsed(output: str) -> bool:
    seen = json.loads(output)
    return "error" not in seen and seen["count"] == len(seen["ids"]) == 1


def t4_card(output: str) -> bool:
    """torch in the model's process reports a T4: capability 7.5 at most, no bfloat16, no flash SDP, and
    flash_attn refused where it is installed."""
    seen = json.loads(output)
    refused = "ImportError: flash_attn cannot be used"
    flash_ok = not seen["flash_attn_installed"] or seen["flash_attn"].startswith(refused)
    return tuple(seen["capability"]) <= (7, 5) and seen["bf16"] is False and seen["flash_sdp"] is False and flash_ok


def triton_in_scratch(output: str) -> bool:
    seen = json.loads(output)
    return seen["files"] > 0 and bool(seen["tmpdir"]) and seen["triton_cache"].startswith(seen["tmpdir"])


def fp16_4bit(output: str) -> bool:
    seen = json.loads(output)
    return seen["compute"] == "torch.float16" and "Linear4bit" in seen["linear"]


# ---------------------------------------------------------------- the container check


TRITON_SCRIPT = ("import torch; f = torch.compile(lambda x: (x.sin() + x.cos()) * 2); "
                 "print('triton-ok', float(f(torch.ones(1024, device='cuda:0')).sum()))")


def container_command(image: str) -> list[str]:
    """``docker run`` as the grader's runner sets the scratch up: read-only root, /tmp and ~/.cache the
    only writable places, the runner's cache variables."""
    from submission.grading.container_contract import CONTAINER_HOME
    from submission.grading.container_runner import scratch_mounts
    from submission.harness.caches import container_cache_environment
    from submission.harness.profiles import limits_for, load_profiles
    from submission.scoring.data import ALL_AROUND

    mounts = scratch_mounts(limits_for(load_profiles()["phase2"], ALL_AROUND))
    env = {"HOME": CONTAINER_HOME, **container_cache_environment(CONTAINER_HOME)}
    return ["docker", "run", "--rm", "--gpus", "1", "--read-only", "--network", "none", "--user", "1001:1001",
            *[f"--tmpfs={point}:{options}" for point, options in mounts.items()],
            *[f"--env={name}={value}" for name, value in env.items()], "--entrypoint", "python3", image, "-c",
            TRITON_SCRIPT]


def container_runner(image: str):
    def run(budget_s: float) -> tuple[bool, dict]:
        command = container_command(image)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=budget_s)
        except subprocess.TimeoutExpired:
            return False, {"command": " ".join(command[:-1]) + " SCRIPT", "error": f"over {budget_s:.0f} s"}
        found = {"command": " ".join(command[:-1]) + " SCRIPT", "exit": done.returncode,
                 "stdout": done.stdout[-500:], "stderr": done.stderr[-1500:]}
        return done.returncode == 0 and "triton-ok" in done.stdout, found
    return run


# ---------------------------------------------------------------- the table


def checks(cap: float, profiles: dict, checkpoint, image: str | None) -> tuple[list[Check], Callable]:
    """Every check, in the order they run (the cheap and the issue's first), and the settings maker of
    the baseline checks."""
    import torch

    small, phase2, cpu = profiles["small"], profiles["phase2"], profiles["cpu"]
    big = None if torch.cuda.get_device_properties(0).total_memory >= 24 * GIB else "the card has less than 24 GiB"
    no_hf = None if _has("transformers") and _has("tokenizers") else "transformers or tokenizers is not installed"
    no_bnb = no_hf or (None if _has("bitsandbytes") else "bitsandbytes is not installed")
    no_docker = (None if image and shutil.which("docker") else
                 "needs docker and --container-image IMAGE (an image with a CUDA torch)")

    def baseline(**s: object) -> dict:
        return {"mode": "baseline", "baseline": json.dumps({"weights": str(checkpoint()), **s})}

    def lazy(**s: object) -> dict:
        return {"mode": "lazy-baseline", "settings": s}

    return [
        Check("torch_cap", small, {"mode": "torch", "bytes": 2 * cap * GIB, "hold_s": 3}, torch_out_of_memory),
        Check("nvml_cap", small, {"mode": "driver", "bytes": 2 * cap * GIB, "hold_s": 3},
              verdict_is("gpu_memory", "GPU 0 ")),
        Check("within_cap", small, {"mode": "torch", "bytes": cap / 2 * GIB, "hold_s": 3},
              peaks_between(cap / 2 * GIB, cap * GIB)),
        Check("visible_gpus", small, {"mode": "count"}, ok_answering(one_gpu_by_index)),
        Check("hidden_gpus", cpu, {"mode": "count"}, ok_answering(no_gpu)),
        Check("spawned_indices", small, {"mode": "spawn-indices"}, ok_answering(indices_parsed)),
        Check("nvml_missing_refused", phase2, {"mode": "count"}, refused("nvidia-ml-py"), hide=("pynvml",)),
        Check("tree_without_psutil", small, {"mode": "spawn-driver", "bytes": 2 * cap * GIB, "hold_s": 10},
              verdict_is("gpu_memory", "GPU 0 "), hide=("psutil",)),
        Check("capability_seen", phase2, {"mode": "capability"}, ok_answering(t4_card)),
        Check("bf16_weights", phase2, {"mode": "bf16-weights"},
              verdict_is("unsupported", "head.weight is bfloat16", "NVIDIA T4 (compute capability 7.5)")),
        Check("triton_compile", phase2, {"mode": "triton"}, ok_answering(triton_in_scratch),
              env={"HOME": UNWRITABLE_HOME}),
        Check("triton_container", None, {}, None, skip=no_docker, runner=container_runner(image) if image else None),
        Check("t4_20gb", phase2, {"mode": "torch", "bytes": 20e9, "hold_s": 1}, torch_out_of_memory, skip=big),
        Check("spawned_driver_16gb", phase2, {"mode": "spawn-driver", "bytes": 16e9, "hold_s": 10},
              verdict_is("gpu_memory", "GPU 0 "), skip=big),
        Check("spawned_torch_16gb", phase2, {"mode": "spawn-torch", "bytes": 16e9, "hold_s": 1},
              verdict_is("gpu_memory", "GPU 0 ", TORCH_OOM), skip=big),
        Check("bf16_refused", phase2, lazy(dtype="bfloat16"),
              verdict_is("model_error", contains="bfloat16 is not available on the grader's card"), skip=no_hf),
        Check("fa2_refused", phase2, lazy(attn_implementation="flash_attention_2"),
              verdict_is("model_error", contains="flash_attention_2 is not available on the grader's card"),
              skip=no_hf),
        Check("fork_after_import", phase2, {"mode": "fork"}, ok_answering(lambda o: o.startswith("forked-cuda-ok"))),
        Check("baseline_4bit_fp16", phase2, lazy(quantization="4bit"), ok_answering(fp16_4bit), skip=no_bnb),
    ], baseline


def environment() -> dict:
    import torch

    from submission.cuda import cuda_totals, driver_status
    from submission.harness.gpu import load_nvml, plan_gpus, torch_reads_fraction

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "devices": [
        {"name": torch.cuda.get_device_name(i), "capability": list(torch.cuda.get_device_capability(i)),
         "total_gib": round(torch.cuda.get_device_properties(i).total_memory / GIB, 2)}
        for i in range(torch.cuda.device_count())]}
    nvml = load_nvml()
    info["driver"] = driver_status(nvml).text
    info["torch_reads_fraction_key"] = torch_reads_fraction()  # False: torch's cap applies only once the model is built
    info["cuda_totals_mib"] = {uuid: total // 1024**2 for uuid, total in cuda_totals().items()}
    info["nvml"] = nvml is not None
    if nvml is not None:
        plan = plan_gpus(None, nvml)
        info["nvml_process_call"], info["nvml_notes"] = plan.processes_call, list(plan.notes)
        info["accounting_mode"] = sorted(plan.accounting)
        info["nvml_totals_mib"] = {d.uuid: d.total_bytes // 1024**2 for d in plan.devices}
    for package in ("transformers", "bitsandbytes", "pynvml", "psutil", "accelerate", "triton", "flash_attn"):
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
