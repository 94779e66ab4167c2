"""python -m submission check on small repositories, each broken one way."""

import json
import shutil
from pathlib import Path

import pytest
from kit_paths import ROOT

from submission.cli.check import main as check_main
from submission.grading.check import CheckOptions, run_checks

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 4404019200\n"
NO_SMOKE = CheckOptions(smoke=False)
ON_HOST = CheckOptions(smoke_in="host")  # the smoke run in the image: tests/submission/grading/with_docker


def make_repo(tmp_path: Path, user_model: str = "from models.dummy_model import DummyModel as UserModel\n") -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "models", repo / "models", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "models" / "user_config.py").write_text(user_model)
    (repo / "aicrowd.json").write_text(json.dumps({"challenge_id": "amazon-kdd-cup-24-all-around",
                                                   "authors": ["alice"], "gpu": True}))
    shutil.copy2(ROOT / ".dockerignore", repo / ".dockerignore")
    return repo


def statuses(repo, options=NO_SMOKE) -> dict[str, tuple[str, str]]:
    return {r.name: (r.status, r.detail) for r in run_checks(repo, options)}


def test_the_dummy_submission_passes_every_check_and_a_smoke_run_on_the_host_is_only_a_warning(tmp_path):
    found = statuses(make_repo(tmp_path), ON_HOST)
    assert {name: status for name, (status, _) in found.items()} == {
        "user_config": "ok", "aicrowd.json": "ok", "weights": "ok", ".dockerignore": "ok", "run output": "ok",
        "size": "ok", "gpu driver": "ok", "smoke run": "warn"}
    assert found["user_config"][1] == "UserModel = models.dummy_model.DummyModel"
    assert found["smoke run"][1].startswith("3 answers")
    assert "NOT in the submission's image (--smoke-in host)" in found["smoke run"][1]
    assert "a package or file that the image lacks is not caught" in found["smoke run"][1]


def test_without_a_docker_daemon_the_smoke_run_says_it_did_not_run_in_the_image(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    status, detail = statuses(make_repo(tmp_path), CheckOptions())["smoke run"]
    assert status == "warn" and detail.startswith("3 answers")
    assert "NOT in the submission's image (no Docker daemon: cannot reach the Docker daemon" in detail


def test_warnings_are_named_in_the_summary(tmp_path, capsys):
    repo = make_repo(tmp_path)
    assert check_main(["--repo", str(repo), "--smoke-in", "host"], "check") == 0
    assert "no check failed, but read the warning(s) of smoke run before you push" in capsys.readouterr().out


@pytest.mark.parametrize("source, message", [
    ("import vllm_that_is_not_installed\n", "ModuleNotFoundError: No module named 'vllm_that_is_not_installed'"),
    ("Model = 1\n", "defines no UserModel; add `UserModel = YourModelClass`"),
    ("UserModel = 'models.dummy_model:DummyModel'\n", "UserModel must be a class"),
    ("class UserModel:\n    pass\n", "lacks get_batch_size, batch_predict"),
])
def test_a_broken_user_config_fails_and_skips_the_smoke_run(tmp_path, source, message):
    found = statuses(make_repo(tmp_path, source), ON_HOST)
    assert found["user_config"][0] == "fail" and message in found["user_config"][1]
    assert found["smoke run"] == ("skip", "UserModel cannot be imported")


def test_a_model_that_raises_fails_the_smoke_run(tmp_path):
    source = ("from models.dummy_model import DummyModel\n\nclass UserModel(DummyModel):\n"
              "    def batch_predict(self, batch, is_multiple_choice):\n        raise RuntimeError('CUDA not found')\n")
    status, detail = statuses(make_repo(tmp_path, source), ON_HOST)["smoke run"]
    assert status == "fail" and detail.startswith("model_error: batch_predict (batch 0, ")
    assert "RuntimeError: CUDA not found" in detail


def test_the_gpu_driver_is_named_with_what_torch_needs(tmp_path, monkeypatch):
    from submission import cuda

    version = tmp_path / "nvidia-version"
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:41 UTC 2024\n")
    monkeypatch.setattr(cuda, "DRIVER_VERSION_FILE", str(version))  # a host with an R550 driver
    monkeypatch.setattr(cuda, "torch_build", lambda: cuda.TorchBuild("2.13.0", "13.0"))  # and torch for CUDA 13
    status, detail = statuses(make_repo(tmp_path))["gpu driver"]
    assert status == "warn"
    assert detail.startswith("NVIDIA driver 550.54.15; torch 2.13.0 is built for CUDA 13.0 and needs an R580 or newer "
                             "driver: torch will not see the GPU and a model on device: auto runs on the CPU")


def test_invalid_aicrowd_json_fails(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "aicrowd.json").write_text(json.dumps({"challenge_id": "amazon-kdd-cup-24-all-around", "gpu": True}))
    status, detail = statuses(repo)["aicrowd.json"]
    assert status == "fail" and "missing 'authors'" in detail


def test_lfs_pointers_and_weights_left_out_of_the_image_fail(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "weights").mkdir()
    (repo / "weights" / "model-00001-of-00002.safetensors").write_text(LFS_POINTER)
    (repo / "weights" / "model-00002-of-00002.safetensors").write_bytes(bytes(2048))
    (repo / "data").mkdir()
    (repo / "data" / "adapter.bin").write_bytes(bytes(2048))  # data/ is excluded by .dockerignore
    status, detail = statuses(repo)["weights"]
    assert status == "fail"
    assert ("weights/model-00001-of-00002.safetensors is a Git LFS pointer, not the weights (run `git lfs pull`)"
            in detail)
    assert "data/adapter.bin is excluded by .dockerignore, so the image will not have it" in detail
    assert "model-00002" not in detail


def test_real_weights_pass(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "weights").mkdir()
    (repo / "weights" / "model.safetensors").write_bytes(bytes(3000))
    assert statuses(repo)["weights"] == ("ok", "1 weight file(s) in the build context, 3.00 kB, none an LFS pointer")


def test_baseline_weights_that_do_not_exist_fail(tmp_path):
    repo = make_repo(tmp_path)
    config = repo / "models" / "baseline.yaml"
    config.write_text(config.read_text().replace("weights: smollm2", "weights: ../weights/my-finetune"))
    status, detail = statuses(repo)["weights"]
    assert status == "fail" and "models/baseline.yaml names" in detail and "my-finetune, which does not exist" in detail
    assert "(weights) weights/my-finetune" in detail


@pytest.mark.parametrize("content, status, message", [
    (None, "fail", "missing, so .git, data and runs go into the image"),
    ("data\nruns\n.venv\n", "fail", "does not exclude .git (.git/HEAD)"),
    (".git\nruns\n.venv\n", "fail", "does not exclude local data (data/development.json)"),
    (".git\ndata\n", "warn", "does not exclude virtual environments, run outputs"),
    (".git\ndata\nruns\n.venv\nmodels\n", "fail", "excludes models/user_config.py; the image would lack it"),
    ("*\n!models\n", "fail", "excludes aicrowd.json, requirements.txt"),
])
def test_dockerignore(tmp_path, content, status, message):
    repo = make_repo(tmp_path)
    (repo / ".dockerignore").unlink()
    if content is not None:
        (repo / ".dockerignore").write_text(content)
    found = statuses(repo)[".dockerignore"]
    assert found[0] == status and message in found[1], found


def test_the_size_cap(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "blob.bin").write_bytes(bytes(200_000))
    size = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())
    assert statuses(repo, CheckOptions(smoke=False, max_bytes=size - 1))["size"][0] == "fail"
    assert statuses(repo, CheckOptions(smoke=False, max_bytes=int(size / 0.95)))["size"][0] == "warn"
    assert statuses(repo, CheckOptions(smoke=False, max_bytes=size * 2))["size"][0] == "ok"


