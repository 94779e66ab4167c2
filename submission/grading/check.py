"""``python -m submission check``: what the grader would refuse, found before you push.

Each check returns a ``CheckResult`` (ok, warn, fail or skip, and a sentence saying what was found and
how to fix it):

* user_config    ``models/user_config.py`` imports (in a fresh process) and defines a ``UserModel`` class
* aicrowd.json   valid: a known challenge_id, authors, gpu
* weights        every weight file in the build context is real, not a Git LFS pointer, and not left out
                 by .dockerignore; the weights that models/baseline.yaml names exist
* .dockerignore  keeps .git and local data out of the build context, keeps the code in
* run output     no stray results.json, predictions.jsonl, report.html or compare.html in the build context
* size           the repository against the competition's 25 GB cap
* gpu driver     this host's NVIDIA driver against what the installed torch needs (torch 2.13.0 from the
                 index: CUDA 13, an R580 or newer driver); a warning when torch cannot use the GPU here
* smoke run      the model answers 3 sample questions through the harness (a fresh process); a warning
                 when it writes into the repository, which is read-only in the grader's container
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..environment import KIT_ROOT
from ..errors import KitError
from ..scoring.data import ALL_AROUND, Question, load_questions
from .aicrowd import load_aicrowd

SAMPLE_DATA = KIT_ROOT / "data" / "sample.json"
# "The maximum size of a submission is 25GB (including model checkpoints)": the challenge page's news of
# March 25th, 2024 (aicrowd.com/challenges/amazon-kdd-cup-2024-multi-task-online-shopping-challenge-for-llms).
MAX_SUBMISSION_BYTES = 25 * 10**9
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".msgpack", ".model")
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".pytest_cache"}
MUST_EXCLUDE = {".git": ".git/HEAD", "local data": "data/development.json"}
SHOULD_EXCLUDE = {"virtual environments": ".venv/bin/python", "run outputs": "runs/run1/results.json",
                  "comparisons": "compare.html"}
RUNS_DIR = "runs"
RUN_OUTPUT_NAMES = {"results.json", "predictions.jsonl", "report.html", "compare.html", "scores.png"}
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
    return CheckResult(name, "ok", f"UserModel = {info['name']}")


def check_aicrowd(repo: Path, options: CheckOptions) -> CheckResult:
    config = load_aicrowd(repo)  # ConfigError: reported as a failure by run_checks
    text = f"track {config.challenge_id}, profile {config.profile_name}, authors {', '.join(config.authors)}"
    if config.placeholder_authors:
        return CheckResult("aicrowd.json", "warn",
                           f"{text}: replace 'your-aicrowd-username' with your AIcrowd username")
    return CheckResult("aicrowd.json", "ok", text)


def dockerignore_patterns(repo: Path) -> list[str] | None:
    """.dockerignore's patterns as the docker SDK reads them (None when there is no file)."""
    path = repo / ".dockerignore"
    if not path.is_file():
        return None
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _matcher(patterns: list[str]):
    from docker.utils.build import PatternMatcher

    return PatternMatcher(patterns)


def check_dockerignore(repo: Path, options: CheckOptions) -> CheckResult:
    name = ".dockerignore"
    patterns = dockerignore_patterns(repo)
    if patterns is None:
        return CheckResult(name, "fail", f"{repo / name}: missing, so .git, data and runs go into the image; copy "
                           "docker/dockerignore.template from the kit to .dockerignore")
    matcher = _matcher(patterns)
    kept_in = [what for what, probe in MUST_EXCLUDE.items() if not matcher.matches(probe)]
    if kept_in:
        return CheckResult(name, "fail", f"{repo / name} does not exclude {' or '.join(kept_in)} "
                           f"({', '.join(MUST_EXCLUDE[w] for w in kept_in)}); add `.git` and `data` lines")
    left_out = [path for path in MUST_INCLUDE if matcher.matches(path)]
    if left_out:
        return CheckResult(name, "fail", f"{repo / name} excludes {', '.join(left_out)}; the image would lack it")
    loose = [what for what, probe in SHOULD_EXCLUDE.items() if not matcher.matches(probe)]
    if loose:
        return CheckResult(name, "warn", f"does not exclude {', '.join(loose)}; add `.venv`, `runs` and "
                           "`**/compare.html` lines")
    return CheckResult(name, "ok", "excludes .git, local data, virtual environments and runs; keeps the code")


def _walk(repo: Path):
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


def _baseline_paths(repo: Path) -> list[Path]:
    """The weights and LoRA folders that models/baseline.yaml names (not the built-in 'smollm2')."""
    path = repo / "models" / "baseline.yaml"
    if not path.is_file():
        return []
    import yaml

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return []
    named = [config.get("weights"), config.get("lora_adapter")] if isinstance(config, dict) else []
    return [(path.parent / value) for value in named if isinstance(value, str) and value and value != "smollm2"]


