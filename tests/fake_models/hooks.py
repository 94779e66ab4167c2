"""Models for the interface's optional hooks: close() on every ending the harness can reach, run_info(),
and classes shaped like the official starter kit's, which have neither hook."""

import os
import random
import time

from .models import Deterministic


class ClosesOnEveryEnding(Deterministic):
    """Writes 'closed <pid>' to $HOOK_MARKER when closed; batch FAKE_FAIL_BATCH ends the run the way
    $HOOK_ENDING says: 'normal' (no failure), 'raise' (a model error) or 'timeout' (it sleeps past the deadline)."""

    def fail(self, answers):
        ending = os.environ.get("HOOK_ENDING", "normal")
        if ending == "raise":
            raise RuntimeError("the model failed on purpose")
        if ending == "timeout":
            time.sleep(600)
        return answers

    def run_info(self):
        return {"closes": "on every ending"}

    def close(self):
        with open(os.environ["HOOK_MARKER"], "a", encoding="utf-8") as handle:
            handle.write(f"closed {os.getpid()}\n")


class CloseHangs(ClosesOnEveryEnding):
    """Its close() says it started, then never returns."""

    def close(self):
        with open(os.environ["HOOK_MARKER"], "a", encoding="utf-8") as handle:
            handle.write("close started\n")
        time.sleep(600)


class StarterKitBase:
    """Shaped like the official starter kit's base class: the two methods, no run_info(), no close()."""

    def get_batch_size(self) -> int:
        raise NotImplementedError

    def batch_predict(self, batch, is_multiple_choice):
        raise NotImplementedError


class StarterKitDummy(StarterKitBase):
    """Shaped like the official starter kit's dummy model: a fixed batch size, a random digit for multiple
    choice, a fixed sentence otherwise."""

    def __init__(self):
        self.rng = random.Random(int(os.environ.get("SHOPBENCH_SEED", "0")))

    def get_batch_size(self) -> int:
        return 4

    def batch_predict(self, batch, is_multiple_choice):
        if is_multiple_choice:
            return [str(self.rng.randint(0, 3)) for _ in batch["prompt"]]
        return ["a placeholder answer" for _ in batch["prompt"]]
