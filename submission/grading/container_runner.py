"""Running a submission's image the grader's way, with the ``docker`` SDK: this process is the judge.

``run_container`` runs an image on questions under a profile's limits:

* the container runs only the kit's model loop (``container_contract.COMMAND``); this process drives it over
  the container's stdin and stdout (the Docker attach socket, ``container_channel.py``) with the same judge
  as a local run (``harness.judge``): it sends each batch's prompts, times every batch and the budget with
  its own clocks, checks every message, and writes predictions.jsonl and the log itself into the run folder,
  a host-only folder the container never sees. Nothing written inside the container is ever read;
* no network (``network_mode="none"``), no Docker socket, no capability, no new privileges, a non-root
  user (uid 1001), only the environment variables set here, no mount but the kit's own code (read-only);
  a read-only root whose only writable places are tmpfs (``/tmp``, ``~/.cache``, ``/shopbench/output``);
* the profile's CPUs, RAM (no swap) and GPUs (device requests for the driver's compute and utility
  libraries, so a base image other than CUDA's gets them too; none at all, ``NVIDIA_VISIBLE_DEVICES=void``,
  for a profile without GPUs, even where the daemon's default runtime is nvidia), a large ``/dev/shm``;
  given device ids (``grade --gpus 0,1``, what a worker hands each grade) request exactly those GPUs; the
  GPU memory of the container's processes is measured on the host (NVML, the container's cgroup);
* labels: ``shopbench.role``, ``shopbench.judge`` (this host and process) and the caller's (``grade
  --label``: a worker labels its grades' containers with its name, so that its next start on the host
  removes what a killed worker left running);
* the container is stopped and removed on every ending: a verdict, an error of this process, or SIGTERM,
  SIGINT or SIGHUP to it (``container_channel.Interrupt``: the verdict ``interrupted``).

The kit's own ``submission/`` package and entry point are mounted read-only over the image's copies, so
the loop that answers is the grader's version of the protocol, not whatever the image holds.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..environment import KIT_ROOT, PROFILE, SEED
from ..errors import ConfigError
from ..harness import verdict as verdicts
from ..harness.batches import grader_order
from ..harness.caches import container_cache_environment
from ..harness.gpu import GpuPlan, host_gpu_count
from ..harness.judge import Judge
from ..harness.outcome import Progress, RunOutcome
from ..harness.predictions import PREDICTIONS_FILE, PredictionWriter
from ..harness.profiles import Limits
from ..scoring.data import Question
from .container_channel import (
    ContainerTransport,
    ContainerWatch,
    Interrupt,
    LogSink,
    exit_status,
    gpu_usage,
    host_plan,
)
from .container_contract import COMMAND, CONTAINER_HOME, ENTRYPOINT, OUTPUT_DIR, RUN_USER, container_job

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 60.0  # the outer deadline: the track budget plus this
CONTAINER_DIR, LOG_FILE = "container", "container.log"  # in the run folder: the container's log, host-written
DEFAULT_LOG_BYTES = 100 * 1000**2  # the log's cap when the profile has no output_mb
EXIT_WAIT_S = 10.0  # after the last answer, for the loop's close() and exit
KILL_GRACE_S = 3.0  # stopping a container: SIGTERM (the model's close() runs), then SIGKILL after this long
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
    device_ids: tuple[str, ...] = ()  # which GPUs: the caller's (grade --gpus), or the host's UUIDs NVML named


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
    """How the container's run went, as the host (the judge) observed it, and what it was given (the audit)."""

    image: str
    image_id: str
    exit_code: int | None
    oom_killed: bool
    killed_at_deadline: bool
    deadline_s: float | None
    wall_s: float
    outcome: RunOutcome  # the host judge's: the verdict, the batches, the measurements
    records: tuple[dict[str, Any], ...]  # every answer the judge kept, as written to predictions.jsonl
    output_dir: Path  # the run folder (host-only): predictions.jsonl and container/container.log
    resources: Resources
    audit: dict[str, Any]
    log_tail: str
    log_dropped: int = 0  # bytes of log past the cap

    @property
    def predictions_path(self) -> Path:
        return self.output_dir / PREDICTIONS_FILE

    @property
    def log_path(self) -> Path:
        return self.output_dir / CONTAINER_DIR / LOG_FILE


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


