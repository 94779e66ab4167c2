"""Fake models for the harness tests: each a small ShopBench model that fails one way, on one batch."""

import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import time

from models.base_model import ShopBenchBaseModel


def answer(prompt: str, is_multiple_choice: bool) -> str:
    """Deterministic: the same seed and prompt always give the same answer, whatever came before."""
    digest = hashlib.sha256(f"{os.environ.get('SHOPBENCH_SEED', '0')}|{prompt}".encode()).digest()
    if is_multiple_choice:
        return str(digest[0] % 4)
    return ", ".join(str(1 + b % 5) for b in digest[:3])


class Deterministic(ShopBenchBaseModel):
    """Answers every batch; subclasses override ``fail`` to break on batch FAKE_FAIL_BATCH."""

    def __init__(self):
        self.batches = 0
        self.fail_batch = int(os.environ.get("FAKE_FAIL_BATCH", "2"))

    def get_batch_size(self) -> int:
        return int(os.environ.get("FAKE_BATCH_SIZE", "2"))

    def batch_predict(self, batch, is_multiple_choice):
        index, self.batches = self.batches, self.batches + 1
        delay = float(os.environ.get("FAKE_DELAY_S", "0"))
        if delay:
            time.sleep(delay)
        answers = [answer(p, is_multiple_choice) for p in batch["prompt"]]
        return self.fail(answers) if index == self.fail_batch else answers

    def fail(self, answers):
        return answers


class SleepsPastDeadline(Deterministic):
    def fail(self, answers):
        time.sleep(600)
        return answers


class HangsInCtypes(Deterministic):
    """Stuck in native code: libc sleep(3) through ctypes, where Python cannot interrupt it."""

    def fail(self, answers):
        ctypes.CDLL(None).sleep(600)
        return answers


class HangsInRead(Deterministic):
    """Blocked in a read(2) that never returns: nobody writes to the pipe."""

    def fail(self, answers):
        read_end, _write_end = os.pipe()
        os.read(read_end, 1)
        return answers


class RaisesInInit(ShopBenchBaseModel):
    def __init__(self):
        raise RuntimeError("checkpoint not found: /models/missing")


class RaisesInBatchPredict(Deterministic):
    def fail(self, answers):
        raise ValueError("tokenizer exploded")


class TooFewAnswers(Deterministic):
    def fail(self, answers):
        return answers[:-1]


class ReturnsIntegers(Deterministic):
    def fail(self, answers):
        return [int(a.split(",")[0]) for a in answers]


class BadBatchSize(Deterministic):
    def get_batch_size(self):
        return 17 if self.batches == self.fail_batch else 2


class AllocatesTooMuch(Deterministic):
    """Asks for FAKE_ALLOC_GB of RAM at once (more than the profile allows)."""

    def fail(self, answers):
        self.hog = b"\1" * int(float(os.environ.get("FAKE_ALLOC_GB", "2")) * 1e9)
        return answers


class WorkersTooBig(Deterministic):
    """Starts two worker processes that each hold FAKE_ALLOC_GB: the RSS watchdog sums the process tree."""

    def fail(self, answers):
        size = int(float(os.environ.get("FAKE_ALLOC_GB", "0.3")) * 1e9)
        code = f"import time; x = b'1' * {size}; print('allocated', flush=True); time.sleep(600)"
        self.workers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) for _ in range(2)]
        for worker in self.workers:
            worker.stdout.readline()
        time.sleep(600)
        return answers


class ExitsProcess(Deterministic):
    def fail(self, answers):
        os._exit(3)


class KillsItselfOnce(Deterministic):
    """SIGKILLs its own process on the failing batch, once: FAKE_MARKER records that it did."""

    def fail(self, answers):
        marker = os.environ["FAKE_MARKER"]
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return answers


class AllocatesGpuMemory(Deterministic):
    """Allocates FAKE_GPU_GB on cuda:0 (a GPU test: more than the profile's per-card cap)."""

    def fail(self, answers):
        import torch

        self.tensor = torch.empty(int(float(os.environ.get("FAKE_GPU_GB", "2")) * 1024**3), dtype=torch.uint8,
                                  device="cuda:0")
        time.sleep(float(os.environ.get("FAKE_GPU_HOLD_S", "0")))
        return answers


class ReportsCardEnvironment(Deterministic):
    """Answers with the GPU variables its process was given (what the harness exports), as JSON."""

    NAMES = ("SHOPBENCH_GPU_MEMORY_BYTES", "SHOPBENCH_COMPUTE_CAPABILITY", "SHOPBENCH_BFLOAT16",
             "SHOPBENCH_FLASH_ATTENTION_2", "SHOPBENCH_GPU_NAME", "CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES",
             "PYTORCH_CUDA_ALLOC_CONF")

    def batch_predict(self, batch, is_multiple_choice):
        import json

        return [json.dumps({name: os.environ.get(name) for name in self.NAMES})] * len(batch["prompt"])


class CublasAllocFails(Deterministic):
    """Raises what torch raises when cuBLAS cannot allocate its workspace, wrapped by a library, on GPU 2."""

    def fail(self, answers):
        try:
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)` on GPU 2")
        except RuntimeError as exc:
            raise ValueError("the quantised matmul failed") from exc


class TouchesFileEachBatch(Deterministic):
    """Creates FAKE_MARKER once it has answered a batch (a fake NVML reads it as 'now the model holds memory')."""

    def fail(self, answers):
        open(os.environ["FAKE_MARKER"], "w").close()
        return answers
