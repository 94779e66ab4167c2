"""local_evaluation.py's run (``submission/evaluate/local.py``): a model's settings are checked before the run
(bad input: exit 2, no folder, no progress bar), a ConfigError from a kit backend's constructor is bad input
too, and the closing lines say the verdict once, and "within the limits" only when there were limits. Each
failed before its change (checked against main)."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from kit_paths import SAMPLE_DATA

import local_evaluation

BACKENDS = """
    from pathlib import Path
    from submission.backends import ServedModel, TransformersModel

    HERE = Path(__file__).parent

    class Transformers(TransformersModel):
        config_file = HERE / "baseline.yaml"

    class Served(ServedModel):
        config_file = HERE / "served.yaml"

    class Wrapper:  # no check_settings hook (a starter-kit class): the backend is built in its constructor
        def __init__(self):
            self.inner = TransformersModel(config_path=HERE / "baseline.yaml")
        def get_batch_size(self):
            return 1
        def batch_predict(self, batch, is_multiple_choice):
            return ["0"] * len(batch["prompt"])
"""


def model_module(tmp_path: Path, monkeypatch, yaml_files: dict[str, str]) -> str:
    """A module of model classes in its own folder, with its settings files; returns its import name."""
    name = "models_" + re.sub(r"\W", "_", tmp_path.name)
    folder = tmp_path / "participant"
    folder.mkdir()
    (folder / f"{name}.py").write_text(textwrap.dedent(BACKENDS))
    for file_name, text in yaml_files.items():
        (folder / file_name).write_text(text)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop(name, None)
    return name


def run(*args: str) -> int:
    return local_evaluation.main(["--data", str(SAMPLE_DATA), "--limit", "2", *args])


BROKEN_YAML = "weights: smollm2\ndevice: cpu\n  batch_size: 4\n"


@pytest.mark.parametrize("cls, files, message", [
    ("Transformers", {"baseline.yaml": BROKEN_YAML},
     "baseline.yaml, line 3, column 13: not valid YAML (mapping values are not allowed here)"),
    ("Served", {"served.yaml": "base_url: http://127.0.0.1:9\nlaunch: transformers serve {weights} --host {host} "
                               "--port {port}\n"},
     "served.yaml, line 2: launch, base_url: expected exactly one of them"),
])
def test_a_settings_mistake_is_bad_input_before_any_folder_or_progress_bar(tmp_path, monkeypatch, capsys, cls, files,
                                                                          message):
    module = model_module(tmp_path, monkeypatch, files)
    out = tmp_path / "run"
    assert run("--model", f"{module}:{cls}", "--output-dir", str(out)) == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1]  # the whole error, in the final line
    assert "predicting" not in err and "model_error" not in err and not out.exists()


def test_a_wrong_adapter_path_says_it_does_not_exist_and_names_the_near_one(tmp_path, monkeypatch, capsys,
                                                                           tiny_llama_dir):
    adapter = tmp_path / "adapters" / "try1"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    module = model_module(tmp_path, monkeypatch, {"baseline.yaml": f"weights: {tiny_llama_dir}\n"
                                                                   "lora_adapter: ../adapter/try1\n"})
    out = tmp_path / "run"
    assert run("--model", f"{module}:Transformers", "--output-dir", str(out)) == 2
    err = capsys.readouterr().err
    assert "baseline.yaml, line 2: lora_adapter: ../adapter/try1 does not exist" in err
    assert f"({tmp_path / 'adapter' / 'try1'}); did you mean '../adapters/try1'?" in err
    assert "adapter_config.json" in err and not out.exists()


def test_a_config_error_in_a_kit_backends_constructor_is_bad_input_not_model_error(tmp_path, monkeypatch, capsys):
    module = model_module(tmp_path, monkeypatch, {"baseline.yaml": "weights: smollm2\nlora_adapter: ../nowhere\n"})
    out = tmp_path / "run"
    assert run("--model", f"{module}:Wrapper", "--output-dir", str(out), "--no-limits") == 2  # built in its process
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: lora_adapter: ../nowhere does not exist")
    assert "model_error" not in err and not (out / "results.json").exists()


def test_no_limits_verdict_does_not_claim_the_limits(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("--model", "models.dummy_model:DummyModel", "--output-dir", str(out), "--no-limits") == 0
    printed = capsys.readouterr().out
    assert "verdict: ok: 2 questions answered (no limits enforced)" in printed and "within the limits" not in printed
    assert json.loads((out / "results.json").read_text())["verdict"]["detail"] == "2 questions answered (no limits " \
                                                                                  "enforced)"


def test_a_resumed_run_prints_its_data_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("--model", "models.dummy_model:DummyModel", "--output-dir", str(out)) == 0
    capsys.readouterr()
    assert local_evaluation.main(["--resume", str(out)]) == 0
    assert f"data: {SAMPLE_DATA} (the interrupted run's, from {out / 'run.json'})" in capsys.readouterr().out


def test_a_failure_verdict_is_printed_once(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("FAKE_FAIL_BATCH", "1")
    out = tmp_path / "run"
    code = local_evaluation.main(["--model", "fake_models.models:TooFewAnswers", "--data", str(SAMPLE_DATA),
                                  "--limit", "6", "--output-dir", str(out)])
    printed = "".join(capfd.readouterr())
    assert code == 1
    detail = "batch 1: batch_predict returned 1 response for 2 prompts"
    assert printed.count(detail) == 1 and printed.count("bad_output") == 0
    assert "error: the model broke the interface: " + detail in printed
    assert "PARTIAL RESULTS: 2 of 6 questions answered" in printed
