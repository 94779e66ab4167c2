"""report.html and scores.png: what a run scored, how sure that is, where it loses points, how long it took.

``report.html`` is one self-contained page (inline CSS, the chart as a base64 PNG, no scripts, no
URLs): the all-around and track scores with bootstrap intervals, a bar chart per track, the task
table, the slowest batches and the time budget, and the worst-scoring examples of every task.
``scores.png`` is the same chart as a file. Both are built either right after scoring
(``write_reports``) or later from a run folder alone (``write_reports_from_run_dir``), so the folders
of local_evaluation.py, the Docker runner and the grader all get the same report
(``python -m submission report RUN_DIR``: ``main_report``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import io
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .data import TRACKS, Question, load_questions
from .errors import DataError, KitError
from .intervals import (RESAMPLES, Interval, Intervals, TaskSamples, bootstrap, samples_from_records,
                        samples_from_result)
from .predictions import PREDICTIONS_FILE, read_records
from .report import RESULTS_FILE, short_track
from .scoring import RunResult

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
CHART_FILE = "scores.png"
WORST_PER_TASK = 3
SLOWEST = 5
PROMPT_HEAD, PROMPT_TAIL, TEXT_CHARS = 400, 300, 600
TRACK_COLOURS = dict(zip(TRACKS, ("#4c72b0", "#dd8452", "#55a868", "#8172b3")))


@dataclass(frozen=True)
class RunView:
    """One scored run, as a report needs it: results.json, scored predictions, questions, samples."""

    name: str
    results: dict[str, Any]
    records: dict[int, dict[str, Any]]  # row -> scored prediction record
    questions: dict[int, Question]  # row -> question; empty when the data file is not at hand
    tasks: list[TaskSamples]
    data_path: Path | None
    notes: tuple[str, ...] = field(default=())

    def task_records(self, task_name: str) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if r.get("task_name") == task_name]


# --- loading ----------------------------------------------------------------------------------------


def _read_results(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found; expected a run folder of local_evaluation.py, the Docker runner "
                        "or the grader (results.json and predictions.jsonl)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(results, dict) or not results.get("tasks"):
        raise DataError(f"{path}: no scored tasks (was any question answered?); there is nothing to report")
    return results


def find_data_file(recorded: str | None, run_dir: Path | None) -> Path | None:
    """The data file a run recorded, as given or relative to the run folder; None when it is not here."""
    if not recorded:
        return None
    path = Path(recorded)
    candidates = [path] + ([run_dir / path] if run_dir and not path.is_absolute() else [])
    return next((c for c in candidates if c.is_file()), None)


def _questions_for(records: dict[int, dict[str, Any]], data_path: Path) -> dict[int, Question]:
    """The data file's questions for these rows, refusing a file the predictions were not made on."""
    by_row = {q.row: q for q in load_questions(data_path, require_truth=True)}
    for row, record in records.items():
        question = by_row.get(row)
        if question is None or question.task_name != record.get("task_name"):
            found = f"task '{question.task_name}'" if question else "no such row"
            raise DataError(f"{data_path}: row {row} is {found}, but the predictions say task "
                            f"'{record.get('task_name')}'; the predictions were made on another data file "
                            "(pass the right one with --data)")
    return {row: by_row[row] for row in records}


def load_run_dir(run_dir: str | Path, data_file: str | Path | None = None) -> RunView:
    """A run folder (results.json + scored predictions.jsonl) and the data file results.json names.

    ``data_file`` overrides the recorded path (a grader's folder records the path inside its container).
    Without a data file the report still has every score and interval, only no prompts or truths.
    """
    run_dir = Path(run_dir)
    results = _read_results(run_dir)
    source = str(run_dir / PREDICTIONS_FILE)
    records = {r["row"]: r for r in read_records(source)}
    tasks = samples_from_records(list(records.values()), results["tasks"], source)
    data_path = Path(data_file) if data_file else find_data_file(results.get("data_file"), run_dir)
    if data_file and not data_path.is_file():
        raise DataError(f"{data_path}: no such data file")
    notes = ()
    if data_path is None:
        recorded = results.get("data_file")
        where = f"the data file {recorded!r} recorded in results.json is not on this machine" if recorded \
            else "results.json records no data file"
        notes = (f"{where}: prompts and truths are not shown",)
    questions = _questions_for(records, data_path) if data_path else {}
    return RunView(run_dir.resolve().name, results, records, questions, tasks, data_path, notes)


