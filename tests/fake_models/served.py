"""Served models for the harness tests: ``ServedModel`` configured from the environment (the harness builds
a model with no arguments), and one that kills its own server after its first batch."""

import os
import signal
import time

from models.served_model import ServedModel
from submission.backends.served.guard import proc_stat


def settings() -> dict:
    """ServedModel keywords from SERVED_* variables: SERVED_LAUNCH (a launch command), SERVED_BATCH_SIZE,
    SERVED_GRACE_S, SERVED_MC (comma-separated multiple-choice methods)."""
    options = {"launch": os.environ["SERVED_LAUNCH"], "startup_timeout_s": 120.0,
               "batch_size": int(os.environ.get("SERVED_BATCH_SIZE", "2")),
               "shutdown_grace_s": float(os.environ.get("SERVED_GRACE_S", "2"))}
    if os.environ.get("SERVED_MC"):
        options["multiple_choice"] = os.environ["SERVED_MC"].split(",")
    return options


class EnvServed(ServedModel):
    def __init__(self):
        super().__init__(**settings())


class KillsItsServer(EnvServed):
    """Answers its first batch, then SIGKILLs its server (as the kernel's OOM killer would) and asks again."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def batch_predict(self, batch, is_multiple_choice):
        self.batches += 1
        if self.batches == 2:
            pid = self.launcher.server_pid
            os.kill(pid, signal.SIGKILL)
            while proc_stat(pid) is not None:
                time.sleep(0.05)
        return super().batch_predict(batch, is_multiple_choice)
