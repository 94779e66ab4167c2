"""Compare two runs on the same questions: is the difference real, and which questions changed?

``python -m submission compare RUN_A RUN_B`` reads two run folders (local_evaluation.py, the Docker
runner or the grader), pairs their questions by row, and reports B minus A for every task, track, the
all-around score and the task mean, each with a paired bootstrap interval and p-value
(``intervals.paired_bootstrap``). It lists the questions that flipped from right to wrong
and back (right = sample score >= 0.5, ``intervals.is_right``), prints a table and writes
``compare.html`` with a chart of the deltas. Runs scored on different data files are refused.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError, KitError
from ..scoring.data import TRACKS, short_track
from .charts import Bar, Panel, bar_chart
from .intervals import (
    RESAMPLES,
    RIGHT_THRESHOLD,
    Comparison,
    Difference,
    TaskSamples,
    format_p,
    is_right,
    paired_bootstrap,
)
from .pages import png_base64, render
from .run_view import RunView, data_digest, load_run_dir

COMPARE_FILE = "compare.html"
PROG = "python -m submission compare"
MAX_FLIPS_SHOWN = 50
BETTER, WORSE, UNCLEAR = "#55a868", "#c44e52", "#9a9a9a"

EPILOG = """examples:
  python -m submission compare runs/baseline runs/new-prompt      # writes runs/new-prompt/compare.html
  python -m submission compare runs/a runs/b --output runs/a-vs-b.html --resamples 5000 --seed 1
  python -m submission compare grader-out/ runs/local --data data/development.json