def _volumes(mount_kit: bool) -> dict[str, dict[str, str]]:
    """Only the kit's own code, read-only: nothing of the run (no question, no answer, no output folder)."""
    volumes: dict[str, dict[str, str]] = {}
    if mount_kit:
        volumes[str(KIT_ROOT / "submission")] = {"bind": f"{CONTAINER_HOME}/submission", "mode": "ro"}
        entrypoint = KIT_ROOT / "docker" / "entrypoint.py"
        if entrypoint.is_file():  # absent when the kit is installed as a package: the image's copy runs
            volumes[str(entrypoint)] = {"bind": ENTRYPOINT, "mode": "ro"}
    return volumes


def scratch_mounts(limits: Limits) -> dict[str, str]:
    """The only writable places of the read-only root: /tmp and HOME's cache folder, each a tmpfs of the
    profile's scratch size, and the model's own output folder, a tmpfs of ``output_mb`` that the host never
    reads (tmpfs lives in memory: it counts against the container's RAM limit too).
    ``exec``: Docker mounts a tmpfs noexec unless told otherwise, and every JIT compiler loads what it
    compiled from its cache (Triton's launcher, torch.compile's C++ kernels): under noexec that fails with
    "failed to map segment from shared object". The model runs its own code anyway; nosuid stays."""
    size = f",size={limits.disk_bytes}" if limits.disk_bytes is not None else ""
    output = f",size={limits.output_bytes}" if limits.output_bytes is not None else size
    return {"/tmp": f"rw,exec,nosuid,nodev,mode=1777{size}",
            f"{CONTAINER_HOME}/.cache": f"rw,exec,nosuid,nodev,mode=1777{size}",
            OUTPUT_DIR: f"rw,exec,nosuid,nodev,mode=1777{output}"}


def writable_places(limits: Limits) -> str:
    """The model's writable places in the container, as a disk verdict names them."""
    def size(n: int | None) -> str:
        return "no size cap" if n is None else f"{n / 1e6:,.1f} MB"

    return (f"/tmp and ~/.cache in the container, tmpfs of {size(limits.disk_bytes)} each, and {OUTPUT_DIR}, a tmpfs "
            f"of {size(limits.output_bytes if limits.output_bytes is not None else limits.disk_bytes)}")


def run_labels() -> dict[str, str]:
    """Labels naming the run and the grader process that judges it (find its container: ``docker ps --filter``)."""
    return {ROLE_LABEL: "submission-run", "shopbench.judge": f"{socket.gethostname()}:{os.getpid()}"}


def create_container(client: DockerClient, settings: ContainerSettings, limits: Limits,
                     resources: Resources) -> Container:
    import docker

    requests = []
    if resources.device_ids:
        requests = [docker.types.DeviceRequest(device_ids=list(resources.device_ids), capabilities=GPU_CAPABILITIES)]
    elif resources.gpus:
        requests = [docker.types.DeviceRequest(count=resources.gpus, capabilities=GPU_CAPABILITIES)]
    return client.containers.create(
        settings.image, entrypoint=COMMAND, command=[], user=RUN_USER, working_dir=CONTAINER_HOME,
        environment=container_environment(limits, settings.seed), network_mode="none",
        volumes=_volumes(settings.mount_kit), read_only=True, tmpfs=scratch_mounts(limits),
        stdin_open=True, tty=False,  # the channel: stdin and stdout, framed apart from stderr
        # the host streams the log under a cap: no copy on the daemon's disk
        log_config=docker.types.LogConfig(type="none"),
        mem_limit=resources.mem_bytes, memswap_limit=resources.mem_bytes, shm_size=resources.shm_bytes,
        nano_cpus=resources.nano_cpus, device_requests=requests, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], pids_limit=PIDS_LIMIT, init=True, privileged=False,
        labels={**dict(settings.labels), **run_labels()}, detach=True,
    )


def audit(container: Container) -> dict[str, Any]:
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


def start_container(container: Container, resources: Resources) -> None:
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


def attach(client: DockerClient, container: Container) -> socket.socket:
    """The container's stdin, stdout and stderr as one socket (before it starts, so nothing is missed)."""
    assert container.id is not None, "the daemon names every container it created"
    sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    return getattr(sock, "_sock", sock)  # the docker SDK wraps the socket in a SocketIO


def log_cap(limits: Limits) -> int:
    return limits.output_bytes if limits.output_bytes is not None else DEFAULT_LOG_BYTES


