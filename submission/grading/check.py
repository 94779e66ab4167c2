"""``python -m submission check``: what the grader would refuse, found before you push.

Each check returns a ``CheckResult`` (ok, warn, fail or skip, and a sentence saying what was found and
how to fix it):

* user_config    ``models/user_config.py`` imports (in a fresh process) and defines a ``UserModel`` class
                 whose settings pass its ``check_settings()`` (the kit's backends: their YAML file and paths)
* aicrowd.json   valid: a known challenge_id, authors, gpu
* weights        every weight file in the build context is real, not a Git LFS pointer, and none is left
                 out by .dockerignore (training checkpoints aside); every path a model config names
                 (models/baseline.yaml's weights and lora_adapter, models/served.yaml's weights and
                 tokenizer) is inside the repository, tracked by git and in the build context
                 (config_paths)
* .dockerignore  keeps .git and local data out of the build context, keeps the code in
* run output     no stray results.json, predictions.jsonl, report.html, compare.html or training
                 checkpoint in the build context
* size           the build context against the competition's 25 GB cap
* gpu driver     this host's NVIDIA driver against what the installed torch needs (torch 2.13.0 from the
                 index: CUDA 13, an R580 or newer driver); a warning when torch cannot use the GPU here
* smoke run      the model answers 3 sample questions in the submission's own image, built and run the
                 grader's way (smoke.py); without a Docker daemon, in this Python environment, and then
                 at best a warning saying so

Every figure counts one set of files: the build context's (what .dockerignore lets in).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..environment import KIT_ROOT
from ..errors import KitError
from ..scoring.data import Question, load_questions
from .aicrowd import load_aicrowd
from .config_paths import path_problems, tracked_files
from .images import context_files, dockerignore_patterns, human_bytes
from .smoke import SmokeOptions, smoke_run

SAMPLE_DATA = KIT_ROOT / "data" / "sample.json"
# "The maximum size of a submission is 25GB (including model checkpoints)": the challenge page's news of
# March 25th, 2024 (aicrowd.com/challenges/amazon-kdd-cup-2024-multi-task-online-shopping-challenge-for-llms).
MAX_SUBMISSION_BYTES = 25 * 10**9
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".msgpack", ".model")
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".pytest_cache"}
MUST_EXCLUDE = {".git": ".git/HEAD", "local data": "data/development.json"}
SHOULD_EXCLUDE = {"virtual environments": ".venv/bin/python", "run outputs": "runs/run1/results.json",
                  "comparisons": "compare.html", "wheelhouse/": "wheelhouse/torch-2.13.0-cp311.whl",
                  "training checkpoints": "adapters/try1/checkpoints/checkpoint-7/optimizer.pt"}
RUN_OUTPUT_NAMES = {"results.json", "predictions.jsonl", "report.html", "compare.html", "scores.png"}
RUN_FOLDER_MARKERS = ("results.json", "predictions.jsonl")
# What fine-tuning leaves besides the adapter: Trainer's checkpoint-N folders and optimizer states.
TRAINING_STATE = re.compile(r"(^|/)checkpoint-\d+/|(^|/)(optimizer\.(pt|bin)|scheduler\.pt|rng_state[^/]*\.pth)$")
MUST_INCLUDE = ("aicrowd.json", "requirements.txt", "models/user_config.py", "submission/harness/runner.py",
                "docker/entrypoint.py")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str


@dataclass(frozen=True)
class CheckOptions:
    smoke: bool = True
    smoke_questions: int = 3
    smoke_timeout_s: float = 600.0
    data: Path = SAMPLE_DATA
    max_bytes: int = MAX_SUBMISSION_BYTES
    smoke_in: str = "image"  # image (this machine's Docker daemon; host if none answers) | host
    image: str | None = None  # the smoke run uses this image instead of building the repository
    tag: str | None = None
    base_image: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- the checks

_IMPORT_PROBE = textwrap.dedent("""
    import importlib, json, sys
    sys.path.insert(0, sys.argv[1])
    module = importlib.import_module("models.user_config")
    cls = getattr(module, "UserModel", None)
    info = {"defined": cls is not None, "is_class": isinstance(cls, type)}
    if info["is_class"]:
        info["name"] = f"{cls.__module__}.{cls.__qualname__}"
        info["missing"] = [m for m in ("get_batch_size", "batch_predict") if not callable(getattr(cls, m, None))]
        try:  # the optional pre-run hook: the kit's backends read their YAML and check the paths it names
            from submission.loading import check_model_settings
            check_model_settings(cls, "UserModel")
        except Exception as exc:
            info["settings"] = str(exc)
    print("SHOPBENCH-CHECK " + json.dumps(info))
