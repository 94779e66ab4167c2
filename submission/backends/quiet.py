"""Silence what other libraries print that does not concern a kit run, and nothing else.

Two messages, matched exactly, dropped where they are raised:

- bitsandbytes' "Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'"
  (a WARNING of the logger ``bitsandbytes.backends.cpu.ops``, logged once when bitsandbytes is imported on
  a CPU with AVX512-BF16). peft imports bitsandbytes whenever it is installed, so every LoRA run on such a
  CPU printed it, ``quantization: none`` included. The kit itself imports bitsandbytes only when
  ``quantization`` asks for it (``transformers.quantization_config``), and then outside ``peft_quietly``,
  so a 4-bit run on the CPU still hears that a faster kernel exists.
- transformers 5's FutureWarning "`is_gradient_checkpointing` is deprecated", which peft 0.21 triggers
  each time it wraps a model (``get_peft_model``, ``PeftModel.from_pretrained``): nothing a user can act on.

``peft_quietly()`` is the context every peft import and wrap in the kit runs in.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator

BNB_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"
BNB_CPU_KERNEL_NOTICE = "Failed to load CPU gemm_4bit_forward from kernels-community"
GRADIENT_CHECKPOINTING_WARNING = "`is_gradient_checkpointing` is deprecated"


class DropMessage(logging.Filter):
    """A logger filter that drops the records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def drop_bitsandbytes_cpu_kernel_notice() -> None:
    """Drop bitsandbytes' CPU kernel notice from its logger (once per process; the logger exists before
    bitsandbytes does, so this works whether or not it is imported yet)."""
    logger = logging.getLogger(BNB_CPU_LOGGER)
    if not any(isinstance(f, DropMessage) and f.prefix == BNB_CPU_KERNEL_NOTICE for f in logger.filters):
        logger.addFilter(DropMessage(BNB_CPU_KERNEL_NOTICE))


@contextlib.contextmanager
def peft_quietly() -> Iterator[None]:
    """Import or call peft without the two messages above; every other warning and log line passes."""
    drop_bitsandbytes_cpu_kernel_notice()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=re.escape(GRADIENT_CHECKPOINTING_WARNING), category=FutureWarning)
        yield
