"""The kit's transformers baseline with its settings in ``models/baseline.yaml`` (the file beside this one).

The model itself is the kit's (``submission/backends/transformers.py``); this class only names its
settings file, so ``--model models.transformers_model:TransformersModel`` and ``user_config.py`` run it.
Subclass it here to change how it answers, or copy ``baseline.yaml`` and point ``config_file`` at yours.
"""

from pathlib import Path

from submission.backends import TransformersModel as KitTransformersModel


class TransformersModel(KitTransformersModel):
    """``TransformersModel(config_path=..., **overrides)``: see ``submission.backends.TransformersModel``."""

    config_file = Path(__file__).with_name("baseline.yaml")