""")


def check_user_config(repo: Path, options: CheckOptions) -> CheckResult:
    name, path = "user_config", repo / "models" / "user_config.py"
    if not path.is_file():
        return CheckResult(name, "fail", f"{path}: no such file; it must define UserModel (see the kit's models/)")
    try:
        out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, str(repo)], cwd=repo, capture_output=True,
                             text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return CheckResult(name, "fail", f"importing {path} took over 300 s; do not load the model at import time")
    lines = [line for line in out.stdout.splitlines() if line.startswith("SHOPBENCH-CHECK ")]
    if out.returncode != 0 or not lines:
        last = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
        return CheckResult(name, "fail", f"importing {path} failed: {last}")
    info = json.loads(lines[-1].split(" ", 1)[1])
    if not info["defined"]:
        return CheckResult(name, "fail", f"{path} defines no UserModel; add `UserModel = YourModelClass`")
    if not info["is_class"]:
        return CheckResult(name, "fail", f"{path}: UserModel must be a class (the grader calls UserModel())")
    if info["missing"]:
        return CheckResult(name, "fail", f"{path}: UserModel ({info['name']}) lacks {', '.join(info['missing'])}; "
                           "subclass models.base_model.ShopBenchBaseModel")
    if info.get("settings"):
        return CheckResult(name, "fail", f"UserModel = {info['name']}, whose settings are refused: {info['settings']}")
    return CheckResult(name, "ok", f"UserModel = {info['name']}")


def check_aicrowd(repo: Path, options: CheckOptions) -> CheckResult:
    config = load_aicrowd(repo)  # ConfigError: reported as a failure by run_checks
    text = f"track {config.challenge_id}, profile {config.profile_name}, authors {', '.join(config.authors)}"
    if config.placeholder_authors:
        return CheckResult("aicrowd.json", "warn",
                           f"{text}: replace 'your-aicrowd-username' with your AIcrowd username")
    return CheckResult("aicrowd.json", "ok", text)


def _matcher(patterns: list[str]) -> Callable[[str], bool]:
    """Whether docker's own .dockerignore rules exclude a path (relative, as a str)."""
    from docker.utils.build import PatternMatcher

    # types-docker types the path as PathLike; docker's code takes the str it is given
    matches: Callable[[str], bool] = PatternMatcher(patterns).matches  # type: ignore[assignment]
    return matches


def check_dockerignore(repo: Path, options: CheckOptions) -> CheckResult:
    name = ".dockerignore"
    patterns = dockerignore_patterns(repo)
    if patterns is None:
        return CheckResult(name, "fail", f"{repo / name}: missing, so .git, data and runs go into the image; copy "
                           "docker/dockerignore.template from the kit to .dockerignore")
    matcher = _matcher(patterns)
    kept_in = [what for what, probe in MUST_EXCLUDE.items() if not matcher(probe)]
    if kept_in:
        return CheckResult(name, "fail", f"{repo / name} does not exclude {' or '.join(kept_in)} "
                           f"({', '.join(MUST_EXCLUDE[w] for w in kept_in)}); add `.git` and `data` lines")
    left_out = [path for path in MUST_INCLUDE if matcher(path)]
    if left_out:
        return CheckResult(name, "fail", f"{repo / name} excludes {', '.join(left_out)}; the image would lack it")
    loose = [what for what, probe in SHOULD_EXCLUDE.items() if not matcher(probe)]
    if loose:
        why = ", ".join(SHOULD_EXCLUDE[w] for w in loose)
        return CheckResult(name, "warn", f"does not exclude {', '.join(loose)} ({why}); "
                           "add the lines of the kit's docker/dockerignore.template (`.venv`, `runs`, "
                           "`**/compare.html`, `wheelhouse`, `adapters/*/checkpoints`, ...)")
    return CheckResult(name, "ok", "excludes .git, local data, virtual environments, runs, wheelhouse/ and training "
                       "checkpoints; keeps the code")


