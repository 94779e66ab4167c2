"""Charts as PNG bytes (matplotlib's Agg canvas, no display): scores.png and compare.html's deltas.

``bar_chart`` draws stacked panels of horizontal bars with interval whiskers; ``score_chart`` is a run's
chart (one panel per track). ``bar_figure`` and ``score_figure`` return the matplotlib figure itself.

Each bar's value is written in a column at the right of the scale, inside the axes (which reach past the
scale's end by ``LABEL_COLUMN`` for it): a label never runs past the chart's edge, even at 1.0, and never
lies on a whisker, which ends at the scale's end at most.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..scoring.data import TRACKS, short_track
from .intervals import Interval, Intervals
from .run_view import RunView

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TRACK_COLOURS = dict(zip(TRACKS, ("#4c72b0", "#dd8452", "#55a868", "#8172b3"), strict=True))
LABEL_COLUMN = 0.12  # room for the value labels right of the scale's end, as a share of the scale
LABEL_GAP_PT = 5  # between the scale's end (a whisker's cap at most) and a label


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
    return png(bar_figure(panels, title, xlim, xlabel))


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def bar_figure(panels: Sequence[Panel], title: str, xlim: tuple[float, float], xlabel: str) -> Figure:
    """The matplotlib Figure of ``bar_chart``."""
    from matplotlib.figure import Figure

    heights = [max(len(p.bars), 1) * 0.34 + 0.9 for p in panels]
    fig = Figure(figsize=(9, sum(heights) + 0.8), dpi=100, layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, panel in zip(axes, panels, strict=True):
        _draw_panel(ax, panel, xlim)
    axes[-1].set_xlabel(xlabel)
    fig.suptitle(title, fontsize=12)
    return fig


def _scale(ax: Axes, xlim: tuple[float, float]) -> None:
    """The axes reach LABEL_COLUMN past the scale's end; ticks and grid stay on the scale."""
    from matplotlib.ticker import MaxNLocator

    low, high = xlim
    ax.set_xlim(low, high + (high - low) * LABEL_COLUMN)
    ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    ax.set_xticks([t for t in ticks if low - 1e-9 <= t <= high + 1e-9])
    ax.axvline(high, color="#bbbbbb", linewidth=0.8)  # where the scale ends and the label column begins


def _draw_panel(ax: Axes, panel: Panel, xlim: tuple[float, float]) -> None:
    ax.set_title(panel.title, fontsize=10, loc="left")
    _scale(ax, xlim)
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
    for position, bar in zip(positions, panel.bars, strict=True):
        ax.annotate(f"{bar.value:.3f}", (xlim[1], position), xytext=(LABEL_GAP_PT, 0), textcoords="offset points",
                    va="center", ha="left", fontsize=7, annotation_clip=False)
    ax.set_yticks(positions, [b.label for b in panel.bars], fontsize=8)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def score_chart(view: RunView, intervals: Intervals) -> bytes:
    """One panel per track: its tasks' scores with intervals, the track score as a dashed line and band."""
    return png(score_figure(view, intervals))


def score_figure(view: RunView, intervals: Intervals) -> Figure:
    """The matplotlib Figure of ``score_chart``."""
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
    return bar_figure(panels, f"all-around {results['all_around']:.3f} {ci_text(a, 3)}", (0.0, 1.0),
                      f"score; whiskers: {intervals.confidence:.0%} bootstrap interval; dashed line and band: track")


def ci_text(interval: Interval, digits: int = 4) -> str:
    return f"[{interval.low:.{digits}f}, {interval.high:.{digits}f}]"
