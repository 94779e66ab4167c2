"""The participant interface: ``ShopBenchBaseModel``, the KDD Cup 2024 ShopBench interface unchanged.

A model subclasses it and implements two methods; existing submissions (the official starter kit's
``from .base_model import ShopBenchBaseModel``) drop in as they are. ``models/base_model.py`` re-exports
this class for them. Three optional hooks have defaults, so a model that ignores them still works (the
kit reads each with ``getattr``, so a class from the starter kit's base, which has none, works too):

    get_batch_size() -> int                      required: prompts in the next batch, 1..16
    batch_predict(batch, is_multiple_choice)     required: one answer string per prompt
    check_settings() (classmethod)               optional: check the model's settings files and the
                                                 paths they name before the run, loading no weights;
                                                 raise the kit's ConfigError naming file, line and fix
                                                 (bad input: exit 2 before any run folder); default:
                                                 nothing to check
    run_info() -> dict | None                    optional: what results.json should record about the
                                                 run (JSON-ready, no secrets); default None
    close() -> None                              optional: release what the model holds (a server it
                                                 launched, files); default: nothing to release
"""

from __future__ import annotations

from typing import Any


class ShopBenchBaseModel:
    """Base class for every ShopBench submission.

    Locally the evaluator first calls the class's ``check_settings()`` (a bad setting is bad input, found
    before any run). The evaluator (locally and on the grader) builds the model with no arguments, calls
    ``get_batch_size()`` before each batch, then ``batch_predict`` with that many prompts at most. The
    model never sees the task type, only whether the batch is multiple choice. After the last batch,
    and on every ending the harness can reach (a failure, a time-out, an interrupt), it reads
    ``run_info()`` and calls ``close()`` in the model's process.
    """

    def get_batch_size(self) -> int:
        """How many prompts the next batch may hold: an int from 1 to 16. May change between calls."""
        raise NotImplementedError("get_batch_size() must return an int between 1 and 16")

    def batch_predict(self, batch: dict[str, Any], is_multiple_choice: bool) -> list[str]:
        """Answer a batch of prompts.

        Args:
            batch: ``{"prompt": [str, ...]}``; more keys may be added in future, so read only what you need.
            is_multiple_choice: True when every prompt in the batch is a multiple-choice question, whose
                answer must start with the digit of the chosen option ("0".."3").

        Returns:
            One string per prompt, in the order of ``batch["prompt"]``.
        """
        raise NotImplementedError("batch_predict() must return one string per prompt")

    @classmethod
    def check_settings(cls) -> Any:
        """Optional: check the settings the class reads (a YAML file, the folders it names) without loading
        weights, before the evaluator starts the run; raise ``submission.errors.ConfigError`` saying what is
        wrong and how to fix it. The default checks nothing. The kit's backends read their YAML file here."""
        return None

    def run_info(self) -> dict[str, Any] | None:
        """Optional: what this run's results should record about the model (a JSON-ready dict holding no
        secret), or None for nothing. Read once the answers are in."""
        return None

    def close(self) -> None:
        """Optional: release what the model holds (a server it launched, open files). Called once when the
        run ends, however it ends; must be safe to call again. The default releases nothing."""
