"""An output folder given again: a run there is never silently replaced, and nothing is written through a
link or a FIFO that stands at one of the run folder's names.

``claim_output_dir`` runs before the model does (exit status 2 on a refusal, through ``ConfigError``):

- a folder that holds a run (``results.json``, ``predictions.jsonl`` or ``scores.json``) is refused, with
  the choices named: ``--resume`` (when the run can be continued), another ``--output-dir``, or
  ``--overwrite``, which removes the run's files first (``clear_run``, under the folder's lock);
- a name the run will write that exists as something other than a regular file (a symlink, a FIFO, a
  device; for ``container/``, anything but a real folder) is refused, naming it (``fileio``).

``clear_run`` removes only the files and folders the kit writes into a run folder (and the temporary
files of an interrupted write); anything else in the folder is left where it is. Links are removed, never
followed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..fileio import describe, read_regular, refuse_non_regular
from ..harness.output_dir import locked
from ..harness.predictions import PREDICTIONS_FILE
from .compare import COMPARE_FILE
from .html import CHART_FILE, REPORT_FILE
from .results import RESULTS_FILE

RUN_FOLDER_FILES = (RESULTS_FILE, PREDICTIONS_FILE, REPORT_FILE, CHART_FILE)  # write_run_folder's
RUN_FILE = "run.json"  # local_evaluation.py's record for --resume
SCORES_FILE = "scores.json"  # grade's record for the leaderboard
KIT_FILES = RUN_FOLDER_FILES + (RUN_FILE, SCORES_FILE, COMPARE_FILE)
KIT_FOLDERS = ("container",)  # docker run and grade: the container's log
RUN_MARKS = (RESULTS_FILE, PREDICTIONS_FILE, SCORES_FILE)  # a folder holding one of these holds a run
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")  # fileio's temporary names


@dataclass(frozen=True)
class PreviousRun:
    """What an earlier run left in a folder."""

    folder: Path
    files: tuple[str, ...]  # the kit's names present there
    finished: bool  # it wrote results.json (or scores.json): it got to its end, whatever its verdict
    verdict: str | None  # results.json's verdict status, when it has one
    answered: str  # '40 of 96 questions answered', or ''
    resumable: bool  # local_evaluation.py --resume can continue it

    def describe(self) -> str:
        what = "a finished run" if self.finished else "an interrupted run (no results.json)"
        facts = [f"verdict {self.verdict}"] if self.verdict else []
        facts += [self.answered] if self.answered else []
        return f"{what} ({'; '.join(facts + [', '.join(self.files)])})"


def _results(folder: Path) -> dict:
    try:
        data = json.loads(read_regular(folder / RESULTS_FILE))
    except (OSError, ValueError, ConfigError):
        return {}
    return data if isinstance(data, dict) else {}


def previous_run(folder: str | Path) -> PreviousRun | None:
    """The run ``folder`` holds, or None (absent, empty, or none of results.json, predictions.jsonl and
    scores.json there)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    present = tuple(name for name in KIT_FILES + KIT_FOLDERS if os.path.lexists(folder / name)
                    and describe(folder / name) in (None, "a folder"))  # links and FIFOs: refuse_output_names
    if not set(present) & set(RUN_MARKS):
        return None
    results = _results(folder)
    verdict = results.get("verdict")
    if not isinstance(verdict, dict):
        verdict = {}
    status = verdict.get("status") if isinstance(verdict.get("status"), str) else None
    answered = ""
    if isinstance(results.get("n_answered"), int) and isinstance(results.get("n_questions"), int):
        answered = f"{results['n_answered']} of {results['n_questions']} questions answered"
    finished = RESULTS_FILE in present or SCORES_FILE in present
    resumable = RUN_FILE in present and PREDICTIONS_FILE in present and status != "ok"
    return PreviousRun(folder, present, finished, status, answered, resumable)


def claim_output_dir(folder: str | Path, overwrite: bool = False, resume_flag: bool = False,
                     extra_files: tuple[str, ...] = (), hint: str = "") -> None:
    """Refuse ``folder`` when it holds a run (unless ``overwrite``: ``clear_run`` then removes it) or when a
    name the run will write is not a regular file. ``resume_flag``: the command has ``--resume`` (name it
    when the run can be continued); ``hint``: a line of the command's own."""
    folder = Path(folder)
    if not folder.is_dir():
        return  # created later, empty
    with locked(folder):  # a run that goes on there now is named as such, before what it left so far
        pass
    if overwrite:
        return
    refuse_output_names(folder, extra_files)
    found = previous_run(folder)
    if found is not None:
        choices = [f"continue it with --resume {folder}"] if resume_flag and found.resumable else []
        choices += ["write to another --output-dir",
                    "pass --overwrite to remove its files first (other files in the folder are kept)"]
        raise ConfigError(f"--output-dir {folder} holds {found.describe()}; a new run would replace it. "
                          f"{'; '.join(choices[:-1])}; or {choices[-1]}" + (f". {hint}" if hint else ""))


def refuse_output_names(folder: Path, extra_files: tuple[str, ...] = ()) -> None:
    """ConfigError naming every name the run will write in ``folder`` that is not a regular file (and a
    ``container`` that is not a real folder)."""
    refuse_non_regular(folder, KIT_FILES + tuple(extra_files),
                       "remove it, pass --overwrite (which removes it), or choose another --output-dir")
    for name in KIT_FOLDERS:
        what = describe(folder / name)
        if what is not None and what != "a folder":
            raise ConfigError(f"{folder / name} is {what}: the kit writes its own folder there and never writes "
                              "through a link; remove it, pass --overwrite (which removes it), or choose another "
                              "--output-dir")


def clear_run(folder: str | Path) -> list[str]:
    """Remove the kit's files and folders from ``folder`` (links unlinked, never followed) and the
    temporary files of an interrupted write; returns the names removed. Other files stay."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(os.listdir(folder)):
        temporary = _TEMPORARY.match(entry)
        if entry not in KIT_FILES + KIT_FOLDERS and not (temporary and temporary["name"] in KIT_FILES):
            continue
        path = folder / entry
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        removed.append(entry)
    return removed
