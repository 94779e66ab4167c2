"""The model the fine-tuning command evaluates: the transformers backend, configured by a YAML path.

The harness builds a model class with no arguments in its own process, so the settings travel in the
environment: ``SHOPBENCH_BASELINE_CONFIG`` (``environment.EVALUATED_MODEL_CONFIG``) names a transformers
settings YAML (the base model's, or the one ``finetune`` writes beside the adapter). The model is
``TransformersModel`` itself, so the evaluation scores exactly what ``models/baseline.yaml`` with that
adapter will score.
"""

from __future__ import annotations

import os

from ..backends.transformers import TransformersModel, check_settings_file
from ..backends.transformers_settings import TransformersSettings
from ..environment import EVALUATED_MODEL_CONFIG
from ..errors import ConfigError

SPEC = "submission.training.evaluated_model:EvaluatedModel"


def config_path() -> str:
    path = os.environ.get(EVALUATED_MODEL_CONFIG)
    if not path:
        raise ConfigError(f"{EVALUATED_MODEL_CONFIG} is not set; it names the transformers settings YAML this "
                          "model loads (python -m submission finetune sets it for its evaluations)",
                          key=EVALUATED_MODEL_CONFIG)
    return path


class EvaluatedModel(TransformersModel):
    """``TransformersModel(config_path=$SHOPBENCH_BASELINE_CONFIG)``."""

    def __init__(self) -> None:
        super().__init__(config_path=config_path())

    @classmethod
    def check_settings(cls) -> TransformersSettings:
        """The settings file named in the environment, checked before the run (the interface's hook)."""
        return check_settings_file(config_path())
