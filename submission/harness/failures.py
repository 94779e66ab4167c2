"""A failure the model's loop names (``protocol.Failure``: the model raised MemoryError, ran out of GPU
memory, filled its scratch space ...) as the verdict the judge gives, with what the transport measured.

The loop's word is taken for what failed (a failure only ever costs the model its run); the figures in the
verdict (the peaks, the caps, where the scratch space is) are the judge's and the transport's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import verdict as verdicts
from .profiles import Limits
from .protocol import Failure


@dataclass(frozen=True)
class Measured:
    """What a transport measured of the model's processes, for the verdicts that name a peak."""

    peak_rss: int = 0
    gpu_peaks: Mapping[int, int] = field(default_factory=dict)  # device index -> NVML peak
    gpu_names: Mapping[int, str] = field(default_factory=dict)
    scratch: str = "its TMPDIR"  # where the model's scratch space is, for the disk verdict


def named_failure(failure: Failure, limits: Limits, measured: Measured, torch_peaks: Mapping[int, int],
                  claimed_rss: int = 0) -> verdicts.Verdict:
    """The verdict of a failure the model's loop reported (any status but config_error)."""
    if failure.status == "memory" and limits.ram_bytes is not None:
        peak = max(claimed_rss, measured.peak_rss)
        return verdicts.Verdict("memory", f"{failure.detail}; the profile's RAM limit is {limits.ram_bytes / 1e9:g} "
                                f"GB (an allocation was refused; peak RSS {verdicts.gib(peak)})")
    if failure.status == "gpu_memory":
        return gpu_failure(failure, limits, measured, torch_peaks)
    if failure.status == "disk" and limits.disk_bytes is not None:
        return verdicts.Verdict("disk", f"{failure.detail}; the scratch cap is {limits.disk_bytes / 1e6:,.1f} MB "
                                f"per file and in all (the model's scratch space: {measured.scratch})")
    return verdicts.Verdict(failure.status, failure.detail)


def gpu_failure(failure: Failure, limits: Limits, measured: Measured,
                torch_peaks: Mapping[int, int]) -> verdicts.Verdict:
    """GPU memory ran out in the model: name the card its error names (else the one with the highest peak),
    the peak and the cap."""
    peaks = {i: max(torch_peaks.get(i, 0), measured.gpu_peaks.get(i, 0)) for i in
             set(torch_peaks) | set(measured.gpu_peaks)}
    cap, device = limits.gpu_memory_bytes, failure.device
    if device is None and peaks:
        device = max(peaks, key=peaks.__getitem__)
    if device is None or cap is None:
        return verdicts.Verdict("gpu_memory", failure.detail)
    name = measured.gpu_names.get(device, f"cuda:{device}")
    if not peaks.get(device):
        return verdicts.Verdict("gpu_memory", f"GPU {device} ({name}) ran out of memory, cap "
                                              f"{verdicts.gib(cap)}; {failure.detail}")
    verdict = verdicts.gpu_memory(device, name, peaks[device], cap)
    return verdicts.Verdict("gpu_memory", f"{verdict.detail}; {failure.detail}")
