"""The participant's folder as shipped: the interface re-exported for starter-kit files, the dummy model,
the two short modules naming the kit's backends (and their YAML files), user_config.py, and the shipped
YAML files equal to the kit's dataclass defaults."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest
from kit_paths import ROOT

from submission.backends.served.config import ServedSettings, load_served_settings
from submission.backends.transformers_settings import TransformersSettings, load_transformers_settings
from submission.interface import ShopBenchBaseModel
from submission.loading import load_model_class
from submission.training.config import DEFAULT_FINETUNE_CONFIG, FinetuneConfig, load_finetune_config

MODELS = ROOT / "models"


@pytest.fixture(autouse=True)
def outside_the_harness(no_exported_card):
    """No profile card exported (a test sets one itself)."""


def test_base_model_is_the_kits_interface_with_its_two_optional_hooks():
    from models.base_model import ShopBenchBaseModel as Participant

    assert Participant is ShopBenchBaseModel

    class Minimal(Participant):  # a starter-kit model: the two required methods, no hooks
        def get_batch_size(self) -> int:
            return 1

        def batch_predict(self, batch, is_multiple_choice):
            return ["0" for _ in batch["prompt"]]

    model = Minimal()
    assert model.run_info() is None and model.close() is None and model.close() is None
    with pytest.raises(NotImplementedError, match="between 1 and 16"):
        Participant().get_batch_size()


def test_a_starter_kit_style_module_with_a_relative_import_loads_and_answers(tmp_path):
    """A file written for the official starter kit (``from .base_model import ShopBenchBaseModel``) in a
    participant's models/ folder, loaded the way the evaluator loads it, in a fresh process."""
    (tmp_path / "models").mkdir()
    for name in ("__init__.py", "base_model.py"):
        (tmp_path / "models" / name).write_text((MODELS / name).read_text())
    (tmp_path / "models" / "starter_style.py").write_text(textwrap.dedent("""
        import random
        from typing import Any, Dict, List

        from .base_model import ShopBenchBaseModel


        class StarterStyle(ShopBenchBaseModel):
            def __init__(self):
                self.rng = random.Random(7)

            def get_batch_size(self) -> int:
                return 4

            def batch_predict(self, batch: Dict[str, Any], is_multiple_choice: bool) -> List[str]:
                return [str(self.rng.randint(0, 3)) for _ in batch["prompt"]]
    """))
    script = ("import json\nfrom submission.loading import load_model_class\n"
              f"model = load_model_class('models.starter_style:StarterStyle', {str(tmp_path)!r})()\n"
              "print(json.dumps([model.get_batch_size(), model.batch_predict({'prompt': ['a', 'b']}, True), "
              "model.run_info()]))\nmodel.close()\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    size, answers, info = json.loads(done.stdout)
    assert size == 4 and len(answers) == 2 and set(answers) <= {"0", "1", "2", "3"} and info is None


def test_the_dummy_model_is_seeded_and_answers_in_the_parsers_shapes(monkeypatch):
    from models.dummy_model import DummyModel

    monkeypatch.setenv("SHOPBENCH_SEED", "3")
    prompts = {"prompt": ["Pick one.\n0. a\n1. b\n2. c\n3. d\nAnswer: ", "Rank:\n1. x\n2. y\n3. z\nOutput: "]}
    first, again = DummyModel().batch_predict(prompts, True), DummyModel().batch_predict(prompts, True)
    assert first == again and all(answer in "0123" for answer in first)
    ranked = DummyModel().batch_predict({"prompt": prompts["prompt"][1:]}, False)[0]
    assert sorted(ranked.split(", ")) == ["1", "2", "3"]


@pytest.mark.parametrize("spec, kit_class, settings_file", [
    ("models.transformers_model:TransformersModel", "submission.backends.transformers.TransformersModel",
     "baseline.yaml"),
    ("models.served_model:ServedModel", "submission.backends.served.model.ServedModel", "served.yaml"),
])
def test_the_two_short_modules_name_the_kits_backends_and_their_yaml(spec, kit_class, settings_file):
    cls = load_model_class(spec, ROOT)
    assert f"{cls.__mro__[1].__module__}.{cls.__mro__[1].__qualname__}" == kit_class
    assert cls.config_file == MODELS / settings_file and cls.settings_folder() == MODELS


def test_user_config_names_the_transformers_baseline():
    from models.transformers_model import TransformersModel

    assert load_model_class(None, ROOT) is TransformersModel


def test_the_participants_baseline_reads_baseline_yaml_and_resolves_paths_from_models(tiny_llama_dir, tmp_path):
    from models.transformers_model import TransformersModel

    model = TransformersModel(weights=str(tiny_llama_dir), max_new_tokens={"generation": 2})
    assert model.config == dataclasses.replace(load_transformers_settings(MODELS / "baseline.yaml"),
                                               weights=str(tiny_llama_dir),
                                               max_new_tokens=dataclasses.replace(
                                                   model.config.max_new_tokens, generation=2))
    assert model.config.base_dir == MODELS
    assert TransformersModel.from_mapping({"weights": str(tiny_llama_dir)}).config.base_dir == MODELS


def test_the_shipped_baseline_yaml_equals_the_dataclass_defaults():
    shipped = load_transformers_settings(MODELS / "baseline.yaml")
    assert shipped.base_dir == MODELS and shipped.weights == "smollm2"
    assert shipped == TransformersSettings(base_dir=MODELS)


def test_the_shipped_served_yaml_equals_the_dataclass_defaults():
    shipped = load_served_settings(MODELS / "served.yaml")
    assert shipped.launch.startswith("transformers serve {weights} --host {host} --port {port}")
    assert shipped == ServedSettings(base_dir=MODELS)


def test_the_shipped_finetune_yaml_equals_the_dataclass_defaults():
    assert DEFAULT_FINETUNE_CONFIG == MODELS / "finetune.yaml"
    assert load_finetune_config() == FinetuneConfig()
    assert load_finetune_config().base_config_path == MODELS / "baseline.yaml"
