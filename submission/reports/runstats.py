"""What results.json says about a harness run: verdict, profile, limits, timings, memory, projection.

Timings come from predictions.jsonl (every batch's ``batch``, ``batch_size``, ``latency_s``), so a
resumed run's statistics cover its earlier sessions too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..harness.outcome import RunOutcome
from ..harness.profiles import Limits, Profile
from ..scoring.data import Question

SLOWEST = 5


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def batch_table(records: Sequence[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """batch index -> {"rows", "latency_s"} from prediction records that carry batch and latency."""
    batches: dict[int, dict[str, Any]] = {}
    for record in records:
        index, latency = record.get("batch"), record.get("latency_s")
        if not isinstance(index, int) or not isinstance(latency, (int, float)):
            continue
        entry = batches.setdefault(index, {"rows": [], "latency_s": float(latency)})
        entry["rows"].append(record["row"])
    return batches


def latency_summary(batches: dict[int, dict[str, Any]]) -> dict[str, Any]:
    per_batch = [b["latency_s"] for b in batches.values()]
    per_question = [b["latency_s"] / len(b["rows"]) for b in batches.values()]
    summary: dict[str, Any] = {"batches": len(per_batch)}
    for name, values in (("batch_s", per_batch), ("per_question_s", per_question)):
        summary[name] = {f"p{q}": _round(percentile(values, q)) for q in (50, 90, 99)}
        summary[name]["max"] = _round(max(values, default=None))
    return summary


def slowest_batches(batches: dict[int, dict[str, Any]], by_row: dict[int, Question], limits: Limits) -> list[dict]:
    """The batches that came closest to their deadline (highest seconds per prompt), slowest first."""
    ranked = sorted(batches.items(), key=lambda item: item[1]["latency_s"] / len(item[1]["rows"]), reverse=True)
    slowest = []
    for index, batch in ranked[:SLOWEST]:
        limit = limits.batch_limit_s(len(batch["rows"]))
        first = by_row.get(batch["rows"][0])
        slowest.append({
            "batch": index, "prompts": len(batch["rows"]), "latency_s": _round(batch["latency_s"]),
            "limit_s": limit, "share_of_limit": _round(batch["latency_s"] / limit) if limit else None,
            "is_multiple_choice": first.is_multiple_choice if first else None, "rows": batch["rows"][:16],
        })
    return slowest


def track_times(batches: dict[int, dict[str, Any]], by_row: dict[int, Question], profile: Profile | None,
                scale: float) -> dict[str, dict[str, Any]]:
    """Prediction time per track: each batch's latency shared equally among its prompts' tracks."""
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for batch in batches.values():
        share = batch["latency_s"] / len(batch["rows"])
        for row in batch["rows"]:
            question = by_row.get(row)
            track = question.track if question is not None and question.track else "unknown"
            seconds[track] += share
            counts[track] += 1
    times = {}
    for track in sorted(seconds):
        budget = profile.track_minutes.get(track, None) if profile else None
        times[track] = {"questions": counts[track], "predict_s": _round(seconds[track]),
                        "budget_s": budget * 60 * scale if budget else None}
    return times


def run_meta(outcome: RunOutcome, profile: Profile | None, records: Sequence[dict[str, Any]],
             questions: Sequence[Question]) -> dict[str, Any]:
    """The harness part of results.json."""
    by_row = {q.row: q for q in questions}
    batches = batch_table(records)
    limits = outcome.limits
    return {
        "verdict": {"status": outcome.verdict.status, "detail": outcome.verdict.detail},
        "partial": not outcome.verdict.ok, "n_answered": outcome.n_answered, "answers_cut": outcome.answers_cut,
        "profile": asdict(profile) if profile else None,
        "limits": {**asdict(limits), "enforced": limits.enforced},
        "budget": budget_meta(outcome),
        "timings": {
            "init_s": _round(outcome.init_s), "startup_s": _round(outcome.startup_s),
            "session_wall_s": _round(outcome.wall_s),
            "elapsed_s": _round(outcome.elapsed_s), "latency": latency_summary(batches),
            "slowest_batches": slowest_batches(batches, by_row, limits),
            "tracks": track_times(batches, by_row, profile, limits.time_scale),
        },
        "peak_memory": {
            "ram_bytes": outcome.peak_rss_bytes, "ram_limit_bytes": limits.ram_bytes,
            "gpus": [asdict(g) for g in outcome.gpus],
        },
        "resumed": {"rows": outcome.n_resumed, "prior_elapsed_s": _round(outcome.prior_elapsed_s)}
        if outcome.n_resumed else None,
        "harness_notes": list(outcome.notes),
        "model_info": outcome.model_info,
        "model_traceback": outcome.traceback,
    }


def budget_meta(outcome: RunOutcome) -> dict[str, Any]:
    budget, projected = outcome.limits.budget_s, outcome.projected_s
    return {
        "track": outcome.limits.budget_track, "budget_s": budget, "elapsed_s": _round(outcome.elapsed_s),
        "projected_total_s": _round(projected),
        "within_budget": None if budget is None or projected is None else projected <= budget,
    }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)
