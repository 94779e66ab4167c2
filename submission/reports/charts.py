"""Charts as PNG bytes (matplotlib's Agg canvas, no display): scores.png and compare.html's deltas.

``bar_chart`` draws stacked panels of horizontal bars with interval whiskers; ``score_chart`` is a run's
chart (one panel per track).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

from ..scoring.data import TRACKS, short_track
from .intervals import Interval, Intervals
from .run_view import RunView

TRACK_COLOURS = dict(zip(TRACKS, ("#4c72b0", "#dd8452", "#55a868", "#8172b3")))


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
            title = f"{short_track(track)}: {reference.value:.3f} {ci_text(i, 3)}"
        else:
            reference, title = None, f"{short_track(track)}: no questions"
        panels.append(Panel(title, bars, reference))
    a = intervals.all_around
    return bar_chart(panels, f"all-around {results['all_around']:.3f} {ci_text(a, 3)}", (0.0, 1.0),
                     f"score; whiskers: {intervals.confidence:.0%} bootstrap interval; dashed line and band: track")


def ci_text(interval: Interval, digits: int = 4) -> str:
    return f"[{interval.low:.{digits}f}, {interval.high:.{digits}f}]"