def test_the_command_fails_when_a_check_fails(tmp_path, capsys):
    repo = make_repo(tmp_path)
    assert check_main(["--repo", str(repo), "--no-smoke"], "check") == 0
    (repo / ".dockerignore").unlink()
    assert check_main(["--repo", str(repo), "--no-smoke"], "check") == 1
    assert "1 check(s) failed: .dockerignore" in capsys.readouterr().out


@pytest.mark.parametrize("n, text", [(0, "0 bytes"), (999, "999 bytes"), (3000, "3.00 kB"), (25 * 10**9, "25.00 GB"),
                                     (1_500_000, "1.50 MB")])
def test_sizes_are_shown_in_readable_units(n, text):
    from submission.grading.check import human_bytes

    assert human_bytes(n) == text


def test_stray_run_output_in_the_build_context_is_a_warning(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "compare.html").write_text("<html></html>")  # excluded by the kit's .dockerignore
    (repo / "old-run").mkdir()
    (repo / "old-run" / "results.json").write_text("{}")
    (repo / "old-run" / "report.html").write_text("<html></html>")
    (repo / "templates").mkdir()
    (repo / "templates" / "report.html").write_text("{{ report }}")  # a template, as the kit's own: not a run's
    (repo / "runs" / "r1").mkdir(parents=True)
    (repo / "runs" / "r1" / "predictions.jsonl").write_text("")  # runs/ is excluded: not in the context
    status, detail = statuses(repo)["run output"]
    assert status == "warn" and "old-run/report.html, old-run/results.json" in detail
    assert "compare.html" not in detail and "runs/r1" not in detail and "templates" not in detail


def test_the_kit_as_shipped_has_no_run_output_in_its_build_context(tmp_path):
    """Its report templates (submission/reports/templates/report.html, compare.html) are not run output."""
    import subprocess

    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True)
    repo = tmp_path / "kit"
    for name in filter(None, out.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    assert (repo / "submission" / "reports" / "templates" / "report.html").is_file()
    assert statuses(repo)["run output"] == ("ok", "no run output or training checkpoint in the build context")


def test_a_model_that_writes_into_the_repository_at_start_up_gets_a_warning(tmp_path):
    source = ("from pathlib import Path\nfrom models.dummy_model import DummyModel\n\nclass UserModel(DummyModel):\n"
              "    def __init__(self):\n        super().__init__()\n"
              "        Path(__file__).with_name('converted.bin').write_bytes(b'weights')\n")
    status, detail = statuses(make_repo(tmp_path, source), ON_HOST)["smoke run"]
    assert status == "warn" and "the model wrote into the repository (models/converted.bin)" in detail
    assert "read-only in the grader's container" in detail


def test_settings_the_user_model_would_refuse_fail_check_and_skip_the_smoke_run(tmp_path):
    repo = make_repo(tmp_path, "from models.transformers_model import TransformersModel as UserModel\n")
    (repo / "models" / "baseline.yaml").write_text("weights: smollm2\nlora_adapter: ../adapter/try1\n")
    (repo / "adapters" / "try1").mkdir(parents=True)
    found = statuses(repo, ON_HOST)
    status, detail = found["user_config"]
    assert status == "fail" and "whose settings are refused" in detail
    assert "baseline.yaml, line 2: lora_adapter: ../adapter/try1 does not exist" in detail
    assert "did you mean '../adapters/try1'?" in detail
    assert found["smoke run"] == ("skip", "UserModel's settings are refused")
