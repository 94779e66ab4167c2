"""``finetune --output-dir``: what may already be in it, and what each mode does with it. Nothing is silently
replaced or deleted.

- A fresh run needs a folder that is absent or empty. Anything there is refused (exit 2) with what it is
  and the choices: ``--resume`` (an interrupted run's checkpoints), another ``--output-dir``, or
  ``--overwrite``, which first removes what an earlier fine-tuning run wrote (``OWN_NAMES``). A folder
  holding anything else is refused even with ``--overwrite``: the command never deletes a file it did not write.
- ``--resume`` needs an earlier run's checkpoints, made from the same data and settings, and nothing but
  fine-tuning's own files. A run whose checkpoints already reach its last step is ``finished``: the
  command trains nothing and says so (transformers' Trainer would train one step past ``max_steps``).
- ``--evaluate-only`` needs an adapter there; an earlier evaluation (``eval/``) is replaced only with
  ``--overwrite``.
- The repository's own folders (its root, ``models/``, ``submission/``, ``data/``, ``docker/``, ``.git/``),
  and any folder that contains one of them, are never an output folder, whatever the flags.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..environment import KIT_ROOT
from ..errors import ConfigError, suggest_path
from .trainer import last_checkpoint

CHECKPOINTS = "checkpoints"
RUN_FILE = "finetune_run.json"  # in checkpoints/: what --resume must find unchanged (data and settings)
EVAL_FOLDER = "eval"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
PEFT_CARD = "README.md"  # peft's model card, beside the adapter
# Everything a fine-tuning run writes into its folder.
OWN_NAMES = (*ADAPTER_FILES, PEFT_CARD, "baseline.yaml", "training.json", "loss_curve.png", CHECKPOINTS, "merged",
             EVAL_FOLDER)
OWN_PREFIXES = (".merged.partial-",)  # merged/ while it is written
REPOSITORY_FOLDERS = ("models", "submission", "data", "docker", ".git")


def refuse_repository_folder(out: Path) -> None:
    """ConfigError when ``out`` is the repository's root or one of its own folders, or contains one."""
    resolved = out.expanduser().resolve()
    for folder in (KIT_ROOT, *(KIT_ROOT / name for name in REPOSITORY_FOLDERS)):
        if resolved == folder or resolved in folder.parents:
            what = "the repository's root" if folder == KIT_ROOT else f"the repository's {folder.name}/ folder"
            relation = "is" if resolved == folder else "contains"
            raise ConfigError(f"--output-dir {out} {relation} {what} ({folder}); fine-tuning writes into a folder "
                              "of its own, e.g. --output-dir adapters/NAME")


@dataclass(frozen=True)
class Contents:
    """What an output folder holds: its entries, and those fine-tuning does not write."""

    folder: Path
    names: tuple[str, ...]
    foreign: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.names

    def listed(self, names: tuple[str, ...] | None = None, n: int = 6) -> str:
        names = self.names if names is None else names
        shown = [f"{name}/" if (self.folder / name).is_dir() else name for name in names[:n]]
        return ", ".join(shown) + (f" and {len(names) - n} more" if len(names) > n else "")


def contents(out: Path) -> Contents:
    if not out.exists():
        return Contents(out, (), ())
    if not out.is_dir():
        raise ConfigError(f"--output-dir {out} is a file; fine-tuning writes a folder: choose another --output-dir")
    names = tuple(sorted(entry.name for entry in out.iterdir()))
    foreign = tuple(n for n in names if not is_own(out / n))
    return Contents(out, names, foreign)


def is_own(path: Path) -> bool:
    """Whether fine-tuning writes ``path`` (a README.md only when it is peft's model card)."""
    if path.name == PEFT_CARD:
        try:
            with path.open("rb") as handle:
                return b"library_name: peft" in handle.read(4096)
        except OSError:
            return False
    return path.name in OWN_NAMES or path.name.startswith(OWN_PREFIXES)


@dataclass(frozen=True)
class Progress:
    """Where the checkpoints of a run stand."""

    checkpoint: Path
    step: int
    max_steps: int


