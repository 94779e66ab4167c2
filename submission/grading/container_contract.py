"""The contract between the host (the judge) and the container (the model's loop, nothing more).

The container's command is ``docker/entrypoint.py``, a thin launcher of the kit's model loop
(``submission.harness.child --stdio``). Nothing is mounted for the run but the kit's own code (read-only):
the job and every prompt travel over the container's stdin, each answer back over its stdout, in the
messages of ``submission/harness/protocol.py``; the container's stderr is the log. So:

* no question file, no answer file and no report is ever written in the container for the host to read:
  the host writes predictions.jsonl, results.json and the log itself, into a host-only folder, from what it
  received and checked;
* ``OUTPUT_DIR`` is a tmpfs inside the container, the model's own writable folder (a launched server's log,
  say): the host reads nothing from it, and it disappears with the container.

``container_job`` is the job message: the model, the seed and what the model's loop applies in its own
process before the model is imported (RLIMIT_AS, RLIMIT_FSIZE, CPUs, the card's rules, torch's cap). This
module imports only the standard library and the harness, never docker, torch or the scorers.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..card import CONTEXT_RESERVE_BYTES
from ..harness.gpu import DEVICE_ORDER, GpuPlan, card_enforced, card_environment_for, torch_fraction
from ..harness.profiles import Limits

CONTAINER_HOME = "/home/aicrowd"  # where docker/Dockerfile puts the repository
OUTPUT_DIR = "/shopbench/output"  # the model's own writable folder: a tmpfs the host never reads
ENTRYPOINT = f"{CONTAINER_HOME}/docker/entrypoint.py"
COMMAND = ["python3", ENTRYPOINT]
RUN_USER = "1001:1001"  # docker/Dockerfile's user aicrowd: the grader never runs a submission as root
NO_GPU_PLAN = GpuPlan()  # no GPU devices planned: the job sets no GPU fraction


def container_job(model: str | None, seed: int, limits: Limits, plan: GpuPlan = NO_GPU_PLAN) -> dict[str, Any]:
    """The job message for the model's loop in the container (``protocol.py``: "job")."""
    env: dict[str, str | None] = {"CUDA_DEVICE_ORDER": DEVICE_ORDER}
    fraction = None
    if card_enforced(limits, plan):  # the profile's card: its rules, as backends/hardware.py reads them
        env.update(card_environment_for(limits))
        cap = limits.gpu_memory_bytes
        if plan.devices and cap is not None:  # card_enforced: cap is set
            fraction = min(torch_fraction(cap, CONTEXT_RESERVE_BYTES, d.total_bytes) for d in plan.devices)
    return {
        "model": model, "repo": CONTAINER_HOME, "seed": seed, "sys_path": [], "full_traceback": False,
        "fsize_bytes": limits.disk_bytes, "ram_bytes": limits.ram_bytes, "rlimit_as": not plan.devices,
        "vcpus": None,  # the container's CPUs are Docker's (nano_cpus); the loop pins nothing
        "gpu_memory_bytes": limits.gpu_memory_bytes if limits.gpus else None,
        "gpu_uuids": [d.uuid for d in plan.devices], "torch_fraction": fraction, "env": env,
    }


def container_side(audit: dict[str, Any]) -> dict[str, Any]:
    """results.json's ``container``: what the host gave the container (never what the container says)."""
    user = str(audit.get("user") or RUN_USER)
    uid, _, gid = user.partition(":")
    return {"kit_version": __version__, "user": user, "uid": int(uid) if uid.isdigit() else uid,
            "gid": int(gid) if gid.isdigit() else gid, "command": COMMAND, "channel": "stdin/stdout (docker attach)"}