reading it: delta = B - A. The interval is a 95% paired bootstrap interval (the same resampled
questions for both runs); when it excludes 0 the difference is unlikely to be noise. p is the
two-sided bootstrap p-value: twice the share of resampled deltas on the other side of 0 (0 itself
counted there), at most 1; "<0.002" means no resample of 1,000 crossed 0.
"""


@dataclass(frozen=True)
class Flip:
    """A question that one run got right and the other wrong (right = sample score >= 0.5)."""

    row: int
    task_name: str
    score_a: float
    score_b: float


@dataclass(frozen=True)
class RunComparison:
    a: RunView
    b: RunView
    result: Comparison
    task_n: dict[str, int]  # questions paired per task
    fixed: list[Flip]  # wrong in A, right in B
    broken: list[Flip]  # right in A, wrong in B
    notes: tuple[str, ...]


def check_same_data(a: RunView, b: RunView) -> None:
    """Refuse two runs unless their data files have the same bytes (paths may differ between machines)."""
    for view in (a, b):
        if view.data_path is None:
            recorded = view.results.get("data_file")
            where = f"records the data file {recorded!r}, which is not on this machine" if recorded \
                else "records no data file"
            raise DataError(f"run '{view.name}': results.json {where}; pass --data PATH with a copy of the "
                            "data file both runs used (each run's predictions are checked against it)")
    digest_a, digest_b = data_digest(a.data_path), data_digest(b.data_path)
    if digest_a != digest_b:
        raise DataError(
            f"the runs were scored on different data files: '{a.name}' on {a.data_path} (sha256 {digest_a[:12]}) "
            f"and '{b.name}' on {b.data_path} (sha256 {digest_b[:12]}); a comparison needs the same questions: "
            f"re-run one of them with --data {a.data_path}"
        )


def _subset(task: TaskSamples, rows: Sequence[int]) -> TaskSamples:
    position = {row: i for i, row in enumerate(task.rows)}
    values = task.values[np.array([position[row] for row in rows], dtype=np.int64)]
    return TaskSamples(task.task_name, task.track, task.aggregation, tuple(rows), values)


def paired_tasks(a: RunView, b: RunView) -> tuple[list[TaskSamples], list[TaskSamples], list[str]]:
    """Both runs' tasks on the rows both answered, in A's task order, and notes on what was left out."""
    by_name_b = {t.task_name: t for t in b.tasks}
    tasks_a, tasks_b, notes = [], [], []
    for task in a.tasks:
        other = by_name_b.get(task.task_name)
        rows = sorted(set(task.rows) & set(other.rows)) if other else []
        if rows:
            tasks_a.append(_subset(task, rows))
            tasks_b.append(_subset(other, rows))
    only_a, only_b = set(a.records) - set(b.records), set(b.records) - set(a.records)
    if only_a or only_b:
        paired = sum(t.n for t in tasks_a)
        notes.append(f"'{a.name}' has {len(only_a):,} scored questions that '{b.name}' lacks, and '{b.name}' "
                     f"{len(only_b):,} that '{a.name}' lacks (another --limit, or a partial run): the comparison "
                     f"uses the {paired:,} questions both answered, so its A and B scores can differ from "
                     "each run's own results.json")
    if not tasks_a:
        raise DataError(f"runs '{a.name}' and '{b.name}' have no scored question in common: nothing to compare")
    return tasks_a, tasks_b, notes


def find_flips(a: RunView, b: RunView, tasks: Sequence[TaskSamples]) -> tuple[list[Flip], list[Flip]]:
    """(wrong in A and right in B, right in A and wrong in B), in task and row order."""
    fixed, broken = [], []
    for task in tasks:
        for row in task.rows:
            score_a, score_b = a.records[row]["score"], b.records[row]["score"]
            if is_right(score_a) != is_right(score_b):
                (fixed if is_right(score_b) else broken).append(Flip(row, task.task_name, score_a, score_b))
    return fixed, broken


def compare_runs(a: RunView, b: RunView, seed: int = 0, resamples: int = RESAMPLES) -> RunComparison:
    check_same_data(a, b)
    tasks_a, tasks_b, notes = paired_tasks(a, b)
    result = paired_bootstrap(tasks_a, tasks_b, seed=seed, resamples=resamples)
    fixed, broken = find_flips(a, b, tasks_a)
    return RunComparison(a, b, result, {t.task_name: t.n for t in tasks_a}, fixed, broken, tuple(notes))


def n_paired(rc: RunComparison) -> int:
    return sum(rc.task_n.values())


# --- terminal ---------------------------------------------------------------------------------------


def direction(d: Difference) -> str:
    """'B better' or 'B worse' when the interval excludes 0, else ''."""
    if d.low > 0:
        return "B better"
    if d.high < 0:
        return "B worse"
    return ""


def _flip_counts(rc: RunComparison) -> dict[str, tuple[int, int]]:
    counts = {name: [0, 0] for name in rc.result.tasks}
    for flip in rc.fixed:
        counts[flip.task_name][0] += 1
    for flip in rc.broken:
        counts[flip.task_name][1] += 1
    return {name: (f, b) for name, (f, b) in counts.items()}


def _span(d: Difference) -> str:
    return f"[{d.low:+.4f}, {d.high:+.4f}]"


def _diff_cells(d: Difference, resamples: int) -> str:
    return (f"{d.a:>7.4f} {d.b:>7.4f} {d.delta:>+8.4f} {_span(d):>20} "
            f"{format_p(d.p_value, resamples):>6} {direction(d):>8}")


def format_comparison(rc: RunComparison) -> str:
    """The terminal table: tasks, tracks, all-around and task mean, then the flip counts and notes."""
    r = rc.result
    lines = [f"A: {rc.a.name} ({rc.a.results.get('model', '?')})    B: {rc.b.name} ({rc.b.results.get('model', '?')})",
             f"data: {rc.a.results.get('data_file')}; {n_paired(rc):,} questions paired; {r.resamples:,} paired "
             f"bootstrap resamples, seed {r.seed}; delta = B - A", ""]
    head = f"{'n':>5} {'A':>7} {'B':>7} {'delta':>8} {f'{r.confidence:.0%} interval':>20} {'p':>6} {'':>8}"
    lines.append(f"{'task':<32} {'track':<32} {head} {'fixed':>6} {'broken':>6}")
    flips = _flip_counts(rc)
    for name, d in r.tasks.items():
        track = short_track(rc.a.results["tasks"][name]["track"])
        lines.append(f"{name:<32} {track:<32} {rc.task_n[name]:>5} {_diff_cells(d, r.resamples)} "
                     f"{flips[name][0]:>6} {flips[name][1]:>6}")
    lines.append("")
    overall = [(f"track {short_track(t)}", d) for t, d in r.tracks.items()]
    for label, d in overall + [("all-around", r.all_around), ("task mean", r.task_mean)]:
        lines.append(f"{label:<65} {'':>5} {_diff_cells(d, r.resamples)}")
    lines += ["", f"flips (right = sample score >= {RIGHT_THRESHOLD}): {len(rc.fixed):,} wrong in A and right in B, "
              f"{len(rc.broken):,} right in A and wrong in B"]
    lines += [f"note: {note}" for note in rc.notes]
    return "\n".join(lines)


# --- chart and HTML ---------------------------------------------------------------------------------


def _colour(d: Difference) -> str:
    return BETTER if d.low > 0 else WORSE if d.high < 0 else UNCLEAR


def _bar(label: str, d: Difference) -> Bar:
    return Bar(label, d.delta, d.low, d.high, _colour(d))


def delta_chart(rc: RunComparison) -> bytes:
    """A panel for the all-around score, task mean and tracks, then one panel of task deltas per track."""
    r = rc.result
    overall = [_bar("all-around", r.all_around), _bar("task mean", r.task_mean)]
    overall += [_bar(short_track(t), r.tracks[t]) for t in TRACKS if t in r.tracks]
    panels = [Panel("overall", overall)]
    for track in TRACKS:
        if track in r.tracks:
            bars = [_bar(name, d) for name, d in r.tasks.items() if rc.a.results["tasks"][name]["track"] == track]
            title = f"{short_track(track)}: {r.tracks[track].delta:+.3f} {_span(r.tracks[track])}"
            panels.append(Panel(title, bars, _bar(track, r.tracks[track])))
    every = [r.all_around, r.task_mean, *r.tracks.values(), *r.tasks.values()]
    reach = max([0.05] + [abs(v) for d in every for v in (d.low, d.high, d.delta)]) * 1.2
    return bar_chart(panels, f"B - A: {rc.b.name} minus {rc.a.name}", (-reach, reach),
                     f"delta (whiskers: {r.confidence:.0%} paired bootstrap interval; green/red: interval excludes 0)")


def _diff(label: str, d: Difference, resamples: int) -> dict:
    """One difference as a table row shows it."""
    return {"label": label, "a": d.a, "b": d.b, "delta": f"{d.delta:+.4f}", "span": _span(d),
            "cls": "good" if d.low > 0 else "bad" if d.high < 0 else "", "p": format_p(d.p_value, resamples),
            "direction": direction(d)}


def _flips(rc: RunComparison, flips: list[Flip]) -> list[dict]:
    return [{"row": f.row, "task": f.task_name, "score_a": f.score_a, "score_b": f.score_b,
             "question": rc.a.questions.get(f.row), "output_a": rc.a.records[f.row].get("output", ""),
             "output_b": rc.b.records[f.row].get("output", "")} for f in flips[:MAX_FLIPS_SHOWN]]


def render_compare(rc: RunComparison, chart_png: bytes) -> str:
    r, level = rc.result, f"{rc.result.confidence:.0%}"
    p_text = lambda d: format_p(d.p_value, r.resamples)  # noqa: E731
    cards = [{"label": "all-around delta (B - A)", "value": f"{r.all_around.delta:+.4f}", "id": "all-around-delta",
              "detail": f"{level} interval {_span(r.all_around)}, p {p_text(r.all_around)}", "main": True}]
    cards += [{"label": short_track(t), "value": f"{d.delta:+.4f}", "detail": f"{_span(d)}, p {p_text(d)}",
               "id": f"delta-{short_track(t)}", "main": False} for t, d in r.tracks.items()]
    overall = [_diff("all-around", r.all_around, r.resamples), _diff("task mean", r.task_mean, r.resamples)]
    overall += [_diff(short_track(t), d, r.resamples) for t, d in r.tracks.items()]
    flips = _flip_counts(rc)
    tasks = [{**_diff(name, d, r.resamples), "track": short_track(rc.a.results["tasks"][name]["track"]),
              "n": rc.task_n[name], "fixed": flips[name][0], "broken": flips[name][1]} for name, d in r.tasks.items()]
    meta = (f"A = {rc.a.name} ({rc.a.results.get('model', '?')}) · B = {rc.b.name} "
            f"({rc.b.results.get('model', '?')}) · data {rc.a.results.get('data_file')} · "
            f"{n_paired(rc):,} questions paired · {r.resamples:,} resamples, seed {r.seed}")
    return render("compare.html", title=f"ShopBench comparison: {rc.a.name} vs {rc.b.name}", meta=meta,
                  notes=rc.notes, cards=cards, level=level, right_threshold=RIGHT_THRESHOLD, overall=overall,
                  chart_png=png_base64(chart_png), tasks=tasks, fixed=_flips(rc, rc.fixed), fixed_total=len(rc.fixed),
                  broken=_flips(rc, rc.broken), broken_total=len(rc.broken))


# --- command line -----------------------------------------------------------------------------------


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_a", metavar="RUN_A", help="output folder of the first run (the baseline)")
    parser.add_argument("run_b", metavar="RUN_B", help="output folder of the second run (the change)")
    parser.add_argument("--output", metavar="FILE",
                        help=f"HTML file to write (default: RUN_B/{COMPARE_FILE}, in the folder of the change)")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, metavar="N",
                        help=f"paired bootstrap resamples (default: {RESAMPLES})")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the resampling (default: 0)")
    parser.add_argument("--data", metavar="FILE", help="the data file both runs used, when the path in their "
                        "results.json is not on this machine (e.g. a grader's container path)")
    return parser


def main_compare(argv: list[str], prog: str = PROG) -> int:
    """``python -m submission compare RUN_A RUN_B``: print the comparison, write the HTML; 0, or 2 on bad input.

    ``prog`` is the program name for --help and usage errors (the dispatcher passes its own).
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error("--resamples must be at least 1")
    try:
        a, b = load_run_dir(args.run_a, args.data), load_run_dir(args.run_b, args.data)
        if a.name == b.name:  # runs/x/out and runs/y/out: name them by the paths given
            a, b = replace(a, name=args.run_a), replace(b, name=args.run_b)
        rc = compare_runs(a, b, seed=args.seed, resamples=args.resamples)
        output = Path(args.output) if args.output else Path(args.run_b) / COMPARE_FILE
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_compare(rc, delta_chart(rc)), encoding="utf-8")
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_comparison(rc))
    print(f"\nwrote {output}")
    return 0
