"""The driver and CUDA's view of the cards, read without a context (submission/cuda.py), with a fake
libcuda at the level of ctypes (tests/submission/harness/fake_cuda.py) and fake driver files."""

import sys

import pytest
from kit_paths import TESTS

sys.path.insert(0, str(TESTS / "submission" / "harness"))

from fake_cuda import FakeLibcuda
from fake_nvml import GIB, Device, FakeNvml

from submission import cuda
from submission.cuda import TorchBuild, cuda_totals, driver_status, driver_version, torch_build

MIB = 1024**2
H200 = Device("GPU-0aaa0000-0000-4000-8000-000000000000", total=143_771 * MIB, cuda_total=143_156 * MIB)
TORCH_CU13 = TorchBuild("2.13.0", "13.0")


def test_cuda_totals_are_read_per_card_and_keyed_by_uuid():
    other = Device("GPU-1bbb0000-0000-4000-8000-000000000001", total=80 * GIB, cuda_total=79 * GIB)
    lib = FakeLibcuda([H200, other])
    assert cuda_totals(lib) == {"0aaa0000-0000-4000-8000-000000000000": 143_156 * MIB,
                                "1bbb0000-0000-4000-8000-000000000001": 79 * GIB}
    assert cuda.uuid_key("GPU-0AAA0000-0000-4000-8000-000000000000") == "0aaa0000-0000-4000-8000-000000000000"


def test_no_driver_or_a_failed_init_gives_no_totals():
    assert cuda_totals(FakeLibcuda([H200], init_error=100)) == {}
    assert cuda_totals(object()) == {}  # a library without the symbols


def test_the_driver_version_comes_from_nvml_else_from_the_kernel_modules_file(tmp_path):
    assert driver_version(FakeNvml([H200], driver="580.95.05")) == "580.95.05"
    version = tmp_path / "version"
    version.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  "
                       "(dvs-builder@U16-I3-B03-4-3)  Tue Mar  5 22:15:33 UTC 2024\nGCC version:  gcc 12\n")
    assert driver_version(FakeNvml([H200]), str(version)) == "550.54.15"
    assert driver_version(None, str(tmp_path / "absent")) is None


def test_torchs_build_is_read_without_importing_it():
    build = torch_build()
    import torch

    assert build == TorchBuild(torch.__version__, torch.version.cuda)


def test_an_r580_driver_runs_torch_built_for_cuda_13():
    status = driver_status(FakeNvml([H200], driver="580.95.05"), FakeLibcuda([H200], driver_cuda=13000), TORCH_CU13)
    assert status.ok
    assert status.text == ("NVIDIA driver 580.95.05 (supports CUDA 13.0); torch 2.13.0 is built for CUDA 13.0 and "
                           "needs an R580 or newer driver: ok")


def test_an_older_driver_is_named_with_what_torch_needs():
    status = driver_status(FakeNvml([H200], driver="550.54.15"), FakeLibcuda([H200], driver_cuda=12040), TORCH_CU13)
    assert not status.ok
    assert status.text.startswith("NVIDIA driver 550.54.15 (supports CUDA 12.4); torch 2.13.0 is built for CUDA 13.0 "
                                  "and needs an R580 or newer driver: torch will not see the GPU")
    no_lib = driver_status(FakeNvml([H200], driver="550.54.15"), FakeLibcuda([H200]), TORCH_CU13)
    assert not no_lib.ok and "NVIDIA driver 550.54.15; torch 2.13.0" in no_lib.text  # the branch against R580


@pytest.mark.parametrize("torch_build_, ok, text", [
    (TorchBuild("2.13.0+cpu", None), False, "but torch 2.13.0+cpu is a CPU build: it cannot use the GPU"),
    (TorchBuild(None, None), True, "torch is not installed"),
    (TorchBuild("2.5.1+cu121", "12.1"), True, "needs an R525 or newer driver: ok"),
])
def test_cpu_builds_and_older_cuda_builds(torch_build_, ok, text):
    status = driver_status(FakeNvml([H200], driver="550.54.15"), FakeLibcuda([H200], driver_cuda=12040), torch_build_)
    assert status.ok is ok and text in status.text


def test_without_a_driver_nothing_is_wrong(tmp_path, monkeypatch):
    monkeypatch.setattr(cuda, "DRIVER_VERSION_FILE", str(tmp_path / "absent"))
    status = driver_status(None, FakeLibcuda([]), TORCH_CU13)
    assert status.ok
    assert status.text == "no NVIDIA driver here; torch 2.13.0 is built for CUDA 13.0 and needs an R580 or newer driver"
