"""Building a submission's image and running it the grader's way, with the ``docker`` SDK.

``build_image`` builds ``docker/Dockerfile`` of a repository (its ``.dockerignore`` respected) and says
which steps came from the cache. ``run_container`` runs an image on questions in test format under a
profile's limits, the grader's way:

* no network (``network_mode="none"``), no Docker socket, no capability, no new privileges, a non-root
  user (uid 1001), only the environment variables set here;
* the inputs folder (questions in test format and the job) mounted read-only, the output folder
  writable; the answers are never mounted;
* the profile's CPUs, RAM (no swap) and GPUs (device requests for the driver's compute and utility
  libraries, so a base image other than CUDA's gets them too; none at all, ``NVIDIA_VISIBLE_DEVICES=void``,
  for a profile without GPUs, even where the daemon's default runtime is nvidia), a large ``/dev/shm``;
  given device ids (``grade --gpus 0,1``, what a worker hands each grade) request exactly those GPUs;
* labels: ``shopbench.role`` and the caller's (``grade --label``: a worker labels its grades' containers
  with its name, so that its next start on the host removes what a killed worker left running);
* the track's time budget enforced from outside as well: the container is killed at the budget plus a
  short grace, whatever happens inside it.

The kit's own ``submission/`` package and entry point are mounted read-only over the image's copies, so
the harness that enforces the limits inside is the runner's, not whatever the image holds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..environment import KIT_ROOT, PROFILE, SEED
from ..errors import ConfigError
from ..harness.caches import container_cache_environment
from ..harness.disk import DiskWatch
from ..harness.gpu import host_gpu_count
from ..harness.predictions import PREDICTIONS_FILE
from ..harness.profiles import Limits
from ..harness.verdict import Verdict
from ..scoring.data import Question
from .container_contract import (
    CONTAINER_HOME,
    ENTRYPOINT,
    INPUT_DIR,
    OUTPUT_DIR,
    REPORT_FILE,
    Job,
    write_inputs,
)

log = logging.getLogger(__name__)

RUN_USER = "1001:1001"  # docker/Dockerfile's user aicrowd: the grader never runs a submission as root
DEFAULT_GRACE_S = 60.0  # the outer deadline: the track budget plus this
NO_LIMIT_SHM_BYTES = 2 * 1024**3  # /dev/shm when no RAM limit applies
PIDS_LIMIT = 32768  # processes and threads in the container: a fork bomb stops here
LOG_TAIL = 40  # lines of the container's log shown when it fails
GPU_CAPABILITIES = [["gpu", "compute", "utility"]]  # CUDA and NVML libraries of the driver, in any base image
NO_DRIVER = "could not select device driver"  # Docker's answer where no NVIDIA runtime is installed
ROLE_LABEL = "shopbench.role"  # on every container the runner starts


class GpuRuntimeMissing(ConfigError):
    """The container needs GPUs but the Docker daemon has no NVIDIA runtime to give them."""


# ---------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resources:
    """What the container is given. ``gpus``: how many to request (0 none, -1 every GPU of the host);
    ``device_ids``: which ones, when the caller chose them (then ``gpus`` is their count)."""

    nano_cpus: int | None
    mem_bytes: int | None
    shm_bytes: int
    gpus: int
    notes: tuple[str, ...] = ()
    device_ids: tuple[str, ...] = ()


def chosen_gpus(limits: Limits, device_ids: Sequence[str], host_gpus: int) -> tuple[tuple[str, ...], list[str]]:
    """The device ids given to the container (checked against the profile and the host), and notes."""
    ids = tuple(device_ids)
    shown = ",".join(ids)
    if limits.gpus == 0:
        raise ConfigError(f"--gpus {shown}: profile {limits.profile} has no GPUs; leave --gpus out")
    if limits.gpus is not None and len(ids) != limits.gpus:
        raise ConfigError(f"--gpus {shown} names {len(ids)} device(s) but profile {limits.profile} has "
                          f"{limits.gpus}; name exactly {limits.gpus}")
    if host_gpus == 0:
        return (), [f"no NVIDIA GPU on this host: devices {shown} are not given to the container"]
    absent = [i for i in ids if i.isdigit() and int(i) >= host_gpus]
    if absent:
        raise ConfigError(f"--gpus {shown}: this host has {host_gpus} GPU(s), numbered 0 to {host_gpus - 1}; "
                          f"no device {absent[0]}")
    return ids, []


def container_resources(limits: Limits, host_cpus: int, host_gpus: int, shm_bytes: int | None = None,
                        device_ids: Sequence[str] | None = None) -> Resources:
    """The profile's CPUs, RAM, shared memory and GPUs, as far as this host can give them; ``device_ids``
    (``grade --gpus``) names the host's GPUs to give instead of a count."""
    notes = []
    nano_cpus = None
    if limits.vcpus is not None:
        cpus = limits.vcpus
        if cpus > host_cpus:
            notes.append(f"the profile's {cpus} CPUs capped at this host's {host_cpus}")
            cpus = host_cpus
        nano_cpus = int(cpus * 1e9)
    mem = limits.ram_bytes
    if shm_bytes is None:
        shm_bytes = mem // 2 if mem is not None else NO_LIMIT_SHM_BYTES
    if device_ids is not None:
        ids, more = chosen_gpus(limits, device_ids, host_gpus)
        return Resources(nano_cpus, mem, shm_bytes, len(ids), tuple(notes + more), ids)
    wanted = -1 if limits.gpus is None else limits.gpus
    if wanted != 0 and host_gpus == 0:
        if wanted > 0:
            notes.append(f"no NVIDIA GPU on this host: the profile's {wanted} GPU(s) are not given to the container")
        gpus = 0
    elif wanted > host_gpus:
        notes.append(f"the profile has {wanted} GPUs but this host has {host_gpus}: the container gets {host_gpus}")
        gpus = host_gpus
    else:
        gpus = wanted
    return Resources(nano_cpus, mem, shm_bytes, gpus, tuple(notes))


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class ContainerSettings:
    image: str
    model: str | None = None  # 'module:Class' inside the image; None: models.user_config:UserModel
    seed: int = 0
    grace_s: float = DEFAULT_GRACE_S
    shm_bytes: int | None = None  # None: half the profile's RAM
    mount_kit: bool = True  # mount this kit's submission/ and entry point over the image's copies
    gpu_ids: tuple[str, ...] | None = None  # the host's GPUs to give (grade --gpus); None: the profile's count
    labels: tuple[tuple[str, str], ...] = ()  # more container labels (grade --label KEY=VALUE)