def checkpoint_progress(out: Path) -> Progress | None:
    """The last checkpoint in ``out``/checkpoints, its step and the run's max_steps (trainer_state.json)."""
    found = last_checkpoint(out / CHECKPOINTS)
    if found is None:
        return None
    try:
        state = json.loads((Path(found) / "trainer_state.json").read_text(encoding="utf-8"))
        return Progress(Path(found), int(state["global_step"]), int(state["max_steps"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Progress(Path(found), int(Path(found).name.rsplit("-", 1)[-1]), 0)


def finished_at(progress: Progress | None, max_steps: int | None, saved_config: dict[str, Any] | None) -> int | None:
    """The step a run to ``max_steps`` (None: the config's epochs) ends at, when its checkpoints reach it."""
    if progress is None:
        return None
    if max_steps is None:  # epochs: the trainer's own count, unless the checkpointed run had a max_steps
        if saved_config is None or saved_config.get("max_steps") is not None or progress.max_steps < 1:
            return None
        max_steps = progress.max_steps
    return max_steps if progress.step >= max_steps else None


def what_is_there(found: Contents, progress: Progress | None, finished: int | None) -> str:
    if len(found.foreign) == len(found.names):
        return "none of it written by fine-tuning"
    if found.foreign:
        return f"not all of it written by fine-tuning: {found.listed(found.foreign)}"
    if progress is None:
        return "what an earlier fine-tuning run wrote, without checkpoints to resume"
    if finished is not None:
        return f"a finished fine-tuning run: {progress.checkpoint.name}, step {progress.step} of {finished}"
    return f"the checkpoints of an earlier run, the last at step {progress.step}"


def refuse_non_empty(found: Contents, progress: Progress | None, finished: int | None) -> None:
    """A fresh run into a folder that holds anything: what is there, and the choices."""
    choices = []
    if progress is not None and finished is None and not found.foreign:
        choices.append("pass --resume to continue it")
    choices.append("choose another --output-dir")
    if found.foreign:
        fix = "move out what fine-tuning did not write (--overwrite only removes what fine-tuning wrote)"
    else:
        fix = "pass --overwrite to remove what the earlier run wrote and train afresh"
    raise ConfigError(f"--output-dir {found.folder} is not empty: it holds {found.listed()} "
                      f"({what_is_there(found, progress, finished)}); {', '.join(choices)}, or {fix}")


def check_for_training(out: Path, resume: bool, overwrite: bool, finished: int | None) -> Contents:
    """The folder may receive this run (see the module's docstring); ConfigError saying why not."""
    refuse_repository_folder(out)
    found = contents(out)
    progress = checkpoint_progress(out)
    if resume:
        if progress is None:
            raise ConfigError(f"--resume: {out / CHECKPOINTS} holds no checkpoint-N folder to continue from; run "
                              "without --resume to start training")
        if found.foreign:
            raise ConfigError(f"--resume: {out} also holds files fine-tuning does not write "
                              f"({found.listed(found.foreign)}); move them out of the adapter's folder")
        return found
    if found.empty or (overwrite and not found.foreign):
        return found
    refuse_non_empty(found, progress, finished)
    return found


def clear_own_files(found: Contents) -> list[str]:
    """--overwrite: remove what an earlier fine-tuning run wrote (checked beforehand: nothing else is there)."""
    removed = []
    for name in found.names:
        if name in found.foreign:
            continue
        path = found.folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(name)
    return removed


def finished_message(out: Path, progress: Progress, finished: int, has_adapter: bool) -> str:
    """What --resume says about a run that already reached its last step (ConfigError when its adapter is
    missing: the run stopped between its last checkpoint and writing the adapter)."""
    where = f"{progress.checkpoint.name}, step {progress.step} of {finished}"
    if not has_adapter:
        raise ConfigError(f"--resume: training in {out} already reached its last step ({where}) but the folder has "
                          f"no {ADAPTER_FILES[0]} (the run stopped while writing it); the adapter is in "
                          f"{progress.checkpoint}: copy its {' and '.join(ADAPTER_FILES)} into {out}, or train "
                          "again with --overwrite")
    return (f"{out}: training already finished ({where}); nothing to resume, nothing trained. To train further, "
            f"pass a larger --max-steps with --resume; to evaluate the adapter: python -m submission finetune "
            f"--evaluate-only --output-dir {out} --eval-data FILE")


def check_for_evaluation(out: Path, overwrite: bool) -> None:
    """--evaluate-only: an adapter in ``out``; an earlier evaluation there only replaced with --overwrite."""
    refuse_repository_folder(out)
    if not out.is_dir():
        raise ConfigError(f"--evaluate-only --output-dir {out}: no such folder; {suggest_path(out)}"
                          "it names the folder of an adapter that python -m submission finetune wrote")
    if not (out / ADAPTER_FILES[0]).is_file():
        raise ConfigError(f"--evaluate-only --output-dir {out}: no {ADAPTER_FILES[0]} there; it names the folder of "
                          "an adapter (adapter_config.json, adapter_model.safetensors)")
    earlier = out / EVAL_FOLDER
    if earlier.exists() and not overwrite:
        raise ConfigError(f"--evaluate-only: {earlier} holds an earlier evaluation "
                          f"({contents(earlier).listed()}); pass --overwrite to replace it")
