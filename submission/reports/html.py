"""report.html and scores.png: what a run scored, how sure that is, where it loses points, how long it took.

``report.html`` is one self-contained page rendered from ``templates/report.html`` (inline CSS, the
chart as a base64 PNG, no scripts, no URLs): the all-around and track scores with bootstrap intervals,
a bar chart per track, the task table, the slowest batches and the time budget, and the worst-scoring
examples of every task. ``scores.png`` is the same chart as a file. Both are built either right after
scoring (``write_reports``) or later from a run folder alone (``write_reports_from_run_dir``), so the
folders of local_evaluation.py, the Docker runner and the grader all get the same report
(``python -m submission report RUN_DIR``: ``submission/cli/report.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..fileio import replace_file
from ..scoring.data import TRACKS, Question, short_track
from ..scoring.scorer import RunResult
from .charts import ci_text, score_chart
from .intervals import RESAMPLES, Intervals, bootstrap
from .pages import png_base64, render
from .run_view import RunView, load_run_dir, view_from_result

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
CHART_FILE = "scores.png"
WORST_PER_TASK = 3
SLOWEST = 5
TEXT_CHARS = 600  # of a model's output in the worst-examples table


# --- writing ----------------------------------------------------------------------------------------


def write_reports(out_dir: Path, questions: Sequence[Question], result: RunResult, results: dict[str, Any],
                  seed: int, resamples: int = RESAMPLES) -> dict[str, Any]:
    """Write report.html and scores.png into ``out_dir``; return the intervals for results.json.

    Call it after predictions.jsonl is written (it reads outputs and latencies from there) and put the
    returned dict into results.json as ``intervals``; ``table.format_table(result, intervals)`` prints it.
    """
    view = view_from_result(Path(out_dir), questions, result, results)
    return _write(view, Path(out_dir), seed, resamples)


def write_reports_from_run_dir(run_dir: str | Path, data_file: str | Path | None = None, seed: int | None = None,
                               resamples: int = RESAMPLES) -> dict[str, Any]:
    """Write report.html and scores.png for an existing run folder; return the intervals dict.

    The seed defaults to the run's own (results.json ``seed``), so the intervals match the run's.
    """
    view = load_run_dir(run_dir, data_file)
    seed = view.results.get("seed", 0) if seed is None else seed
    return _write(view, Path(run_dir), int(seed or 0), resamples)


def _write(view: RunView, out_dir: Path, seed: int, resamples: int) -> dict[str, Any]:
    intervals = bootstrap(view.tasks, seed=seed, resamples=resamples)
    chart = score_chart(view, intervals)
    replace_file(out_dir / CHART_FILE, chart)
    replace_file(out_dir / REPORT_FILE, render_report(view, intervals, chart))
    log.info("wrote %s and %s", out_dir / REPORT_FILE, out_dir / CHART_FILE)
    return intervals.to_dict()


# --- what the page shows ----------------------------------------------------------------------------


def render_report(view: RunView, intervals: Intervals, chart_png: bytes) -> str:
    level = f"{intervals.confidence:.0%}"
    return render("report.html", title=f"ShopBench report: {view.name}", name=view.name, facts=_facts(view),
                  verdict=_verdict(view.results), notes=view.notes, cards=_cards(view, intervals, level),
                  level=level, intervals=intervals, chart_png=png_base64(chart_png),
                  tasks=_task_rows(view, intervals), time=_time(view), worst_per_task=WORST_PER_TASK,
                  worst=_worst(view), text_chars=TEXT_CHARS)


def _facts(view: RunView) -> list[str]:
    r = view.results
    facts = [f"model {r.get('model', 'unknown')}", f"data {r.get('data_file', 'unknown')}",
             f"{len(view.records):,} questions scored", f"seed {r.get('seed', 'n/a')}",
             f"kit {r.get('kit_version', '?')}", f"git {r.get('git_revision') or 'unknown'}"]
    if isinstance(r.get("profile"), dict):
        facts.append(f"profile {r['profile'].get('name', '?')}")
    return facts


def _verdict(results: dict[str, Any]) -> dict[str, Any] | None:
    verdict = results.get("verdict")
    if not isinstance(verdict, dict):
        return None
    return {"status": verdict.get("status"), "detail": verdict.get("detail", ""),
            "answered": results.get("n_answered", "?"), "total": results.get("n_questions", "?")}


def _cards(view: RunView, intervals: Intervals, level: str) -> list[dict[str, Any]]:
    r = view.results
    missing = f" (over {len(r['tracks'])} of 4 tracks)" if r.get("missing_tracks") else ""
    cards = [{"label": f"all-around score{missing}", "value": f"{r['all_around']:.4f}", "id": "all-around",
              "detail": f"{level} interval {ci_text(intervals.all_around)}", "main": True}]
    for track in TRACKS:
        if track in intervals.tracks:
            cards.append({"label": short_track(track), "value": f"{r['tracks'][track]:.4f}", "main": False,
                          "detail": f"{level} interval {ci_text(intervals.tracks[track])}",
                          "id": f"track-{short_track(track)}"})
    cards.append({"label": "task mean", "value": f"{r['task_mean']:.4f}", "id": "task-mean", "main": False,
                  "detail": f"{level} interval {ci_text(intervals.task_mean)}"})
    return cards


def points_lost(results: dict[str, Any]) -> dict[str, float]:
    """How much each task costs the all-around score: (1 - score) / (tasks in its track x tracks).

    The values add up to 1 - all-around, so the largest ones are where the model loses most.
    """
    tasks = results["tasks"]
    per_track: dict[str, int] = {}
    for task in tasks.values():
        per_track[task["track"]] = per_track.get(task["track"], 0) + 1
    return {name: (1 - t["score"]) / (per_track[t["track"]] * len(per_track)) for name, t in tasks.items()}


def _task_rows(view: RunView, intervals: Intervals) -> list[dict[str, Any]]:
    lost = points_lost(view.results)
    rows = []
    for name, task in view.results["tasks"].items():
        if name not in intervals.tasks:
            continue
        example = task.get("failure_example") or {}
        rows.append({"name": name, "track": short_track(task["track"]), "metric": task["metric"], "n": task["n"],
                     "score": task["score"], "interval": intervals.tasks[name], "lost": lost[name],
                     "failures": task.get("parse_failures", 0), "example_row": example.get("row"),
                     "example_output": example.get("output", "")[:80]})
    return rows


# --- time -------------------------------------------------------------------------------------------


def batches_from_records(records: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """batch -> {"rows", "latency_s", "tasks"} from prediction records that carry batch and latency_s."""
    batches: dict[int, dict[str, Any]] = {}
    for row, record in sorted(records.items()):
        index, latency = record.get("batch"), record.get("latency_s")
        if not isinstance(index, int) or not isinstance(latency, (int, float)):
            continue
        entry = batches.setdefault(index, {"rows": [], "latency_s": float(latency), "tasks": []})
        entry["rows"].append(row)
        if record.get("task_name") not in entry["tasks"]:
            entry["tasks"].append(record.get("task_name"))
    return batches


def slowest_batches(view: RunView, batches: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """The harness's slowest batches when results.json has them, else the slowest by seconds per prompt."""
    recorded = (view.results.get("timings") or {}).get("slowest_batches")
    if isinstance(recorded, list) and recorded:
        return [{**b, "tasks": batches.get(b.get("batch"), {}).get("tasks", [])} for b in recorded]
    ranked = sorted(batches.items(), key=lambda item: item[1]["latency_s"] / len(item[1]["rows"]), reverse=True)
    return [{"batch": index, "prompts": len(b["rows"]), "latency_s": b["latency_s"], "limit_s": None,
             "share_of_limit": None, "tasks": b["tasks"]} for index, b in ranked[:SLOWEST]]


