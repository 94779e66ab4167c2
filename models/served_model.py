"""The kit's served model with its settings in ``models/served.yaml`` (the file beside this one).

The model itself is the kit's (``submission/backends/served/model.py``): an OpenAI-compatible server
launched inside the submission or already running. This class only names its settings file, so
``--model models.served_model:ServedModel`` runs it.
"""

from pathlib import Path

from submission.backends import ServedModel as KitServedModel


class ServedModel(KitServedModel):
    """``ServedModel(config_path=..., **overrides)``: see ``submission.backends.ServedModel``."""

    config_file = Path(__file__).with_name("served.yaml")
