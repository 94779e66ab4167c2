"""The rendered launch command checked per engine (submission/backends/served/engines.py), with injected
numbers: llama-server's fit target under the cap, the card's dtypes for vLLM and SGLang, each engine's
margin, and docs/served-models.md's table of fractions against the function that computes them."""

from __future__ import annotations

import re

import pytest
from kit_paths import ROOT

from submission.backends.served.config import ServedSettings
from submission.backends.served.engines import check_command, fit_target_mib, set_flag
from submission.backends.served.gpu import (
    GIB,
    MIB,
    GpuBudget,
    GpuMemoryError,
    fraction_text,
    margin_for,
    utilization,
)
from submission.card import ProfileCard
from submission.errors import ConfigError

CAP = 14_910 * MIB  # phase2's cap per card
T4 = ProfileCard(memory_bytes=CAP, capability=(7, 5), bfloat16=False, flash_attention_2=False, name="NVIDIA T4")
NO_CARD = ProfileCard()
H200 = 143_360 * MIB


def h200(free=(140 * GIB,), cap=CAP, margin=GIB) -> GpuBudget:
    return GpuBudget(cap_bytes=cap, card_bytes=H200, margin_bytes=margin, gpu_visible=True, free_bytes=free)


# ---------------------------------------------------------------- llama.cpp


def test_llama_server_gets_a_fit_target_that_leaves_all_but_the_cap_free():
    budget = h200(free=(140 * GIB, 139 * GIB))
    target = fit_target_mib(budget)
    assert target == 140 * 1024 - (14_910 - 1024)  # the freest card keeps at most the cap less the margin
    for free in budget.free_bytes:
        assert free - target * MIB <= CAP - GIB
    argv = ["llama-server", "-m", "m.gguf", "--fit-target", str(target)]
    described = f"llama-server --fit-target {target} MiB (cap 14.56 GiB per card)"
    assert check_command(argv, budget, T4) == (argv, [described])


@pytest.mark.parametrize("argv, message", [
    (["llama-server", "-m", "m.gguf"], "fits its context and layers to this card's free memory (140.00 GiB free), not "
                                        "to the cap 14.56 GiB per card"),
    (["llama-server", "-m", "m.gguf", "--fit", "off"], "with --fit off and without both -c and -ngl"),
    (["llama-server", "-m", "m.gguf", "-fitt", "1024"], "--fit-target 1024 MiB leaves too little free"),
    (["llama-server", "-m", "m.gguf", "-c", "4096"], "add `--fit-target {fit_target_mib}`"),
])
def test_llama_server_that_would_size_itself_past_the_cap_is_refused(argv, message):
    with pytest.raises(GpuMemoryError) as error:
        check_command(argv, h200(), T4)
    assert message in str(error.value)
    assert "--fit-target {fit_target_mib}" in str(error.value)


def test_llama_server_sized_by_the_command_or_off_the_gpu_is_measured_not_refused():
    argv = ["llama-server", "-m", "m.gguf", "-c", "4096", "-ngl", "99"]
    assert check_command(argv, h200(), T4)[1] == [
        "llama-server sized by the command (-c 4096, -ngl 99); the harness measures it against the cap 14.56 GiB"]
    assert check_command(["llama-server", "-ngl", "0"], h200(), T4)[1] == ["llama-server -ngl 0: no layer on the GPU"]
    assert check_command(["llama-server", "-m", "m"], GpuBudget(None, H200, gpu_visible=True), T4)[1] == []  # no cap


def test_without_free_memory_figures_no_fit_target_can_be_derived():
    with pytest.raises(GpuMemoryError, match="free memory cannot be read"):
        fit_target_mib(h200(free=()))
    assert fit_target_mib(GpuBudget(None, None)) == 1024  # no cap: llama.cpp's own default


# ---------------------------------------------------------------- the card's dtypes


