"""The model the fine-tuning command evaluates: the transformers baseline, configured by a YAML path.

The harness builds a model class with no arguments in its own process, so the settings travel in the
environment: ``SHOPBENCH_BASELINE_CONFIG`` names a baseline YAML (the base model's, or the one
``finetune`` writes beside the adapter). The model is ``TransformersModel`` itself, so the evaluation
scores exactly what ``models/baseline.yaml`` with that adapter will score.
"""

from __future__ import annotations

import os

from models.transformers_model import TransformersModel

from ..errors import ConfigError

CONFIG_ENV = "SHOPBENCH_BASELINE_CONFIG"
SPEC = "submission.training.baseline_model:ConfiguredBaseline"


class ConfiguredBaseline(TransformersModel):
    """``TransformersModel(config_path=$SHOPBENCH_BASELINE_CONFIG)``."""

    def __init__(self) -> None:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise ConfigError(f"{CONFIG_ENV} is not set; it names the baseline YAML this model loads "
                              "(python -m submission finetune sets it for its evaluations)")
        super().__init__(config_path=path)
