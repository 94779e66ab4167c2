"""The participant interface: subclass ``ShopBenchBaseModel`` and name the class in ``user_config.py``.

This is the KDD Cup 2024 ShopBench interface unchanged, so existing submissions (``from .base_model
import ShopBenchBaseModel``) drop in as they are. The class lives in the kit (``submission/interface.py``)
and is re-exported here::

    class MyModel(ShopBenchBaseModel):
        def get_batch_size(self) -> int:                  # prompts in the next batch, 1..16
            return 8

        def batch_predict(self, batch: dict, is_multiple_choice: bool) -> list[str]:
            return ["0" for _ in batch["prompt"]]          # one answer per prompt, in order

        # optional hooks, with defaults:
        # def run_info(self) -> dict | None: ...          # recorded in results.json (default None)
        # def close(self) -> None: ...                     # release a server or files when the run ends
"""

from submission.interface import ShopBenchBaseModel

__all__ = ["ShopBenchBaseModel"]
