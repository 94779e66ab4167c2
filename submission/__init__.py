"""ShopBench Kit engine, in parts, each a subpackage whose ``__init__`` says what it owns:

    scoring/   data, parsers, metrics, embeddings, the batched scorer (imports no other part)
    backends/  how the kit drives a model: settings, hardware rules, prompting, weights, the transformers
               baseline and served models (imports no other part)
    harness/   profiles and limits, the prediction loop, the model's process, verdicts, predictions
    reports/   the run folder, intervals, compare, the HTML pages and charts
    evaluate/  the one evaluation pipeline: questions -> model run -> scores -> run folder
    grading/   images, containers, the grader, ``check``, aicrowd.json, the leaderboard
    training/  LoRA / QLoRA fine-tuning into an adapter the transformers baseline loads
    cli/       ``python -m submission``: one module per command, the logging set-up, the reporter

What every part uses stays here: ``errors`` (the kit's one error family, "did you mean"), ``interface``
(``ShopBenchBaseModel``, the participant interface), ``card`` (the grader's card as exported to the
model's process), ``cuda`` (the driver and CUDA's view of the cards, read without a CUDA context),
``environment`` (where the kit is, its ``SHOPBENCH_*`` variables, what a run records about the machine),
``yamlio`` (the one YAML reader), ``loading`` (finding the participant's model class), ``jsonio`` (strict,
UTF-8-safe JSON writing) and ``fileio`` (every file written through a fresh temporary file and a rename,
never through a link or a FIFO). Dependencies point one way: scoring and the backends at the bottom,
harness above scoring, then reports, evaluate, grading and training, and cli on top. Nothing here imports
the participant's ``models/``.

Participants read this package but never need to edit it; the organiser's grader uses the same code.

``__version__`` is the version written once, in pyproject.toml: read from that file in a source checkout (an
editable install's metadata would be stale after a version bump until it is reinstalled), else from the
installed distribution's metadata (``importlib.metadata``), else ``0+unknown`` (the package's files copied
alone, as the image's weights stage does).
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

DISTRIBUTION = "shopbench-kit"
UNKNOWN_VERSION = "0+unknown"


def _checkout_version(pyproject: Path) -> str | None:
    """The ``[project]`` version of ``pyproject`` when it is this kit's (its name is DISTRIBUTION), else None."""
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    table = re.search(r"^\[project\][ \t]*\n(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    if table is None:
        return None
    name = re.search(r'^name\s*=\s*"([^"]+)"', table.group(1), re.MULTILINE)
    version = re.search(r'^version\s*=\s*"([^"]+)"', table.group(1), re.MULTILINE)
    if name is None or version is None or name.group(1) != DISTRIBUTION:
        return None
    return version.group(1)


def _version() -> str:
    found = _checkout_version(Path(__file__).resolve().parent.parent / "pyproject.toml")
    if found is not None:
        return found
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


__version__ = _version()