def check_weights(repo: Path, options: CheckOptions) -> CheckResult:
    name = "weights"
    patterns = dockerignore_patterns(repo) or []
    matcher = _matcher(patterns)
    weights = [p for p in _walk(repo) if p.suffix.lower() in WEIGHT_SUFFIXES]
    problems = []
    for path in weights:
        rel = path.relative_to(repo).as_posix()
        if not path.exists():
            problems.append(f"{rel} is a broken link")
        elif is_lfs_pointer(path):
            problems.append(f"{rel} is a Git LFS pointer, not the weights (run `git lfs pull`)")
        elif matcher.matches(rel):
            problems.append(f"{rel} is excluded by .dockerignore, so the image will not have it")
    for path in _baseline_paths(repo):
        if not path.exists():
            problems.append(f"models/baseline.yaml names {path}, which does not exist")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return CheckResult(name, "fail", "; ".join(problems[:5]) + more)
    if not weights:
        return CheckResult(name, "ok", "no weight files in the repository (the grader has no network: nothing can be "
                           "downloaded at run time)")
    total = sum(p.stat().st_size for p in weights)
    return CheckResult(name, "ok", f"{len(weights)} weight file(s), {human_bytes(total)}, none an LFS pointer")


def check_run_output(repo: Path, options: CheckOptions) -> CheckResult:
    """Run folders' files that would go into the image: local results, not the submission."""
    matcher = _matcher(dockerignore_patterns(repo) or [])
    stray = [p.relative_to(repo).as_posix() for p in _walk(repo) if p.name in RUN_OUTPUT_NAMES]
    stray = [rel for rel in stray if not matcher.matches(rel)]
    if stray:
        more = f" (and {len(stray) - 5} more)" if len(stray) > 5 else ""
        return CheckResult("run output", "warn", f"run output in the build context: {', '.join(stray[:5])}{more}; "
                           "move it under runs/ or exclude it in .dockerignore")
    return CheckResult("run output", "ok", "no run output in the build context")


def repository_files(repo: Path) -> list[Path]:
    """The files a push would send: git's tracked and untracked-but-not-ignored files, else every file."""
    if (repo / ".git").exists():
        out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, timeout=120)
        if out.returncode == 0:
            return [repo / name for name in out.stdout.decode("utf-8", "replace").split("\0") if name]
    return list(_walk(repo))


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} bytes"


def check_size(repo: Path, options: CheckOptions) -> CheckResult:
    total = sum(p.stat().st_size for p in repository_files(repo) if p.is_file())
    text = f"{human_bytes(total)} of the {options.max_bytes / 1e9:g} GB cap"
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
    name = "smoke run"
    if not options.smoke:
        return CheckResult(name, "skip", "--no-smoke")
    from ..harness.outcome import ModelSpec
    from ..harness.predictions import PREDICTIONS_FILE, read_records
    from ..harness.profiles import Limits
    from ..harness.runner import run_model

    questions = smoke_questions(options.data, options.smoke_questions)
    limits = Limits(profile="check", budget_track=ALL_AROUND, budget_s=options.smoke_timeout_s)
    before = repository_state(repo)
    with tempfile.TemporaryDirectory(prefix="shopbench-check-") as tmp:
        outcome = run_model(ModelSpec(repo=str(repo)), questions, tmp, limits)
        records = read_records(Path(tmp) / PREDICTIONS_FILE) if (Path(tmp) / PREDICTIONS_FILE).is_file() else []
    written = sorted(path for path, state in repository_state(repo).items() if before.get(path) != state)
    if not outcome.verdict.ok:
        return CheckResult(name, "fail", f"{outcome.verdict} (on {len(questions)} sample questions, in this Python "
                           "environment; see the traceback above)")
    shown = ", ".join(json.dumps(r["output"][:30], ensure_ascii=False) for r in records)
    init = f"built in {outcome.init_s:.1f} s, " if outcome.init_s is not None else ""
    text = f"{len(records)} answers ({init}{outcome.wall_s:.1f} s in all): {shown}"
    if written:
        more = f" (and {len(written) - 3} more)" if len(written) > 3 else ""
        return CheckResult(name, "warn", f"{text}; but the model wrote into the repository ({', '.join(written[:3])}"
                           f"{more}), which is read-only in the grader's container: write to /tmp or ~/.cache "
                           "(size-capped scratch space) instead")
    return CheckResult(name, "ok", text)


def repository_state(repo: Path) -> dict[str, tuple[int, int]]:
    """Path -> (size, modification time) of the repository's files, Python's byte-code caches aside (Python
    skips writing them on a read-only root)."""
    state = {}
    for path in _walk(repo):
        if path.suffix == ".pyc" or RUNS_DIR in path.relative_to(repo).parts[:1]:
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        state[path.relative_to(repo).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return state


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
    results = []
    for name, check in CHECKS:
        if name == "smoke run" and any(r.status == "fail" and r.name == "user_config" for r in results):
            results.append(CheckResult(name, "skip", "UserModel cannot be imported"))
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
    lines.append("")
    lines.append(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else
                 "all checks passed: push when ready (and try `python -m submission docker run` first)")
    return "\n".join(lines)