@dataclass(frozen=True)
class ContainerRun:
    """How the container ended, as the host saw it, and what it was given (the security audit)."""

    image: str
    image_id: str
    exit_code: int | None
    oom_killed: bool
    killed_at_deadline: bool
    deadline_s: float | None
    wall_s: float
    report: dict[str, Any] | None  # run_report.json as written inside (untrusted), or None
    report_error: str | None  # why run_report.json could not be read
    output_dir: Path  # predictions.jsonl, run_report.json, container.log
    resources: Resources
    audit: dict[str, Any]
    log_tail: str
    disk: Verdict | None = None  # the output folder over its cap: the runner stopped the container

    @property
    def predictions_path(self) -> Path:
        return self.output_dir / PREDICTIONS_FILE


def container_environment(limits: Limits, seed: int) -> dict[str, str]:
    """Every variable the container gets beyond its image's ENV: nothing from the host."""
    env = {
        SEED: str(seed),
        PROFILE: limits.profile,
        "HOME": CONTAINER_HOME,
        "HF_HUB_OFFLINE": "1",  # no network: fail fast instead of retrying downloads
        "TRANSFORMERS_OFFLINE": "1",
        **container_cache_environment(CONTAINER_HOME),  # Triton, torch.compile, HF, vLLM: the writable ~/.cache
    }
    if limits.gpus == 0:  # the nvidia runtime, if it is the daemon's default, then exposes no GPU
        env["NVIDIA_VISIBLE_DEVICES"] = "void"
    return env


def _volumes(inputs: Path, outputs: Path, mount_kit: bool) -> dict[str, dict[str, str]]:
    volumes = {str(inputs): {"bind": INPUT_DIR, "mode": "ro"}, str(outputs): {"bind": OUTPUT_DIR, "mode": "rw"}}
    if mount_kit:
        volumes[str(KIT_ROOT / "submission")] = {"bind": f"{CONTAINER_HOME}/submission", "mode": "ro"}
        entrypoint = KIT_ROOT / "docker" / "entrypoint.py"
        if entrypoint.is_file():  # absent when the kit is installed as a package: the image's copy runs
            volumes[str(entrypoint)] = {"bind": ENTRYPOINT, "mode": "ro"}
    return volumes


