"""What the launcher checks on a rendered command, engine by engine, before the server starts.

- **The memory cap** (``SHOPBENCH_GPU_MEMORY_BYTES``, per card). vLLM and SGLang reserve a fixed fraction
  of every card: the command must carry its flag (``{gpu_memory_utilization}`` fills it), and a literal
  fraction is checked against the cap. Recent ``llama-server`` fits its context and layers to the *free*
  memory of the card (``--fit``, on by default), so on an H200 it would keep the full context where a T4
  could not: under a cap its command must say how much to leave free (``--fit-target {fit_target_mib}``,
  filled from the cap) or size itself explicitly (both ``-c`` and ``-ngl``), else it is refused.
- **The card's dtypes.** Under a profile whose card has no bfloat16 (a T4), a vLLM or SGLang command gets
  ``--dtype float16`` unless it already names a dtype the card has (``auto`` would pick the checkpoint's,
  bfloat16 for most recent models, on a newer card); one asking for bfloat16 is refused.

``check_command`` applies both and returns the command to run and notes; pure functions of their
arguments, tested with injected numbers.
"""

from __future__ import annotations

import math
import os

from ...card import ProfileCard
from ...errors import ConfigError
from .gpu import MIB, GpuBudget, GpuMemoryError, fraction_text, gib, utilization

# Engines that reserve a fixed fraction of every card, and the flag that sets it.
FRACTION_FLAGS = {"vllm": "--gpu-memory-utilization", "sglang": "--mem-fraction-static"}
LLAMA_SERVER = "llama-server"
T4_DTYPES = {"float16", "half", "float32", "float"}  # what vLLM's and SGLang's --dtype accept that a T4 runs
BFLOAT16 = {"bfloat16", "bf16"}
LLAMA_DEFAULT_FIT_TARGET_MIB = 1024  # llama.cpp's own default margin
LLAMA_FIT = ("-fit", "--fit")
LLAMA_FIT_TARGET = ("-fitt", "--fit-target")
LLAMA_CONTEXT = ("-c", "--ctx-size")
LLAMA_LAYERS = ("-ngl", "--gpu-layers", "--n-gpu-layers")


def engine_of(argv: list[str]) -> str | None:
    """``vllm``, ``sglang`` or ``llama.cpp`` when the command starts one (``vllm serve``, ``python -m
    vllm...``, ``python -m sglang.launch_server``, ``llama-server``), else None."""
    head = [os.path.basename(a) for a in argv[:1]] + argv[1:3]
    if head and head[0] in (LLAMA_SERVER, LLAMA_SERVER + ".exe"):
        return "llama.cpp"
    for engine in FRACTION_FLAGS:
        if any(part == engine or part.startswith(engine + ".") for part in head):
            return engine
    return None