def _time(view: RunView) -> dict[str, Any]:
    timings = view.results.get("timings") or {}
    batches = batches_from_records(view.records)
    latency = timings.get("latency")
    budget = view.results.get("budget")
    tracks = timings.get("tracks")
    return {
        "total": sum(b["latency_s"] for b in batches.values()), "n_batches": len(batches),
        "budget": {"track": short_track(str(budget.get("track") or "?")), "used": budget.get("elapsed_s") or 0.0,
                   "limit": budget["budget_s"], "projected": budget.get("projected_total_s"),
                   "within": budget.get("within_budget")}
        if isinstance(budget, dict) and budget.get("budget_s") else None,
        "latency": {"batch": latency["batch_s"], "question": latency.get("per_question_s", {})}
        if isinstance(latency, dict) and isinstance(latency.get("batch_s"), dict) else None,
        "slowest": [{"tasks": [], "latency_s": None, "prompts": None, "limit_s": None, "share_of_limit": None,
                     **s} for s in slowest_batches(view, batches)],
        "tracks": [{"track": short_track(track), "questions": v.get("questions", ""), "used": v.get("predict_s"),
                    "budget": v.get("budget_s")} for track, v in tracks.items() if isinstance(v, dict)]
        if isinstance(tracks, dict) else [],
    }


# --- worst examples ---------------------------------------------------------------------------------


def worst_records(view: RunView, task_name: str, k: int = WORST_PER_TASK) -> list[dict[str, Any]]:
    """The task's ``k`` lowest-scoring predictions, lowest first (ties in row order)."""
    return sorted(view.task_records(task_name), key=lambda r: (r["score"], r["row"]))[:k]


def _worst(view: RunView) -> list[dict[str, Any]]:
    lost = points_lost(view.results)
    sections = []
    for name in sorted(view.results["tasks"], key=lambda n: -lost[n]):
        task = view.results["tasks"][name]
        rows = [{"row": r["row"], "score": r["score"], "failed": bool(r.get("parse_failed")),
                 "question": view.questions.get(r["row"]), "output": str(r.get("output", "")),
                 "parsed": r.get("parsed")} for r in worst_records(view, name)]
        if rows:
            summary = (f"{name} · {short_track(task['track'])} · {task['metric']} · score {task['score']:.4f} · "
                       f"n {task['n']} · loses {lost[name]:.4f} all-around")
            sections.append({"summary": summary, "rows": rows})
    return sections