def view_from_result(out_dir: Path, questions: Sequence[Question], result: RunResult,
                     results: dict[str, Any]) -> RunView:
    """A RunView straight after scoring: scores from ``result``, outputs and latencies from predictions.jsonl."""
    path = Path(out_dir) / PREDICTIONS_FILE
    saved = {r["row"]: r for r in read_records(path)} if path.is_file() else {}
    records = {}
    for q in questions:
        if q.row not in result.samples:
            continue
        sample = result.samples[q.row]
        records[q.row] = {**saved.get(q.row, {}), "row": q.row, "task_name": q.task_name,
                          "parsed": sample.parsed, "score": sample.score, "parse_failed": sample.parse_failed}
    data_file = results.get("data_file")
    return RunView(Path(out_dir).resolve().name, results, records, {q.row: q for q in questions},
                   samples_from_result(questions, result), Path(data_file) if data_file else None)


def data_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- writing ----------------------------------------------------------------------------------------


def write_reports(out_dir: Path, questions: Sequence[Question], result: RunResult, results: dict[str, Any],
                  seed: int, resamples: int = RESAMPLES) -> dict[str, Any]:
    """Write report.html and scores.png into ``out_dir``; return the intervals for results.json.

    Call it after predictions.jsonl is written (it reads outputs and latencies from there) and put the
    returned dict into results.json as ``intervals``; ``report.format_table(result, intervals)`` prints it.
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
    (out_dir / CHART_FILE).write_bytes(chart)
    (out_dir / REPORT_FILE).write_text(render_report(view, intervals, chart), encoding="utf-8")
    log.info("wrote %s and %s", out_dir / REPORT_FILE, out_dir / CHART_FILE)
    return intervals.to_dict()


# --- charts -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    low: float
    high: float
    colour: str = "#4c72b0"


@dataclass(frozen=True)
class Panel:
    """One chart panel: horizontal bars, and an optional reference value drawn as a line and a band."""

    title: str
    bars: list[Bar]
    reference: Bar | None = None


def bar_chart(panels: Sequence[Panel], title: str, xlim: tuple[float, float], xlabel: str) -> bytes:
    """Stacked panels of horizontal bars with interval whiskers, as PNG bytes (Agg canvas, no display)."""
    from matplotlib.figure import Figure

    heights = [max(len(p.bars), 1) * 0.34 + 0.9 for p in panels]
    fig = Figure(figsize=(9, sum(heights) + 0.8), dpi=100, layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, panel in zip(axes, panels):
        _draw_panel(ax, panel, xlim)
    axes[-1].set_xlabel(xlabel)
    fig.suptitle(title, fontsize=12)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _draw_panel(ax, panel: Panel, xlim: tuple[float, float]) -> None:
    ax.set_title(panel.title, fontsize=10, loc="left")
    ax.set_xlim(*xlim)
    if xlim[0] < 0 < xlim[1]:
        ax.axvline(0, color="#333333", linewidth=0.8)
    if panel.reference is not None:
        ref = panel.reference
        ax.axvspan(ref.low, ref.high, color=ref.colour, alpha=0.12, linewidth=0)
        ax.axvline(ref.value, color=ref.colour, linestyle="--", linewidth=1)
    if not panel.bars:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no questions", transform=ax.transAxes, ha="center", va="center", color="#777777")
        return
    positions = list(range(len(panel.bars)))[::-1]
    values = [b.value for b in panel.bars]
    errors = [[b.value - b.low for b in panel.bars], [b.high - b.value for b in panel.bars]]
    errors = [[max(e, 0.0) for e in side] for side in errors]  # a percentile interval may miss the estimate
    ax.barh(positions, values, color=[b.colour for b in panel.bars], height=0.6)
    ax.errorbar(values, positions, xerr=errors, fmt="none", ecolor="#222222", elinewidth=1, capsize=3)
    span = xlim[1] - xlim[0]
    for position, bar in zip(positions, panel.bars):
        ax.text(max(bar.high, bar.value) + span * 0.01, position, f"{bar.value:.3f}", va="center", fontsize=7)
    ax.set_yticks(positions, [b.label for b in panel.bars], fontsize=8)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def score_chart(view: RunView, intervals: Intervals) -> bytes:
    """One panel per track: its tasks' scores with intervals, the track score as a dashed line and band."""
    results = view.results
    panels = []
    for track in TRACKS:
        colour = TRACK_COLOURS[track]
        bars = [Bar(name, task["score"], intervals.tasks[name].low, intervals.tasks[name].high, colour)
                for name, task in results["tasks"].items() if task["track"] == track and name in intervals.tasks]
        if track in intervals.tracks:
            i = intervals.tracks[track]
            reference = Bar(track, results["tracks"][track], i.low, i.high, colour)
            title = f"{short_track(track)}: {reference.value:.3f} {_ci(i, 3)}"
        else:
            reference, title = None, f"{short_track(track)}: no questions"
        panels.append(Panel(title, bars, reference))
    a = intervals.all_around
    return bar_chart(panels, f"all-around {results['all_around']:.3f} {_ci(a, 3)}", (0.0, 1.0),
                     f"score; whiskers: {intervals.confidence:.0%} bootstrap interval; dashed line and band: track")


