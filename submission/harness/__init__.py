"""The harness: runs a model the grader's way, under a profile's limits, and keeps every answer.

Owns:
    profiles.py, profiles.yaml  the grader's machines and limits (``Profile``), what one run enforces (``Limits``)
    limits.py      enforcing RAM and CPUs in the model's process; ``ResourceMonitor`` polls RAM and GPU memory
    gpu.py         the GPUs a model sees and the card it must behave as: NVML probe, devices, MIG, environment
    gpu_host.py    what the host must provide for the GPU limits to hold (NVML, the process tree), the driver
    gpu_memory.py  the model's memory on each GPU through NVML (per process, or labelled device level)
    gpu_child.py   GPU memory in the model's process: torch's cap refitted after the build, GPU memory errors
    gpu_emulation.py  the profile's card in the model's process: torch reports a T4, bfloat16 weights refused
    batches.py     grader-order batching and the checks on what ``batch_predict`` returns
    runner.py      ``run_model``: the entry point (local_evaluation.py, fine-tuning's evaluation, ``check``)
    judge.py       the judge, outside the model's process: it drives the model's loop, times every batch and
                   the budget with its own clocks, checks every message, keeps the answers, names the verdict;
                   one implementation for the local pipes and the container's attach socket (``Transport``)
    protocol.py    the channel's messages (JSON lines) and the checks on everything the model's side sends
    failures.py    a failure the model's loop names (MemoryError, GPU memory, disk ...) as the judge's verdict
    session.py     a local run: the model's process tree, the judge's pipe transport, RAM/GPU/disk watches
    process.py     the model's process tree as the supervisor holds it: start, channels, exit, kill; the
                   supervisor a subreaper too, so nothing outlives a killed reaper
    reaper.py      the subreaper between the supervisor and the model: nothing the model starts escapes
    child.py       the model's loop (``python -m submission.harness.child``; ``--stdio`` in a container):
                   builds the model, answers what the judge asks, nothing more
    stdio.py       the container's loop without the container: a child process judged over its stdin/stdout
    output_dir.py  one run at a time in an output folder (a lock), fresh folder names
    disk.py        the model's scratch folder (TMPDIR), RLIMIT_FSIZE, the output folder's cap
    caches.py      compile and model caches (Triton, torch.compile, HF, vLLM, CUDA) in the scratch space
    outcome.py     ``ModelSpec``, ``HarnessOptions``, ``Progress``, ``RunOutcome`` and what it measured
    verdict.py     how a run ended: ``Verdict`` and its fixed set of statuses (``protocol``, ``interrupted`` too)
    predictions.py predictions.jsonl: written batch by batch, read back, cut back for ``--resume``

May import: ``submission.errors``, ``submission.environment``, ``submission.loading`` and scoring's data
model (``scoring.data``); never the scorers, grading or reports. Nothing here imports torch: the model
does, in its own process.

Public names: run_model, run_judged, Judge, ModelSpec, HarnessOptions, Progress, RunOutcome, Verdict, Profile, Limits,
load_profiles, get_profile, limits_for, budget_track_for, PredictionWriter, read_records, outputs_for.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "runner": ("run_model", "run_judged"),
    "judge": ("Judge",),
    "outcome": ("ModelSpec", "HarnessOptions", "Progress", "RunOutcome"),
    "verdict": ("Verdict",),
    "profiles": ("Profile", "Limits", "load_profiles", "get_profile", "limits_for", "budget_track_for"),
    "predictions": ("PredictionWriter", "read_records", "outputs_for"),
})
