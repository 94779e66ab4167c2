"""check against what the grader's image will hold: the paths the model configs name (inside the repository,
tracked by git, in the build context) and one set of files, the build context's, for every figure."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from kit_paths import ROOT

from submission.grading.check import CheckOptions, run_checks

NO_SMOKE = CheckOptions(smoke=False)
KIT_GITIGNORE = (ROOT / ".gitignore").read_text()


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=tests", "-c", "user.email=tests@example.com", *args],
                   check=True, capture_output=True)


def make_repo(tmp_path: Path, dockerignore: str | None = None) -> Path:
    """A submission as a participant's clone of the kit holds it: a git repository with the kit's .gitignore
    and .dockerignore (or ``dockerignore``), everything committed."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "models", repo / "models", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "models" / "user_config.py").write_text("from models.dummy_model import DummyModel as UserModel\n")
    (repo / "aicrowd.json").write_text(json.dumps({"challenge_id": "amazon-kdd-cup-24-all-around",
                                                   "authors": ["alice"], "gpu": True}))
    (repo / ".gitignore").write_text(KIT_GITIGNORE)
    (repo / ".dockerignore").write_text(dockerignore if dockerignore is not None
                                        else (ROOT / ".dockerignore").read_text())
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "submission")
    return repo


def write_adapter(folder: Path, with_checkpoint: bool = True) -> None:
    """What `python -m submission finetune --output-dir folder` leaves: the adapter and its checkpoints."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (folder / "adapter_model.safetensors").write_bytes(bytes(3000))
    if with_checkpoint:
        checkpoint = folder / "checkpoints" / "checkpoint-7"
        checkpoint.mkdir(parents=True)
        (checkpoint / "adapter_model.safetensors").write_bytes(bytes(3000))
        (checkpoint / "optimizer.pt").write_bytes(bytes(150_000))
        (checkpoint / "rng_state.pth").write_bytes(bytes(1000))


def context_files(repo: Path) -> list[str]:
    """The build context's files, as Docker's own rules (the docker SDK's) select them."""
    from docker.utils.build import exclude_paths

    patterns = [line.strip() for line in (repo / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    return sorted(p for p in exclude_paths(str(repo), patterns) if (repo / p).is_file())


def set_key(repo: Path, config: str, key: str, value: str) -> None:
    path = repo / "models" / config
    lines = path.read_text().splitlines()
    found = [i for i, line in enumerate(lines) if line.startswith(f"{key}:")]
    assert found, f"{config} has no {key}"
    lines[found[0]] = f"{key}: {value}"
    path.write_text("\n".join(lines) + "\n")


def weights_check(repo: Path) -> tuple[str, str]:
    return {r.name: (r.status, r.detail) for r in run_checks(repo, NO_SMOKE)}["weights"]


def test_an_adapter_that_git_ignores_fails_with_the_fix(tmp_path):
    repo = make_repo(tmp_path)
    write_adapter(repo / "adapters" / "try1")  # adapters/ is in the kit's .gitignore
    set_key(repo, "baseline.yaml", "lora_adapter", "../adapters/try1")
    status, detail = weights_check(repo)
    assert status == "fail", detail
    assert ("models/baseline.yaml names (lora_adapter) adapters/try1, whose files are not tracked by git "
            "(.gitignore ignores it): adapters/try1/adapter_config.json, adapters/try1/adapter_model.safetensors"
            ) in detail
    assert "`git add -f adapters/try1` and commit" in detail
    assert "checkpoint-7" not in detail  # excluded by .dockerignore: never needed


def test_a_committed_adapter_passes(tmp_path):
    repo = make_repo(tmp_path)
    write_adapter(repo / "adapters" / "try1")
    set_key(repo, "baseline.yaml", "lora_adapter", "../adapters/try1")
    git(repo, "add", "-f", "adapters/try1/adapter_config.json", "adapters/try1/adapter_model.safetensors")
    git(repo, "commit", "-q", "-am", "adapter")
    status, detail = weights_check(repo)
    assert status == "ok", detail
    assert detail == "1 weight file(s) in the build context, 3.00 kB, none an LFS pointer"  # not the checkpoint's


def test_weights_outside_the_repository_fail(tmp_path):
    repo = make_repo(tmp_path)
    outside = tmp_path / "elsewhere" / "my-model"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text("{}")
    set_key(repo, "baseline.yaml", "weights", str(outside))
    status, detail = weights_check(repo)
    assert status == "fail"
    assert f"models/baseline.yaml names (weights) {outside} ({outside}), outside the repository" in detail
    assert "Move it inside (e.g. weights/my-model) and name it relative to models/ (../weights/my-model)" in detail


def test_weights_that_dockerignore_excludes_fail(tmp_path):
    repo = make_repo(tmp_path, dockerignore=(ROOT / ".dockerignore").read_text() + "\nweights\n")
    (repo / "weights" / "ft").mkdir(parents=True)
    (repo / "weights" / "ft" / "config.json").write_text("{}")
    git(repo, "add", "weights")
    git(repo, "commit", "-q", "-m", "weights")
    set_key(repo, "baseline.yaml", "weights", "../weights/ft")
    status, detail = weights_check(repo)
    assert status == "fail"
    assert ("models/baseline.yaml names (weights) weights/ft, which .dockerignore excludes from the build context: "
            "the image will not have it") in detail


def test_the_served_models_weights_and_tokenizer_are_checked_too(tmp_path):
    repo = make_repo(tmp_path)
    for name in ("served-model", "tokenizer"):
        (repo / "weights" / name).mkdir(parents=True)
        (repo / "weights" / name / "config.json").write_text("{}")
    git(repo, "add", "weights/served-model")
    git(repo, "commit", "-q", "-m", "served weights")
    set_key(repo, "served.yaml", "weights", "../weights/served-model")
    set_key(repo, "served.yaml", "tokenizer", "../weights/tokenizer")  # never committed
    status, detail = weights_check(repo)
    assert status == "fail"
    assert "models/served.yaml names (tokenizer) weights/tokenizer, whose files are not tracked by git: " \
           "weights/tokenizer/config.json" in detail
    assert "(weights) weights/served-model" not in detail


def test_checkpoints_count_nowhere_when_dockerignore_excludes_them(tmp_path):
    repo = make_repo(tmp_path)
    write_adapter(repo / "adapters" / "try1")
    results = {r.name: (r.status, r.detail) for r in run_checks(repo, NO_SMOKE)}
    context = context_files(repo)
    assert not [f for f in context if "checkpoint" in f]
    expected = sum((repo / f).stat().st_size for f in context)
    assert results["size"][0] == "ok" and results["size"][1].startswith(f"{expected / 1e3:.2f} kB in the build context")
    assert results["weights"] == ("ok", "1 weight file(s) in the build context, 3.00 kB, none an LFS pointer")
    assert results["run output"] == ("ok", "no run output or training checkpoint in the build context")


def test_checkpoints_in_the_build_context_are_warned_about_and_counted(tmp_path):
    old_dockerignore = "\n".join(line for line in (ROOT / ".dockerignore").read_text().splitlines()
                                 if "checkpoint" not in line and "optimizer" not in line and "rng_state" not in line)
    repo = make_repo(tmp_path, dockerignore=old_dockerignore)
    write_adapter(repo / "adapters" / "try1")
    results = {r.name: (r.status, r.detail) for r in run_checks(repo, NO_SMOKE)}
    status, detail = results["run output"]
    assert status == "warn"
    assert ("training checkpoints in the build context (3 files, 154.00 kB): "
            "adapters/try1/checkpoints/checkpoint-7/adapter_model.safetensors") in detail
    assert "exclude them in .dockerignore (`adapters/*/checkpoints`" in detail
    assert results["weights"][1].startswith("4 weight file(s) in the build context, 157.00 kB")  # the same files
    assert results[".dockerignore"][0] == "warn" and "training checkpoints" in results[".dockerignore"][1]


@pytest.mark.parametrize("path", ["wheelhouse/torch-2.13.0-cp311.whl", "adapters/try1/checkpoints/checkpoint-7/x.bin",
                                  "adapters/try1/checkpoint-12/optimizer.pt", "adapters/try1/optimizer.pt",
                                  "adapters/try1/scheduler.pt", "adapters/try1/rng_state_3.pth",
                                  "adapters/try1/eval/adapter/results.json"])
def test_the_kits_dockerignore_and_template_keep_training_state_and_wheels_out(tmp_path, path):
    for source in (ROOT / ".dockerignore", ROOT / "docker" / "dockerignore.template"):
        repo = tmp_path / source.name
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(b"x")
        (repo / "adapters" / "try1").mkdir(parents=True, exist_ok=True)
        (repo / "adapters" / "try1" / "adapter_model.safetensors").write_bytes(b"x")
        shutil.copy2(source, repo / ".dockerignore")
        assert context_files(repo) == [".dockerignore", "adapters/try1/adapter_model.safetensors"], source
