"""The model the GPU checks run (``acceptance/gpu_memory_check.py``), and what it starts.

``GpuModel`` does what ``GPU_CHECK_MODE`` says (the check sets it through the model's environment):
allocate through torch or the driver in its first batch, spawn a process that does, report what it sees
of the card, hold bfloat16 weights, compile a kernel with Triton, build the kit's baseline, fork.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

GIB = 1024**3
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
# A process started as vLLM starts its workers: CUDA_VISIBLE_DEVICES parsed entry by entry with int().
INDEX_WORKER = """
import json, os, torch
ids = [int(entry) for entry in os.environ["CUDA_VISIBLE_DEVICES"].split(",")]
held = torch.empty(256 * 1024**2, dtype=torch.uint8, device="cuda:0"); torch.cuda.synchronize()
print(json.dumps({"ids": ids, "count": torch.cuda.device_count()}))
"""


class GpuModel:
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
        elif self.mode == "bf16-weights":  # a participant's own from_pretrained(dtype=torch.bfloat16), in small
            self.head = torch.nn.Linear(256, 256).to("cuda:0", torch.bfloat16)

    def get_batch_size(self) -> int:
        return 2

    def batch_predict(self, batch, is_multiple_choice):
        n = len(batch["prompt"])
        if self.mode in REPORTS:
            return [json.dumps(REPORTS[self.mode](self.torch))] * n
        if self.mode in ("torch", "driver") and not self.held:
            self.held.append(allocate(self.torch, self.mode, self.size))
            time.sleep(self.hold_s)
        if self.mode.startswith("spawn-") and not self.held:
            self.held.append(spawn_allocating(self.mode.split("-", 1)[1], self.size, self.hold_s))
        return [self.answer] * n


def sees_devices(torch) -> dict:
    return {"count": torch.cuda.device_count(), "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}


def sees_card(torch) -> dict:
    """What a library asking torch learns about the card, and whether flash_attn imports."""
    try:
        import flash_attn  # noqa: F401 - imported to see whether it loads

        flash = "imported"
    except ImportError as exc:
        flash = f"ImportError: {exc}"[:300]
    return {"capability": list(torch.cuda.get_device_capability(0)), "bf16": torch.cuda.is_bf16_supported(),
            "flash_sdp": torch.backends.cuda.flash_sdp_enabled(), "flash_attn": flash,
            "flash_attn_installed": __import__("importlib").util.find_spec("flash_attn") is not None}


def compiles_with_triton(torch) -> dict:
    """torch.compile of a small function on the GPU: Triton compiles a kernel into its cache."""
    function = torch.compile(lambda x: (x.sin() + x.cos()) * 2)
    value = float(function(torch.ones(1024, device="cuda:0")).sum())
    cache = os.environ.get("TRITON_CACHE_DIR") or os.path.expanduser("~/.triton/cache")
    files = sum(len(names) for _, _, names in os.walk(cache))
    return {"value": round(value, 3), "triton_cache": cache, "files": files, "tmpdir": os.environ.get("TMPDIR")}


def spawns_with_indices(torch) -> dict:
    done = subprocess.run([sys.executable, "-c", INDEX_WORKER], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]}
    return json.loads(done.stdout)


REPORTS = {"count": sees_devices, "capability": sees_card, "triton": compiles_with_triton,
           "spawn-indices": spawns_with_indices}


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
