"""Fake models for the GPU emulation tests: what the model's process sees of the profile's card and where
its caches go, reported as JSON answers; a model holding bfloat16 weights on a (fake) CUDA device."""

import json
import os
import sys

from models.base_model import ShopBenchBaseModel

CACHE_VARIABLES = ("TRITON_HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "XDG_CACHE_HOME", "HF_HOME",
                   "VLLM_CACHE_ROOT", "CUDA_CACHE_PATH")


class _Reports(ShopBenchBaseModel):
    def get_batch_size(self) -> int:
        return 2

    def batch_predict(self, batch, is_multiple_choice):
        return [json.dumps(self.report())] * len(batch["prompt"])


class WritesCaches(_Reports):
    """Writes a file where each cache variable points; answers with the paths and the scratch folder."""

    def report(self):
        written = {}
        for name in CACHE_VARIABLES:
            folder = os.environ.get(name)
            if folder is not None:
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, "kernel.bin"), "wb") as handle:
                    handle.write(b"x" * 1000)
            written[name] = folder
        return {"caches": written, "tmpdir": os.environ.get("TMPDIR")}


PACKAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "packages")  # a stand-in flash_attn


class SeesTheCard(_Reports):
    """Answers with what torch and the import system tell a library about the card in its process."""

    def __init__(self):
        import torch

        self.torch = torch
        sys.path.insert(0, PACKAGES)

    def report(self):
        torch = self.torch
        try:
            import flash_attn

            flash = f"imported {flash_attn.__version__}"
        except ImportError as exc:
            flash = f"ImportError: {exc}"
        return {"capability_function": torch.cuda.get_device_capability.__module__,
                "bf16_function": torch.cuda.is_bf16_supported.__module__,
                "bf16_supported": torch.cuda.is_bf16_supported(),
                "flash_sdp": torch.backends.cuda.flash_sdp_enabled(),
                "cudnn_sdp": torch.backends.cuda.cudnn_sdp_enabled(),
                "mem_efficient_sdp": torch.backends.cuda.mem_efficient_sdp_enabled(),
                "flash_attn": flash}


def on_fake_cuda(module):
    """``module`` with its parameters replaced by ones that say they are on cuda:0 (a CPU test's stand-in for
    a model moved to the GPU: the dtype is real, the device a label)."""
    import torch

    class CudaLabelled(torch.nn.Parameter):
        @property
        def is_cuda(self):
            return True

        @property
        def device(self):
            return torch.device("cuda:0")

    for owner in module.modules():
        for name, parameter in list(owner._parameters.items()):
            if parameter is not None:
                owner._parameters[name] = CudaLabelled(parameter.data, requires_grad=False)
    return module


class TinyCausalLM:
    """A stand-in for a transformers model: a body and an lm_head, in the dtype asked for."""

    def __init__(self, dtype):
        import torch

        self.body = torch.nn.Sequential(torch.nn.Embedding(16, 8), torch.nn.Linear(8, 8)).to(torch.float16)
        self.lm_head = torch.nn.Linear(8, 16).to(dtype)


class HoldsBfloat16OnGpu(_Reports):
    """Loads its weights in bfloat16 on the GPU: in __init__, or (FAKE_LOAD_LATE=1) in its first batch, held
    inside a plain object in a dict, as a pipeline holds its model."""

    def __init__(self):
        self.pipeline = {}
        if os.environ.get("FAKE_LOAD_LATE") != "1":
            self.load()

    def load(self):
        import torch

        dtype = getattr(torch, os.environ.get("FAKE_DTYPE", "bfloat16"))
        model = TinyCausalLM(dtype)
        on_fake_cuda(model.body), on_fake_cuda(model.lm_head)
        self.pipeline["generator"] = model

    def report(self):
        if not self.pipeline:
            self.load()
        return {"loaded": True}
