"""Fake models for the GPU emulation tests: what the model's process sees of the profile's card and where
its caches go, reported as JSON answers; a model holding bfloat16 weights on a (fake) CUDA device."""

import json
import os

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