@pytest.mark.parametrize("argv, expected", [
    (["vllm", "serve", "m"], ["vllm", "serve", "m", "--dtype", "float16"]),
    (["vllm", "serve", "m", "--dtype", "auto"], ["vllm", "serve", "m", "--dtype", "float16"]),
    (["python", "-m", "sglang.launch_server", "--dtype=auto"], ["python", "-m", "sglang.launch_server",
                                                                "--dtype=float16"]),
    (["vllm", "serve", "m", "--dtype", "half"], ["vllm", "serve", "m", "--dtype", "half"]),
    (["vllm", "serve", "m", "--dtype", "float32"], ["vllm", "serve", "m", "--dtype", "float32"]),
])
def test_vllm_and_sglang_get_float16_under_a_card_without_bfloat16(argv, expected):
    budget = GpuBudget(None, None)  # no cap: only the dtype rule
    assert check_command(argv, budget, T4)[0] == expected
    assert check_command(argv, budget, NO_CARD)[0] == argv  # no card exported: the command as written


@pytest.mark.parametrize("dtype", ["bfloat16", "bf16"])
def test_a_command_asking_for_bfloat16_is_refused_before_launch(dtype):
    with pytest.raises(ConfigError, match=f"launch: --dtype {dtype}: the grader's NVIDIA T4 \\(compute capability "
                                          "7.5\\) has no bfloat16; use --dtype float16"):
        check_command(["vllm", "serve", "m", "--dtype", dtype], GpuBudget(None, None), T4)
    argv, _ = check_command(["llama-server", "--dtype", dtype], GpuBudget(None, None), T4)
    assert argv[-1] == dtype  # not vLLM's flag


def test_set_flag_replaces_every_form_or_appends():
    assert set_flag(["a", "--x", "1", "--x=2"], "--x", "3") == ["a", "--x", "3", "--x=3"]
    assert set_flag(["a"], "--x", "3") == ["a", "--x", "3"]


def test_the_launch_plan_applies_the_card_to_a_vllm_template(monkeypatch):
    from submission.backends.served.model import launch_plan

    for name, value in {"SHOPBENCH_COMPUTE_CAPABILITY": "7.5", "SHOPBENCH_BFLOAT16": "0",
                        "SHOPBENCH_GPU_NAME": "NVIDIA T4"}.items():
        monkeypatch.setenv(name, value)
    template = "{python} -m vllm.entrypoints.openai.api_server --model m --host {host} --port {port}"
    plan, _, notes = launch_plan(ServedSettings(launch=template))
    assert plan.argv[-2:] == ("--dtype", "float16")
    assert notes == ["--dtype float16 added: the grader's NVIDIA T4 (compute capability 7.5) has no bfloat16"]
    with pytest.raises(ConfigError, match="--dtype bfloat16"):
        launch_plan(ServedSettings(launch=template + " --dtype bfloat16"))


# ---------------------------------------------------------------- margins, and docs/served-models.md's table


def test_each_engine_has_its_own_margin():
    assert (margin_for("vllm", "auto"), margin_for("sglang", "auto"), margin_for("llama.cpp", "auto")) == \
        (GIB, 3 * GIB, GIB)
    assert margin_for("sglang", 0.5) == GIB // 2 and margin_for(None, "auto") == GIB
    with pytest.raises(ConfigError, match="gpu_memory_margin_gib"):
        ServedSettings(gpu_memory_margin_gib="big")


def readme_rows() -> list[tuple[str, ...]]:
    text = (ROOT / "docs" / "served-models.md").read_text(encoding="utf-8")
    table = text[text.index("`{gpu_memory_utilization}` as the launcher computes it"):]
    return [tuple(cell.strip() for cell in line.strip("|").split("|"))
            for line in table.splitlines()[:20] if re.match(r"\| (vLLM|SGLang) \|", line)]


def mib(cell: str) -> int:
    return int(cell.removesuffix(" MiB").replace(",", "")) * MIB


def test_the_docs_table_is_what_the_function_computes():
    rows = readme_rows()
    assert len(rows) == 6
    for engine, margin, total, fraction, budget, usable in rows:
        margin_bytes = margin_for(engine.lower(), "auto")
        assert margin == f"{margin_bytes // GIB} GiB"
        computed = utilization(GpuBudget(CAP, mib(total), margin_bytes, gpu_visible=True), None)
        assert fraction == fraction_text(computed), (engine, total)
        assert mib(budget) == int(computed * mib(total)) // MIB * MIB
        assert mib(usable) == CAP - margin_bytes
        if computed < 0.9:
            assert CAP - margin_bytes - computed * mib(total) < 16 * MIB