def _ci(interval: Interval, digits: int = 4) -> str:
    return f"[{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


# --- HTML -------------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0 auto; max-width: 1100px; padding: 1.5rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.5rem; margin: 0 0 .3rem; } h2 { font-size: 1.15rem; margin-top: 2rem;
     border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.meta { color: #555; font-size: .9rem; } .note { color: #555; font-size: .88rem; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: .7rem 1rem; min-width: 12rem; }
.card.main { border: 2px solid #1d1d1f; }
.card .label { font-size: .8rem; color: #555; text-transform: uppercase; letter-spacing: .03em; }
.card .value { font-size: 1.7rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .ci { font-size: .85rem; color: #444; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; margin: .5rem 0; }
th, td { border-bottom: 1px solid #e5e5e5; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: .8rem; max-height: 14rem;
      overflow: auto; background: #f8f8f8; padding: .3rem; }
.banner { padding: .6rem 1rem; border-radius: 6px; margin: 1rem 0; }
.banner.bad { background: #fde8e8; border: 1px solid #e0a0a0; }
.banner.ok { background: #e8f6ea; border: 1px solid #a0d0a8; }
.banner.info { background: #eef3fb; border: 1px solid #b8c8e8; }
.fail { color: #b00020; font-weight: 600; } .good { color: #1b7f3b; } .bad { color: #b00020; }
img.chart { max-width: 100%; height: auto; } details { margin: .4rem 0; } summary { cursor: pointer; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:,.1f} s" if value < 600 else f"{value / 60:,.1f} min"


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = (), id_: str = "") -> str:
    """An HTML table; ``headers`` are escaped here, ``rows`` hold HTML already escaped by the caller."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>\n" for row in rows
    )
    ident = f' id="{esc(id_)}"' if id_ else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def png_img(png: bytes, alt: str, id_: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="chart" id="{esc(id_)}" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def card(label: str, value: str, detail: str, id_: str, main: bool = False) -> str:
    return (f'<div class="card{" main" if main else ""}"><div class="label">{esc(label)}</div>'
            f'<div class="value" id="{esc(id_)}">{esc(value)}</div><div class="ci">{esc(detail)}</div></div>')


def excerpt(text: str, head: int = PROMPT_HEAD, tail: int = PROMPT_TAIL) -> str:
    """The start and end of a long text (prompts end with the actual question), joined by an ellipsis."""
    if len(text) <= head + tail + 20:
        return text
    end = f"\n{text[-tail:]}" if tail else ""
    return f"{text[:head]}\n[... {len(text) - head - tail:,} characters left out ...]{end}"


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def as_json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render_report(view: RunView, intervals: Intervals, chart_png: bytes) -> str:
    body = "\n".join([
        _header(view), _summary(view, intervals),
        '<section id="chart"><h2>Scores by track</h2>'
        + png_img(chart_png, "bar chart of every task's score with its interval, one panel per track", "score-chart")
        + "</section>",
        _task_section(view, intervals), _time_section(view), _worst_section(view),
    ])
    return page(f"ShopBench report: {view.name}", body)


def _header(view: RunView) -> str:
    r = view.results
    facts = [f"model {r.get('model', 'unknown')}", f"data {r.get('data_file', 'unknown')}",
             f"{len(view.records):,} questions scored", f"seed {r.get('seed', 'n/a')}",
             f"kit {r.get('kit_version', '?')}", f"git {r.get('git_revision') or 'unknown'}"]
    if isinstance(r.get("profile"), dict):
        facts.append(f"profile {r['profile'].get('name', '?')}")
    parts = [f"<header><h1>ShopBench run report: {esc(view.name)}</h1>",
             f'<p class="meta">{" · ".join(esc(f) for f in facts)}</p>', _verdict_banner(r)]
    parts += [f'<div class="banner info">{esc(note)}</div>' for note in view.notes]
    return "\n".join(parts) + "</header>"


def _verdict_banner(results: dict[str, Any]) -> str:
    verdict = results.get("verdict")
    if not isinstance(verdict, dict):
        return ""
    if verdict.get("status") == "ok":
        return f'<div class="banner ok" id="verdict">verdict: ok: {esc(verdict.get("detail", ""))}</div>'
    answered = f" {results.get('n_answered', '?')} of {results.get('n_questions', '?')} questions answered;"
    return (f'<div class="banner bad" id="verdict"><strong>partial results</strong>:{esc(answered)} verdict '
            f'{esc(verdict.get("status"))}: {esc(verdict.get("detail", ""))}</div>')


def _summary(view: RunView, intervals: Intervals) -> str:
    r, level = view.results, f"{intervals.confidence:.0%}"
    a = intervals.all_around
    missing = f" (over {len(r['tracks'])} of 4 tracks)" if r.get("missing_tracks") else ""
    cards = [card(f"all-around score{missing}", fmt(r["all_around"]), f"{level} interval {_ci(a)}", "all-around", True)]
    for track in TRACKS:
        if track in intervals.tracks:
            cards.append(card(short_track(track), fmt(r["tracks"][track]),
                              f"{level} interval {_ci(intervals.tracks[track])}", f"track-{short_track(track)}"))
    cards.append(card("task mean", fmt(r["task_mean"]), f"{level} interval {_ci(intervals.task_mean)}", "task-mean"))
    how = (f"Intervals: {level} percentile bootstrap, {intervals.resamples:,} resamples (seed {intervals.seed}) of "
           "the questions within each task, each resample scored the official way (task = mean of its samples or "
           "micro F1 of summed counts, track = mean of its tasks, all-around = mean of the tracks). They show how "
           "far the score could move on another draw of questions like these. Two runs whose intervals overlap "
           "may still differ: compare them with <code>python -m submission compare RUN_A RUN_B</code>, which pairs "
           "the questions.")
    return f'<section id="summary"><div class="cards">{"".join(cards)}</div><p class="note">{how}</p></section>'


def points_lost(results: dict[str, Any]) -> dict[str, float]:
    """How much each task costs the all-around score: (1 - score) / (tasks in its track x tracks).

    The values add up to 1 - all-around, so the largest ones are where the model loses most.
    """
    tasks = results["tasks"]
    per_track: dict[str, int] = {}
    for task in tasks.values():
        per_track[task["track"]] = per_track.get(task["track"], 0) + 1
    return {name: (1 - t["score"]) / (per_track[t["track"]] * len(per_track)) for name, t in tasks.items()}


def _task_section(view: RunView, intervals: Intervals) -> str:
    lost = points_lost(view.results)
    rows = []
    for name, task in view.results["tasks"].items():
        if name not in intervals.tasks:
            continue
        failures = task.get("parse_failures", 0)
        example = task.get("failure_example") or {}
        failure = (f'<span class="fail">{failures}</span> e.g. row {esc(example.get("row"))}: '
                   f"<code>{esc(example.get('output', '')[:80])}</code>" if failures else "0")
        rows.append([esc(name), esc(short_track(task["track"])), esc(task["metric"]), str(task["n"]),
                     fmt(task["score"]), esc(_ci(intervals.tasks[name])), fmt(lost[name]), failure])
    headers = ["task", "track", "metric", "n", "score", f"{intervals.confidence:.0%} interval",
               "all-around points lost", "parse failures"]
    note = ('<p class="note">All-around points lost: (1 - task score) / (tasks in its track &times; tracks); '
            "they add up to 1 - all-around, so the largest are where the model loses most.</p>")
    return (f'<section id="tasks"><h2>Tasks</h2>{table(headers, rows, numeric=(3, 4, 5, 6), id_="task-table")}'
            f"{note}</section>")


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


def slowest_batches(view: RunView) -> list[dict[str, Any]]:
    """The harness's slowest batches when results.json has them, else the slowest by seconds per prompt."""
    batches = batches_from_records(view.records)
    recorded = (view.results.get("timings") or {}).get("slowest_batches")
    if isinstance(recorded, list) and recorded:
        return [{**b, "tasks": batches.get(b.get("batch"), {}).get("tasks", [])} for b in recorded]
    ranked = sorted(batches.items(), key=lambda item: item[1]["latency_s"] / len(item[1]["rows"]), reverse=True)
    return [{"batch": index, "prompts": len(b["rows"]), "latency_s": b["latency_s"], "limit_s": None,
             "share_of_limit": None, "tasks": b["tasks"]} for index, b in ranked[:SLOWEST]]


def _time_section(view: RunView) -> str:
    timings = view.results.get("timings") or {}
    batches = batches_from_records(view.records)
    total = sum(b["latency_s"] for b in batches.values())
    parts = ['<section id="time"><h2>Time</h2>', _budget_text(view.results, total, len(batches))]
    latency = timings.get("latency")
    if isinstance(latency, dict) and isinstance(latency.get("batch_s"), dict):
        b, q = latency["batch_s"], latency.get("per_question_s", {})
        parts.append(f'<p class="note">batch latency p50 {fmt_seconds(b.get("p50"))}, '
                     f'p90 {fmt_seconds(b.get("p90"))}, max {fmt_seconds(b.get("max"))}; '
                     f'per question p50 {fmt_seconds(q.get("p50"))}, max {fmt_seconds(q.get("max"))}</p>')
    slowest = slowest_batches(view)
    if slowest:
        headers = ["batch", "prompts", "latency", "per prompt", "limit", "share of limit", "tasks"]
        rows = [_slowest_row(s) for s in slowest]
        parts.append("<h3>Slowest batches</h3>" + table(headers, rows, numeric=(0, 1, 2, 3, 4, 5), id_="slowest"))
    parts.append(_track_times(timings.get("tracks")))
    return "\n".join(parts) + "</section>"


def _slowest_row(batch: dict[str, Any]) -> list[str]:
    latency, prompts = batch.get("latency_s"), batch.get("prompts")
    share = batch.get("share_of_limit")
    return [str(batch.get("batch")), str(prompts), fmt_seconds(latency),
            fmt_seconds(latency / prompts) if latency is not None and prompts else "",
            fmt_seconds(batch["limit_s"]) if batch.get("limit_s") else "n/a",
            f"{share:.1%}" if share is not None else "n/a",
            esc(", ".join(str(t) for t in batch.get("tasks", [])))]


def _budget_text(results: dict[str, Any], total: float, n_batches: int) -> str:
    budget = results.get("budget")
    predicted = f"prediction time: {fmt_seconds(total)} over {n_batches:,} batches" if n_batches else \
        "prediction time: not recorded (predictions.jsonl has no batch latencies, e.g. a re-scored file)"
    if not isinstance(budget, dict) or not budget.get("budget_s"):
        return f'<p id="budget">{esc(predicted)}; no time budget recorded in results.json.</p>'
    used, limit = budget.get("elapsed_s") or 0.0, budget["budget_s"]
    projected = budget.get("projected_total_s")
    within = budget.get("within_budget")
    verdict = "" if within is None else (' <span class="good">within budget</span>' if within
                                         else ' <span class="bad">over budget</span>')
    track = short_track(str(budget.get("track") or "?"))
    text = f"time budget ({esc(track)}): used {fmt_seconds(used)} of {fmt_seconds(limit)} ({used / limit:.1%})"
    if projected:
        text += f"; projected for the full split {fmt_seconds(projected)} ({projected / limit:.1%})"
    return f'<p id="budget">{text}{verdict}. {esc(predicted)}.</p>'


def _track_times(tracks: Any) -> str:
    if not isinstance(tracks, dict) or not tracks:
        return ""
    rows = []
    for track, v in tracks.items():
        if not isinstance(v, dict):
            continue
        budget, used = v.get("budget_s"), v.get("predict_s")
        rows.append([esc(short_track(track)), str(v.get("questions", "")), fmt_seconds(used),
                     fmt_seconds(budget) if budget else "n/a",
                     f"{used / budget:.1%}" if budget and used is not None else "n/a"])
    return "<h3>Time per track</h3>" + table(["track", "questions", "predicting", "budget", "used"], rows,
                                              numeric=(1, 2, 3, 4))


# --- worst examples ---------------------------------------------------------------------------------


def worst_records(view: RunView, task_name: str, k: int = WORST_PER_TASK) -> list[dict[str, Any]]:
    """The task's ``k`` lowest-scoring predictions, lowest first (ties in row order)."""
    return sorted(view.task_records(task_name), key=lambda r: (r["score"], r["row"]))[:k]


def example_cells(view: RunView, record: dict[str, Any]) -> list[str]:
    """Prompt excerpt and truth (when the data file is at hand) for one prediction, escaped."""
    question = view.questions.get(record["row"])
    if question is None:
        return ['<span class="note">data file not at hand</span>'] * 2
    return [pre(excerpt(question.prompt)), pre(as_json(question.truth))]


def _worst_section(view: RunView) -> str:
    parts = ['<section id="worst"><h2>Worst-scoring examples</h2>'
             f'<p class="note">The {WORST_PER_TASK} lowest-scoring questions of every task, tasks ordered by the '
             "all-around points they lose. Prompts are cut to their start and end; micro-F1 rows show the "
             "question's own F1 (the task uses summed counts).</p>"]
    lost = points_lost(view.results)
    for name in sorted(view.results["tasks"], key=lambda n: -lost[n]):
        task = view.results["tasks"][name]
        worst = worst_records(view, name)
        if not worst:
            continue
        rows = []
        for record in worst:
            prompt, truth = example_cells(view, record)
            failed = ' <span class="fail">unparsed</span>' if record.get("parse_failed") else ""
            rows.append([str(record["row"]), fmt(record["score"]) + failed, prompt,
                         pre(excerpt(str(record.get("output", "")), TEXT_CHARS, 0)),
                         pre(as_json(record.get("parsed"))), truth])
        summary = (f"{name} · {short_track(task['track'])} · {task['metric']} · score {task['score']:.4f} · "
                   f"n {task['n']} · loses {lost[name]:.4f} all-around")
        parts.append(f"<details><summary>{esc(summary)}</summary>"
                     + table(["row", "score", "prompt", "output", "parsed", "truth"], rows, numeric=(0, 1))
                     + "</details>")
    return "\n".join(parts) + "</section>"


# --- command line -----------------------------------------------------------------------------------

REPORT_EPILOG = """examples:
  python -m submission report runs/try1
  python -m submission report grader-out/ --data data/development.json
"""


def main_report(argv: list[str], prog: str = "python -m submission report") -> int:
    """``python -m submission report RUN_DIR``: (re)write report.html and scores.png; 0, or 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Write report.html and scores.png into a run folder of local_evaluation.py, the "
        "Docker runner or the grader.", epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (results.json, predictions.jsonl)")
    parser.add_argument("--data", metavar="FILE", help="the data file, when the path in results.json is not here")
    parser.add_argument("--seed", type=int, metavar="S", help="seed of the resampling (default: the run's seed)")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, metavar="N",
                        help=f"bootstrap resamples (default: {RESAMPLES})")
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error("--resamples must be at least 1")
    try:
        intervals = write_reports_from_run_dir(args.run_dir, args.data, args.seed, args.resamples)
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = json.loads((Path(args.run_dir) / RESULTS_FILE).read_text(encoding="utf-8"))
    low, high = intervals["all_around"]
    level = f"{intervals['confidence']:.0%}"
    print(f"all-around score: {results['all_around']:.4f}  {level} interval [{low:.4f}, {high:.4f}]")
    print(f"wrote {Path(args.run_dir) / REPORT_FILE} and {Path(args.run_dir) / CHART_FILE}")
    return 0
