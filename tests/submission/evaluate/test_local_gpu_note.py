"""The first lines of a local run (submission/evaluate/local.py): what the profile's GPUs mean on this machine,
and on a machine with GPUs, its driver against what the installed torch needs."""

from submission import cuda
from submission.evaluate import local


def fake_host(monkeypatch, tmp_path, gpus: int, driver: str) -> None:
    version = tmp_path / "nvidia-version"
    version.write_text(f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {driver}  Tue Mar  5 22:23:41 UTC 2024\n")
    monkeypatch.setattr(cuda, "DRIVER_VERSION_FILE", str(version))
    monkeypatch.setattr(cuda, "torch_build", lambda: cuda.TorchBuild("2.13.0", "13.0"))
    monkeypatch.setattr(local, "host_gpu_count", lambda: gpus)
    monkeypatch.setattr(local, "load_nvml", lambda: None)


def test_a_gpu_run_names_the_driver_and_what_torch_needs(monkeypatch, tmp_path):
    fake_host(monkeypatch, tmp_path, 1, "550.54.15")
    note = local.gpu_note(4)
    assert note.startswith(" (this machine has 1: the model sees 1, each capped as a T4; NVIDIA driver 550.54.15; "
                           "torch 2.13.0 is built for CUDA 13.0 and needs an R580 or newer driver: torch will not see")
    fake_host(monkeypatch, tmp_path, 4, "580.95.05")
    assert local.gpu_note(4) == (" (NVIDIA driver 580.95.05; torch 2.13.0 is built for CUDA 13.0 and needs an R580 "
                                 "or newer driver: ok)")


def test_without_gpus_here_or_in_the_profile(monkeypatch, tmp_path):
    fake_host(monkeypatch, tmp_path, 0, "580.95.05")
    assert local.gpu_note(4).startswith(" (this machine has none: the model runs on the CPU")
    assert local.gpu_note(0) == "" and local.gpu_note(None) == ""