def flag_value(argv: list[str], *flags: str) -> str | None:
    """The value of the first ``--flag VALUE`` or ``--flag=VALUE`` in ``argv`` among ``flags``, or None."""
    for i, arg in enumerate(argv):
        for flag in flags:
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def set_flag(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with ``flag``'s value replaced (every occurrence), or the flag added at the end."""
    out, i, found = [], 0, False
    while i < len(argv):
        arg = argv[i]
        if arg == flag and i + 1 < len(argv):
            out += [flag, value]
            i, found = i + 2, True
        elif arg.startswith(flag + "="):
            out.append(f"{flag}={value}")
            i, found = i + 1, True
        else:
            out.append(arg)
            i += 1
    return out if found else out + [flag, value]


# ---------------------------------------------------------------- memory


def check_fraction(argv: list[str], engine: str, budget: GpuBudget) -> str:
    flag = FRACTION_FLAGS[engine]
    value = flag_value(argv, flag)
    if value is None:
        raise GpuMemoryError(
            f"the launch command starts {engine} without {flag}, so {engine} would reserve its default share of "
            f"each card ({gib(budget.card_bytes) if budget.card_bytes else 'unknown size'}), over the cap "
            f"{gib(budget.cap_bytes)}; add `{flag} {{gpu_memory_utilization}}` to launch")
    try:
        fraction = float(value)
    except ValueError:
        raise GpuMemoryError(f"{flag} {value!r} in the launch command is not a number") from None
    utilization(budget, fraction)
    return (f"{engine} {flag} {fraction_text(fraction)} of {gib(budget.card_bytes)} per card "
            f"(cap {gib(budget.cap_bytes)})")


def fit_target_mib(budget: GpuBudget) -> int:
    """llama.cpp's ``--fit-target``: the MiB to leave free on each card so that what it fits into the rest
    stays within the cap less the margin (at least its own default)."""
    cap = budget.cap_bytes
    if cap is None or not budget.enforced:
        return LLAMA_DEFAULT_FIT_TARGET_MIB
    if not budget.free_bytes:
        raise GpuMemoryError(f"{gib(budget.cap_bytes)} per card is the cap, but the cards' free memory cannot be read "
                             "(pynvml), so no --fit-target can be derived for llama-server; install nvidia-ml-py, "
                             "or give -c N and -ngl N sized for the cap")
    usable = cap - budget.margin_bytes
    leave = max(free - usable for free in budget.free_bytes)
    return max(LLAMA_DEFAULT_FIT_TARGET_MIB, math.ceil(leave / MIB))


def check_llama_cpp(argv: list[str], budget: GpuBudget) -> str:
    layers, context = flag_value(argv, *LLAMA_LAYERS), flag_value(argv, *LLAMA_CONTEXT)
    if layers is not None and layers.strip() == "0":
        return "llama-server -ngl 0: no layer on the GPU"
    if layers is not None and context is not None:
        return (f"llama-server sized by the command (-c {context}, -ngl {layers}); the harness measures it against "
                f"the cap {gib(budget.cap_bytes)}")
    fix = ("add `--fit-target {fit_target_mib}` (filled from the cap), or give both -c N and -ngl N sized for "
           f"the cap {gib(budget.cap_bytes)}")
    fit = flag_value(argv, *LLAMA_FIT)
    if fit is not None and fit.strip().lower() in ("off", "0", "false"):
        raise GpuMemoryError(f"llama-server with --fit {fit} and without both -c and -ngl takes its defaults, "
                             f"sized for no card in particular; {fix}")
    target = flag_value(argv, *LLAMA_FIT_TARGET)
    needed = fit_target_mib(budget)
    if target is None:
        free = f" ({gib(max(budget.free_bytes))} free)" if budget.free_bytes else ""
        raise GpuMemoryError(f"llama-server fits its context and layers to this card's free memory{free}, not to "
                             f"the cap {gib(budget.cap_bytes)} per card, and would be stopped where a T4 would have "
                             f"fitted; {fix}")
    try:
        given = [int(part) for part in target.split(",")]
    except ValueError:
        raise GpuMemoryError(f"--fit-target {target!r} in the launch command is not a number of MiB") from None
    if min(given) < needed:
        raise GpuMemoryError(f"--fit-target {target} MiB leaves too little free: llama-server would fit more than "
                             f"the cap {gib(budget.cap_bytes)} less the margin {gib(budget.margin_bytes)}; at least "
                             f"{needed} MiB here: use --fit-target {{fit_target_mib}}")
    return f"llama-server --fit-target {target} MiB (cap {gib(budget.cap_bytes)} per card)"


# ---------------------------------------------------------------- dtypes


def check_dtype(argv: list[str], card: ProfileCard) -> tuple[list[str], str | None]:
    """vLLM's or SGLang's command under a card without bfloat16: ``--dtype float16`` unless it names a
    dtype the card has; bfloat16 refused."""
    value = flag_value(argv, "--dtype")
    if value is not None and value.strip().lower() in BFLOAT16:
        raise ConfigError(f"launch: --dtype {value}: {card.described()} has no bfloat16; use --dtype float16 (or "
                          "--dtype {dtype}, which the kit fills by the card's rules)", key="launch")
    if value is not None and value.strip().lower() in T4_DTYPES:
        return argv, None
    how = "added" if value is None else f"in place of --dtype {value}"
    return set_flag(argv, "--dtype", "float16"), f"--dtype float16 {how}: {card.described()} has no bfloat16"


def check_command(argv: list[str], budget: GpuBudget, card: ProfileCard) -> tuple[list[str], list[str]]:
    """The command to run and notes, or a refusal (``GpuMemoryError``, ``ConfigError``) saying how to fix
    it. Checked on the final command line (placeholders filled in), so literal values are checked too."""
    engine, notes = engine_of(argv), []
    if engine in FRACTION_FLAGS and card.lacks_bfloat16():
        argv, note = check_dtype(argv, card)
        notes += [note] if note else []
    if engine is None or not budget.enforced:
        return argv, notes
    notes.append(check_llama_cpp(argv, budget) if engine == "llama.cpp" else check_fraction(argv, engine, budget))
    return argv, notes