def run_container(client: DockerClient, questions: Sequence[Question], output_dir: str | Path, limits: Limits,
                  settings: ContainerSettings, on_progress: Callable[[int, float], None] | None = None,
                  interrupt: Interrupt | None = None) -> ContainerRun:
    """Run ``settings.image`` on ``questions`` (only their prompts leave this process, over the channel) under
    ``limits``, judged here; predictions.jsonl and the log land in ``output_dir``. The container is removed."""
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    plan, nvml = host_plan(limits, settings.gpu_ids)
    resources = container_resources(limits, os.cpu_count() or 1, host_gpu_count(), settings.shm_bytes,
                                    settings.gpu_ids)
    if plan.devices and resources.gpus and not resources.device_ids:
        resources = Resources(resources.nano_cpus, resources.mem_bytes, resources.shm_bytes, resources.gpus,
                              resources.notes, tuple(d.uuid for d in plan.devices)[:max(resources.gpus, 0) or None])
    image = client.images.get(settings.image)
    deadline = None if limits.budget_s is None else limits.budget_s + settings.grace_s
    container = create_container(client, settings, limits, resources)
    log = LogSink(output_dir / CONTAINER_DIR / LOG_FILE, log_cap(limits))
    sock = None
    try:
        container.reload()
        record = audit(container)
        sock = attach(client, container)
        start_container(container, resources)
        container.reload()  # its pid, for the host's watch
        watch = ContainerWatch(container, plan, nvml, limits.gpu_memory_bytes, writable_places(limits))
        transport = ContainerTransport(container, sock, log, watch, interrupt, deadline)
        judge, verdict = judge_run(transport, questions, output_dir, limits, settings, plan, on_progress)
        ended = time.monotonic()
        stop_container(container, transport, verdict.ok)
        code, oom = exit_status(container), bool((container.attrs.get("State") or {}).get("OOMKilled"))
        measured = transport.measured()
    finally:
        container.remove(force=True)
        if sock is not None:
            sock.close()
        log.close()
    if oom and verdict.status == "crashed":
        verdict = verdicts.Verdict("memory", f"the container reached its RAM limit and the kernel's out-of-memory "
                                   f"killer stopped the model: {verdict.detail}")
    outcome = judge.outcome(verdict, ended, measured.peak_rss or judge.child_rss,
                            gpu_usage(judge, measured, plan, limits), resources.notes)
    return ContainerRun(settings.image, str(image.id), code, oom, transport.killed_at_deadline, deadline,
                        ended - transport.started, outcome, tuple(judge.records), output_dir, resources, record,
                        log.tail_text(LOG_TAIL), log.dropped)


def judge_run(transport: ContainerTransport, questions: Sequence[Question], output_dir: Path, limits: Limits,
              settings: ContainerSettings, plan: GpuPlan,
              on_progress: Callable[[int, float], None] | None) -> tuple[Judge, verdicts.Verdict]:
    """The judge's run over the container's channel, answers appended to the run folder's predictions.jsonl."""
    def progress(p: Progress) -> None:
        if on_progress is not None:
            on_progress(p.answered, p.elapsed_s)

    job = container_job(settings.model, settings.seed, limits, plan)
    with PredictionWriter(output_dir / PREDICTIONS_FILE, fsync_every_s=1.0) as writer:
        judge = Judge(transport, job, grader_order(questions), limits, writer, progress, exit_wait_s=EXIT_WAIT_S)
        try:
            return judge, judge.run()
        except ConfigError as exc:  # the loop could not find the model class: the submission's configuration
            raise ConfigError(f"{settings.image}: the model's loop in the container refused to run the model: "
                              f"{exc}") from None


def stop_container(container: Container, transport: ContainerTransport, finished: bool) -> None:
    """A finished loop has exited already (the judge waited); anything else gets SIGTERM (the model's close()
    runs), then SIGKILL after ``KILL_GRACE_S``. The attach stream is read meanwhile, to its end (the daemon
    cannot finish a container whose output nobody reads): stdout dropped, stderr to the log under its cap."""
    if not (finished and transport.exited):
        signal_container(container, "SIGTERM")
        if not transport.wait_exit(KILL_GRACE_S, keep=False):
            signal_container(container, "SIGKILL")
    transport.finish()


def signal_container(container: Container, name: str) -> None:
    try:
        container.kill(signal=name)
    except Exception:  # noqa: BLE001 - it ended meanwhile
        pass