def scratch_mounts(limits: Limits) -> dict[str, str]:
    """The only writable places of the read-only root: /tmp and HOME's cache folder, each a tmpfs of the
    profile's scratch size (tmpfs lives in memory: it counts against the container's RAM limit too).
    ``exec``: Docker mounts a tmpfs noexec unless told otherwise, and every JIT compiler loads what it
    compiled from its cache (Triton's launcher, torch.compile's C++ kernels): under noexec that fails with
    "failed to map segment from shared object". The model runs its own code anyway; nosuid stays."""
    size = f",size={limits.disk_bytes}" if limits.disk_bytes is not None else ""
    options = f"rw,exec,nosuid,nodev,mode=1777{size}"
    return {"/tmp": options, f"{CONTAINER_HOME}/.cache": options}


def create_container(client, settings: ContainerSettings, limits: Limits, resources: Resources, inputs: Path,
                     outputs: Path):
    import docker

    requests = []
    if resources.device_ids:
        requests = [docker.types.DeviceRequest(device_ids=list(resources.device_ids), capabilities=GPU_CAPABILITIES)]
    elif resources.gpus:
        requests = [docker.types.DeviceRequest(count=resources.gpus, capabilities=GPU_CAPABILITIES)]
    return client.containers.create(
        settings.image, entrypoint=["python3", ENTRYPOINT], command=["--input", INPUT_DIR, "--output", OUTPUT_DIR],
        user=RUN_USER, working_dir=CONTAINER_HOME, environment=container_environment(limits, settings.seed),
        network_mode="none", volumes=_volumes(inputs, outputs, settings.mount_kit),
        read_only=True, tmpfs=scratch_mounts(limits),
        mem_limit=resources.mem_bytes, memswap_limit=resources.mem_bytes, shm_size=resources.shm_bytes,
        nano_cpus=resources.nano_cpus, device_requests=requests, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], pids_limit=PIDS_LIMIT, init=True, privileged=False,
        labels={**dict(settings.labels), ROLE_LABEL: "submission-run"}, detach=True,
    )


def audit(container) -> dict[str, Any]:
    """What the container was actually given, from the daemon's own record of it."""
    host, config = container.attrs["HostConfig"], container.attrs["Config"]
    return {
        "user": config.get("User"), "network_mode": host.get("NetworkMode"),
        "mounts": [{"source": m.get("Source"), "destination": m.get("Destination"), "rw": m.get("RW")}
                   for m in container.attrs.get("Mounts", [])],
        "memory_bytes": host.get("Memory") or None, "memory_swap_bytes": host.get("MemorySwap") or None,
        "nano_cpus": host.get("NanoCpus") or None, "shm_bytes": host.get("ShmSize"),
        "gpus": [r.get("Count") for r in host.get("DeviceRequests") or []],
        "gpu_device_ids": [r.get("DeviceIDs") for r in host.get("DeviceRequests") or []],
        "gpu_capabilities": [r.get("Capabilities") for r in host.get("DeviceRequests") or []],
        "cap_drop": host.get("CapDrop"), "security_opt": host.get("SecurityOpt"), "privileged": host.get("Privileged"),
        "pids_limit": host.get("PidsLimit"), "env_names": sorted(e.split("=", 1)[0] for e in config.get("Env") or []),
        "read_only_root": host.get("ReadonlyRootfs"), "tmpfs": host.get("Tmpfs"),
    }


def start_container(container, resources: Resources) -> None:
    """Start it; a daemon without the NVIDIA runtime gets an error naming what to install."""
    import docker

    try:
        container.start()
    except docker.errors.APIError as exc:
        if resources.gpus and NO_DRIVER in str(exc):
            raise GpuRuntimeMissing(
                f"the container needs {'all' if resources.gpus < 0 else resources.gpus} GPU(s), but this Docker "
                f"daemon has no NVIDIA runtime (Docker said: {exc.explanation or exc}). Install the NVIDIA Container "
                "Toolkit (package nvidia-container-toolkit), run `sudo nvidia-ctk runtime configure --runtime=docker` "
                "and restart dockerd; or run without GPUs with --profile cpu") from None
        raise


