"""A comparison of two runs as the user sees it: the terminal table, the delta chart and compare.html.

The numbers come from ``comparison.py`` (paired bootstrap deltas and flips); ``python -m submission
compare RUN_A RUN_B`` (``submission/cli/compare.py``) prints ``format_comparison`` and writes
``render_compare`` into ``compare.html``, with ``delta_chart``'s chart of the deltas.
"""

from __future__ import annotations

from ..scoring.data import TRACKS, short_track
from .charts import Bar, Panel, bar_chart
from .comparison import Flip, RunComparison, direction, flip_counts, n_paired
from .intervals import RIGHT_THRESHOLD, Difference, format_p
from .pages import png_base64, render

COMPARE_FILE = "compare.html"
MAX_FLIPS_SHOWN = 50
BETTER, WORSE, UNCLEAR = "#55a868", "#c44e52", "#9a9a9a"


# --- terminal ---------------------------------------------------------------------------------------


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
    flips = flip_counts(rc)
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

    def p_text(d: Difference) -> str:
        return format_p(d.p_value, r.resamples)

    cards = [{"label": "all-around delta (B - A)", "value": f"{r.all_around.delta:+.4f}", "id": "all-around-delta",
              "detail": f"{level} interval {_span(r.all_around)}, p {p_text(r.all_around)}", "main": True}]
    cards += [{"label": short_track(t), "value": f"{d.delta:+.4f}", "detail": f"{_span(d)}, p {p_text(d)}",
               "id": f"delta-{short_track(t)}", "main": False} for t, d in r.tracks.items()]
    overall = [_diff("all-around", r.all_around, r.resamples), _diff("task mean", r.task_mean, r.resamples)]
    overall += [_diff(short_track(t), d, r.resamples) for t, d in r.tracks.items()]
    flips = flip_counts(rc)
    tasks = [{**_diff(name, d, r.resamples), "track": short_track(rc.a.results["tasks"][name]["track"]),
              "n": rc.task_n[name], "fixed": flips[name][0], "broken": flips[name][1]} for name, d in r.tasks.items()]
    meta = (f"A = {rc.a.name} ({rc.a.results.get('model', '?')}) · B = {rc.b.name} "
            f"({rc.b.results.get('model', '?')}) · data {rc.a.results.get('data_file')} · "
            f"{n_paired(rc):,} questions paired · {r.resamples:,} resamples, seed {r.seed}")
    return render("compare.html", title=f"ShopBench comparison: {rc.a.name} vs {rc.b.name}", meta=meta,
                  notes=rc.notes, cards=cards, level=level, right_threshold=RIGHT_THRESHOLD, overall=overall,
                  chart_png=png_base64(chart_png), tasks=tasks, fixed=_flips(rc, rc.fixed), fixed_total=len(rc.fixed),
                  broken=_flips(rc, rc.broken), broken_total=len(rc.broken))