def _walk(repo: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for file in files:
            yield Path(folder) / file


def is_lfs_pointer(path: Path) -> bool:
    try:
        if path.stat().st_size > 1024:
            return False
        with path.open("rb") as handle:
            return handle.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX
    except OSError:
        return False


def _listed(items: list[str], n: int = 5) -> str:
    return "; ".join(items[:n]) + (f" (and {len(items) - n} more)" if len(items) > n else "")


def _is_weight(rel: str) -> bool:
    return Path(rel).suffix.lower() in WEIGHT_SUFFIXES


def check_weights(repo: Path, options: CheckOptions) -> CheckResult:
    name = "weights"
    context = context_files(repo)
    weights = [rel for rel in context if _is_weight(rel)]
    problems = []
    for rel in weights:
        if not (repo / rel).exists():
            problems.append(f"{rel} is a broken link")
        elif is_lfs_pointer(repo / rel):
            problems.append(f"{rel} is a Git LFS pointer, not the weights (run `git lfs pull`)")
    in_context = set(context)
    left_out = [p.relative_to(repo).as_posix() for p in _walk(repo) if p.suffix.lower() in WEIGHT_SUFFIXES]
    problems += [f"{rel} is excluded by .dockerignore, so the image will not have it" for rel in left_out
                 if rel not in in_context and not TRAINING_STATE.search(rel) and not rel.startswith("wheelhouse/")]
    problems += path_problems(repo, in_context, tracked_files(repo))
    if problems:
        return CheckResult(name, "fail", _listed(problems))
    if not weights:
        return CheckResult(name, "ok", "no weight files in the build context (the grader has no network: nothing can "
                           "be downloaded at run time)")
    total = sum((repo / rel).stat().st_size for rel in weights)
    return CheckResult(name, "ok", f"{len(weights)} weight file(s) in the build context, {human_bytes(total)}, none an "
                       "LFS pointer")


def _is_run_output(rel: str, context: set[str]) -> bool:
    """results.json or predictions.jsonl, or a report, chart or comparison beside one (the kit's own templates,
    report.html and compare.html, are not run output)."""
    name, folder = Path(rel).name, Path(rel).parent
    if name in RUN_FOLDER_MARKERS:
        return True
    return name in RUN_OUTPUT_NAMES and any((folder / marker).as_posix() in context for marker in RUN_FOLDER_MARKERS)


def check_run_output(repo: Path, options: CheckOptions) -> CheckResult:
    """Run folders' files and training checkpoints that would go into the image: local results, not the model."""
    context = context_files(repo)
    stray = [rel for rel in context if _is_run_output(rel, set(context))]
    training = [rel for rel in context if TRAINING_STATE.search(rel)]
    found = []
    if stray:
        found.append(f"run output in the build context: {_listed(stray).replace('; ', ', ')}; move it under runs/ "
                     "or exclude it in .dockerignore")
    if training:
        size = human_bytes(sum((repo / rel).stat().st_size for rel in training if (repo / rel).is_file()))
        found.append(f"training checkpoints in the build context ({len(training)} files, {size}): "
                     f"{_listed(training, 3).replace('; ', ', ')}; the model needs the adapter only: exclude them "
                     "in .dockerignore (`adapters/*/checkpoints`, `**/checkpoint-[0-9]*`, `**/optimizer.pt`)")
    if found:
        return CheckResult("run output", "warn", "; ".join(found))
    return CheckResult("run output", "ok", "no run output or training checkpoint in the build context")


def check_size(repo: Path, options: CheckOptions) -> CheckResult:
    total = sum((repo / rel).stat().st_size for rel in context_files(repo) if (repo / rel).is_file())
    text = f"{human_bytes(total)} in the build context, of the {options.max_bytes / 1e9:g} GB cap"
    if total > options.max_bytes:
        return CheckResult("size", "fail",
                           f"{text}: too large; move what the model does not need out of the repository")
    if total > 0.9 * options.max_bytes:
        return CheckResult("size", "warn", f"{text}: close to the cap")
    return CheckResult("size", "ok", text)


def check_gpu_driver(repo: Path, options: CheckOptions) -> CheckResult:
    """The driver and torch's CUDA build, named both ways; a warning when torch would fall back to the CPU."""
    from ..cuda import driver_status
    from ..harness.gpu import load_nvml

    status = driver_status(load_nvml())
    return CheckResult("gpu driver", "ok" if status.ok else "warn", status.text)


def smoke_questions(path: Path, n: int) -> list[Question]:
    """``n`` questions of the sample split in test format: one multiple-choice question, then open ones."""
    questions = load_questions(path)
    mc = [q for q in questions if q.is_multiple_choice][:1]
    picked = (mc + [q for q in questions if not q.is_multiple_choice])[:n]
    return [Question(q.row, q.prompt, q.is_multiple_choice) for q in sorted(picked, key=lambda q: q.row)]


def check_smoke(repo: Path, options: CheckOptions) -> CheckResult:
    if not options.smoke:
        return CheckResult("smoke run", "skip", "--no-smoke")
    questions = smoke_questions(options.data, options.smoke_questions)
    smoke = SmokeOptions(options.smoke_in, options.smoke_timeout_s, options.image, options.tag, options.base_image,
                         options.build_args)
    result = smoke_run(repo, questions, smoke)
    return CheckResult("smoke run", result.status, result.detail)


CHECKS: tuple[tuple[str, Callable[[Path, CheckOptions], CheckResult]], ...] = (
    ("user_config", check_user_config),
    ("aicrowd.json", check_aicrowd),
    ("weights", check_weights),
    (".dockerignore", check_dockerignore),
    ("run output", check_run_output),
    ("size", check_size),
    ("gpu driver", check_gpu_driver),
    ("smoke run", check_smoke),
)


def run_checks(repo: str | Path, options: CheckOptions = CheckOptions()) -> list[CheckResult]:
    """Every check, in order; a check that raises a kit error fails with its message."""
    repo = Path(repo).resolve()
    results: list[CheckResult] = []
    for name, check in CHECKS:
        if name == "smoke run" and any(r.status == "fail" and r.name == "user_config" for r in results):
            refused = any("settings are refused" in r.detail for r in results if r.name == "user_config")
            results.append(CheckResult(name, "skip", "UserModel's settings are refused" if refused
                                       else "UserModel cannot be imported"))
            continue
        try:
            results.append(check(repo, options))
        except KitError as exc:
            results.append(CheckResult(name, "fail", str(exc)))
    return results


def format_results(results: list[CheckResult]) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{r.name:<{width}}  {r.status:<4}  {r.detail}" for r in results]
    failed = [r.name for r in results if r.status == "fail"]
    warned = [r.name for r in results if r.status == "warn"]
    lines.append("")
    if failed:
        lines.append(f"{len(failed)} check(s) failed: {', '.join(failed)}")
    elif warned:
        lines.append(f"no check failed, but read the warning(s) of {', '.join(warned)} before you push")
    else:
        lines.append("all checks passed: push when ready (and try `python -m submission docker run` first)")
    return "\n".join(lines)