def _writable_folder(path: Path) -> Path:
    """A fresh folder the container's non-root user may write to."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    path.chmod(0o777)
    return path


class _LineCounter:
    """How many complete lines predictions.jsonl holds so far, read incrementally."""

    def __init__(self, path: Path):
        self.path, self.offset, self.lines = path, 0, 0

    def count(self) -> int:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return self.lines
        self.offset += len(data)
        self.lines += data.count(b"\n")
        return self.lines


def _wait(container, deadline_s: float | None, watch: Watch, poll_s: float) -> tuple[bool, Verdict | None, float]:
    """Wait for the container to exit, killing it at the deadline or when the output folder passes its cap;
    (killed at the deadline, the disk verdict, wall seconds)."""
    started = time.monotonic()
    while True:
        container.reload()
        elapsed = time.monotonic() - started
        watch.progress(elapsed)
        if container.status in ("exited", "dead"):
            return False, None, elapsed
        disk = watch.disk.check()
        if disk is not None:
            log.warning("the container passed its output cap: killing it")
            container.kill()
            container.wait(timeout=60)
            return False, disk, time.monotonic() - started
        if deadline_s is not None and elapsed > deadline_s:
            log.warning("the container ran past its deadline (%.0f s): killing it", deadline_s)
            container.kill()
            container.wait(timeout=60)
            return True, None, time.monotonic() - started
        time.sleep(poll_s)


@dataclass
class Watch:
    """What the runner watches while the container runs: answers (for the progress bar), the output folder."""

    counter: _LineCounter
    on_progress: Callable[[int, float], None] | None
    disk: DiskWatch

    def progress(self, elapsed: float) -> None:
        if self.on_progress is not None:
            self.on_progress(self.counter.count(), elapsed)


def _read_report(path: Path) -> tuple[dict | None, str | None]:
    if not path.is_file():
        return None, f"the container wrote no {REPORT_FILE}"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path}: unreadable ({exc})"
    return (report, None) if isinstance(report, dict) else (None, f"{path}: not a JSON object")


def run_container(client, questions: Sequence[Question], output_dir: str | Path, limits: Limits,
                  settings: ContainerSettings, on_progress: Callable[[int, float], None] | None = None,
                  poll_s: float = 0.25) -> ContainerRun:
    """Run ``settings.image`` on ``questions`` (only their prompts and is_multiple_choice leave this process)
    under ``limits``; the container's files land in ``output_dir``. The container is removed afterwards."""
    output_dir = _writable_folder(Path(output_dir).resolve())
    resources = container_resources(limits, os.cpu_count() or 1, host_gpu_count(), settings.shm_bytes,
                                    settings.gpu_ids)
    image = client.images.get(settings.image)
    deadline = None if limits.budget_s is None else limits.budget_s + settings.grace_s
    with tempfile.TemporaryDirectory(prefix="shopbench-inputs-") as tmp:
        inputs = Path(tmp)
        inputs.chmod(0o755)
        write_inputs(inputs, questions, Job(settings.model, settings.seed, limits))
        container = create_container(client, settings, limits, resources, inputs, output_dir)
        try:
            container.reload()
            record = audit(container)
            start_container(container, resources)
            watch = Watch(_LineCounter(output_dir / PREDICTIONS_FILE), on_progress,
                          DiskWatch(None, None, output_dir, limits.output_bytes, every_s=poll_s))
            killed, disk, wall = _wait(container, deadline, watch, poll_s)
            container.reload()
            state = container.attrs["State"]
            logs = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        finally:
            container.remove(force=True)
    watch.disk.remove_output_over_cap()  # the host's disk gets back what the model wrote there past the cap
    (output_dir / "container.log").write_text(logs, encoding="utf-8")
    report, report_error = _read_report(output_dir / REPORT_FILE)
    return ContainerRun(
        image=settings.image, image_id=image.id, exit_code=state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled")),
        killed_at_deadline=killed, deadline_s=deadline, wall_s=wall, report=report, report_error=report_error,
        output_dir=output_dir, resources=resources, audit=record,
        log_tail="\n".join(logs.splitlines()[-LOG_TAIL:]), disk=disk,
    )
