"""Fine-tuning the tiny random Llama end to end: the loss falls, the adapter reloads into the baseline with
identical logits, --resume continues bit for bit, bad inputs are refused before a model loads, and
--eval-data runs the evaluator and the comparison."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from training_fixtures import write_finetune_config

from submission import cli
from submission.training.pipeline import Options, prepare, run


def finetune_main(argv):
    """``python -m submission finetune ...`` in this process (kit errors: exit status 2 in ``cli.main``)."""
    return cli.main(["finetune", *argv])


STEPS = 8  # checkpoints at 4 and 8 (save_steps 4)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_base, data_files):
    folder = tmp_path_factory.mktemp("finetune")
    return {"config": write_finetune_config(folder / "ft.yaml", tiny_base), "folder": folder, **data_files}


def options(setup, out, **changes) -> Options:
    values = {"data": (str(setup["train"]),), "output_dir": out, "config": str(setup["config"]), "max_steps": STEPS}
    return Options(**{**values, **changes})


@pytest.fixture(scope="module")
def trained(setup):
    return run(prepare(options(setup, setup["folder"] / "adapter", merge=True)))


def baseline(**settings):
    from submission.backends.transformers import TransformersModel

    return TransformersModel(**settings)


def prompts(setup) -> list[str]:
    return [json.loads(line)["input_field"] for line in setup["eval"].read_text().splitlines()]


def answer_loss_over(model, job) -> float:
    """Mean answer-token loss over all the training examples."""
    from submission.backends.transformers import load_tokenizer
    from submission.training.examples import PadCollator, PromptFormat, answer_loss, build_examples

    tokenizer = load_tokenizer(job.base.weights, True)
    examples = build_examples(tokenizer, PromptFormat(job.base.system_prompt, True), job.train, job.targets, 160)
    batch = PadCollator(tokenizer.pad_token_id)([{"input_ids": e.input_ids, "labels": e.labels} for e in examples])
    labels = batch.pop("labels")
    with torch.no_grad():
        return answer_loss(model(**batch), labels).item()


def test_a_few_steps_reduce_the_training_loss(trained):
    model = trained.outcome.model
    after = answer_loss_over(model, trained.job)
    with model.disable_adapter():
        before = answer_loss_over(model, trained.job)
    assert after < 0.8 * before, (before, after)
    assert [p["step"] for p in trained.training["loss_curve"]] == list(range(1, STEPS + 1))


def test_the_adapter_reloads_into_the_baseline_with_identical_logits(trained, setup, tiny_base):
    out = setup["folder"] / "adapter"
    reloaded = baseline(config_path=out / "baseline.yaml")
    in_memory = baseline(config_path=tiny_base)
    plain = in_memory.last_logits(in_memory.encode(prompts(setup)))
    in_memory.model = trained.outcome.model  # the trained model itself, read the baseline's way
    expected = in_memory.last_logits(in_memory.encode(prompts(setup)))
    got = reloaded.last_logits(reloaded.encode(prompts(setup)))
    assert torch.equal(got, expected)
    assert (got - plain).abs().max() > 1e-3  # the adapter changes the model
    merged = baseline(weights=str(out / "merged"), max_new_tokens={"generation": 6})
    torch.testing.assert_close(merged.last_logits(merged.encode(prompts(setup))), expected, atol=1e-4, rtol=1e-4)


def test_the_run_is_recorded(trained, setup):
    from submission.backends.transformers_settings import load_transformers_settings

    out = setup["folder"] / "adapter"
    record = json.loads((out / "training.json").read_text())
    assert record["data"][0]["sha256"] == hashlib.sha256(setup["train"].read_bytes()).hexdigest()
    assert record["data"][0]["questions"] == 12 and record["examples"]["count"] == 12
    assert record["steps"] == {"done": STEPS, "max": STEPS, "resumed_from": None}
    assert len(record["loss_curve"]) == STEPS and record["config"]["max_steps"] == STEPS
    assert record["precision"] == {"device": "cpu", "dtype": "float32", "quantization": "none",
                                   "mixed_precision": None, "compute_capability": None}
    assert record["packages"]["peft"] and record["packages"]["transformers"] and record["time"]["tokens_per_s"] > 0
    assert record["merged"] == str(out / "merged")
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_transformers_settings(out / "baseline.yaml").lora_adapter == str(out.resolve())
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert kept == ["checkpoint-4", "checkpoint-8", "finetune_run.json"]


def test_resume_continues_from_the_last_checkpoint_bit_for_bit(trained, setup):
    from safetensors.torch import load_file

    first = setup["folder"] / "adapter"
    out = setup["folder"] / "interrupted"  # as a run stopped between step 5 and 8 leaves its folder
    shutil.copytree(first / "checkpoints" / "checkpoint-4", out / "checkpoints" / "checkpoint-4")
    shutil.copy(first / "checkpoints" / "finetune_run.json", out / "checkpoints")
    resumed = run(prepare(options(setup, out, resume=True)))
    assert resumed.outcome.resumed_from.endswith("checkpoint-4")
    assert resumed.training["loss_curve"] == trained.training["loss_curve"]
    expected, got = load_file(first / "adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)


def test_resume_without_a_checkpoint_and_a_fresh_run_over_one_are_refused(trained, setup, tmp_path, capsys):
    args = ["--data", str(setup["train"]), "--config", str(setup["config"])]
    assert finetune_main([*args, "--output-dir", str(tmp_path / "new"), "--resume"]) == 2
    assert "holds no checkpoint-N folder to continue from; run without --resume" in capsys.readouterr().err
    assert finetune_main([*args, "--output-dir", str(setup["folder"] / "adapter")]) == 2  # epochs: past step 8
    error = capsys.readouterr().err
    assert "holds README.md, adapter_config.json" in error
    assert "(the checkpoints of an earlier run, the last at step 8); pass --resume to continue it" in error


def test_resume_with_other_data_is_refused(trained, setup, capsys):
    out = str(setup["folder"] / "adapter")
    assert finetune_main(["--data", str(setup["eval"]), "--config", str(setup["config"]), "--output-dir", out,
                          "--resume"]) == 2
    assert "the data differ from the interrupted run's" in capsys.readouterr().err


def test_training_on_the_evaluation_questions_is_refused_unless_allowed(setup, tmp_path, capsys):
    train = str(setup["train"])
    args = ["--data", train, "--eval-data", train, "--config", str(setup["config"]), "--output-dir", str(tmp_path)]
    assert finetune_main(args) == 2
    error = capsys.readouterr().err
    assert f"12 of 12 training questions also appear in the evaluation file {train}" in error
    assert f"{train}:1" in error and "--allow-overlap" in error
    job = prepare(options(setup, tmp_path, eval_data=train, allow_overlap=True))
    assert job.overlap == 12


def test_qlora_is_refused_on_cpu_before_a_model_loads(setup, tiny_base, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: QLoRA is allowed here")
    config = write_finetune_config(tmp_path / "qlora.yaml", tiny_base, quantization="4bit")
    out = tmp_path / "out"
    assert finetune_main(["--data", str(setup["train"]), "--config", str(config), "--output-dir", str(out)]) == 2
    assert "quantization: 4bit (QLoRA) trains a bitsandbytes NF4 base on a CUDA GPU" in capsys.readouterr().err
    assert not out.exists()


def test_bad_data_is_refused_with_file_and_line(setup, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(setup["train"].read_text().splitlines()[0] + "\n{not json\n")
    args = ["--data", str(bad), "--output-dir", str(tmp_path / "o"), "--config", str(setup["config"])]
    assert finetune_main(args) == 2
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err


def test_the_command_trains_evaluates_and_compares(setup, tmp_path, capsys):
    out = tmp_path / "adapter"
    assert finetune_main(["--data", str(setup["train"]), "--eval-data", str(setup["eval"]), "--output-dir", str(out),
                          "--config", str(setup["config"]), "--max-steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert "trained 2 steps" in printed and "lora_adapter: " in printed
    assert "A = base model, B = with the adapter" in printed and "all-around" in printed and "flips" in printed
    base = json.loads((out / "eval" / "base" / "results.json").read_text())
    adapter = json.loads((out / "eval" / "adapter" / "results.json").read_text())
    assert base["verdict"]["status"] == adapter["verdict"]["status"] == "ok" and base["n_questions"] == 4
    assert str(out / "baseline.yaml") in adapter["model"]
    evaluation = json.loads((out / "training.json").read_text())["evaluation"]
    assert evaluation["base_all_around"] == pytest.approx(base["all_around"])
    assert evaluation["adapter_all_around"] == pytest.approx(adapter["all_around"])
    assert (out / "eval" / "compare.html").is_file()
