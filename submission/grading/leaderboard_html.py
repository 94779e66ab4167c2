"""leaderboard.html: the leaderboard as a page a browser shows, from ``reports/templates/leaderboard.html``.

One self-contained file (inline CSS, no scripts, no URLs), every value autoescaped: a submission's name
or a verdict's detail is text, never markup. The rows are ``leaderboard.Row``s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..fileio import replace_file
from ..reports.pages import render
from ..scoring.data import ALL_AROUND, TRACKS, short_track

PAGE = "leaderboard.html"
COLUMNS = (*TRACKS, ALL_AROUND)  # as leaderboard.COLUMNS (that module imports this one: no import back)


def _cell(row: Any, track: str) -> dict[str, Any]:
    if track not in row.scores:
        return {"text": "", "failed": False, "title": ""}
    score, status = row.scores[track], row.verdicts.get(track, "?")
    detail = row.details.get(track, "")
    title = f"{status}{': ' + detail if detail and status != 'ok' else ''}; graded {row.graded_at.get(track, '?')}"
    return {"text": "—" if score is None else f"{score:.4f}", "failed": score is None, "title": title[:500]}


def page_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    shown = []
    for rank, row in enumerate(rows, start=1):
        graded = max(row.graded_at.values(), default="")
        shown.append({"rank": rank, "submission": row.submission, "authors": ", ".join(row.authors),
                      "cells": [_cell(row, track) for track in COLUMNS], "verdict": row.verdict,
                      "time": f"{row.wall_s / 60:.1f} min", "graded": graded.replace("T", " ").rstrip("Z")})
    return shown


def to_html(rows: Sequence[Any], generated: str | None = None) -> str:
    generated = generated or time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    headers = ["#", "team", *(short_track(t) for t in COLUMNS), "verdict", "time", "graded (UTC)"]
    return render(PAGE, title="ShopBench leaderboard", rows=page_rows(rows), headers=headers, generated=generated)


def write_html(folder: Path, rows: Sequence[Any]) -> Path:
    path = Path(folder) / PAGE
    replace_file(path, to_html(rows))
    return path
