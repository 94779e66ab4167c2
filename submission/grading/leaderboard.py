"""Graded runs (scores.json) merged into one leaderboard (``python -m submission leaderboard DIR...``).

One row per submission (the ``submission`` name of its scores.json): its score on each of the four
tracks and on the all-around track, each from the run graded on that track; the verdicts; the total
wall time. A run whose verdict is not ``ok`` scores nothing, as on the real leaderboard; when the same
submission was graded twice on a track, the later grading counts. Rows are ranked by the all-around
score, then by the mean of the track scores. Folders whose name starts with '.' are skipped (the
workers' staging folders: see results_folder.py). With ``--output-dir`` it writes leaderboard.md,
leaderboard.csv and leaderboard.html (leaderboard_html.py).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..scoring.data import ALL_AROUND, TRACKS, short_track

SCORES_FILE = "scores.json"  # written by `python -m submission grade` (grader.scores_dict)
COLUMNS = (*TRACKS, ALL_AROUND)


@dataclass(frozen=True)
class GradedRun:
    path: Path
    submission: str
    authors: tuple[str, ...]
    track: str
    status: str
    detail: str
    score: float | None  # None unless the verdict is ok
    wall_s: float
    graded_at: str


@dataclass(frozen=True)
class Row:
    submission: str
    authors: tuple[str, ...]
    scores: dict[str, float | None]  # track (or all-around) -> score; absent: not graded
    verdicts: dict[str, str]  # track -> status
    wall_s: float
    graded_at: dict[str, str] = field(default_factory=dict)  # track -> when its run was graded (UTC, ISO 8601)
    details: dict[str, str] = field(default_factory=dict)  # track -> the verdict's detail

    @property
    def track_mean(self) -> float | None:
        values = [score for t in TRACKS if (score := self.scores.get(t)) is not None]
        return sum(values) / len(values) if values else None

    @property
    def verdict(self) -> str:
        failed = [f"{status} ({short_track(track)})" for track, status in self.verdicts.items() if status != "ok"]
        return "; ".join(failed) if failed else "ok"


def load_scores(path: Path) -> dict:
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable {SCORES_FILE} ({exc})") from None
    if not isinstance(scores, dict) or scores.get("format") != 1 or "track" not in scores:
        raise DataError(f"{path}: not a {SCORES_FILE} written by `python -m submission grade`")
    return scores


def find_score_files(paths: Sequence[str | Path]) -> list[Path]:
    """Each path is a scores.json, or a folder searched (recursively) for scores.json files."""
    found = []
    for path in map(Path, paths):
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(f for f in path.rglob(SCORES_FILE)
                                if not any(part.startswith(".") for part in f.relative_to(path).parts)))
        else:
            raise DataError(f"{path}: no such file or folder")
    if not found:
        raise DataError(f"no {SCORES_FILE} under {', '.join(map(str, paths))}; grade submissions first with "
                        "`python -m submission grade ... --output-dir DIR`")
    return found


def load_run(path: Path) -> GradedRun:
    scores = load_scores(path)
    track = scores["track"]
    if track not in COLUMNS:
        raise DataError(f"{path}: unknown track '{track}'")
    verdict = scores.get("verdict") or {}
    score = scores.get("score")
    return GradedRun(path, str(scores.get("submission") or path.parent.name), tuple(scores.get("authors") or ()),
                     track, str(verdict.get("status", "?")), str(verdict.get("detail", "")),
                     float(score) if isinstance(score, (int, float)) and verdict.get("status") == "ok" else None,
                     float(scores.get("wall_s") or 0.0), str(scores.get("graded_at") or ""))


def merge(runs: Sequence[GradedRun]) -> list[Row]:
    """One row per submission, ranked; of two runs of a submission on a track, the later one counts."""
    latest: dict[tuple[str, str], GradedRun] = {}
    for run in runs:
        key = (run.submission, run.track)
        if key not in latest or run.graded_at >= latest[key].graded_at:
            latest[key] = run
    rows = []
    for name in sorted({run.submission for run in latest.values()}):
        mine = [run for (sub, _), run in latest.items() if sub == name]
        authors = tuple(dict.fromkeys(a for run in mine for a in run.authors))
        rows.append(Row(name, authors, {r.track: r.score for r in mine},
                        {r.track: r.status for r in sorted(mine, key=lambda r: COLUMNS.index(r.track))},
                        sum(r.wall_s for r in mine), {r.track: r.graded_at for r in mine},
                        {r.track: r.detail for r in mine}))

    def rank_key(row: Row) -> tuple[bool, float, bool, float, str]:
        all_around, mean = row.scores.get(ALL_AROUND), row.track_mean
        return (all_around is None, -(all_around or 0.0), mean is None, -(mean or 0.0), row.submission)

    return sorted(rows, key=rank_key)


def _cell(value: float | None, graded: bool) -> str:
    if not graded:
        return ""
    return "—" if value is None else f"{value:.4f}"


def to_markdown(rows: Sequence[Row]) -> str:
    headers = ["#", "submission", "authors", *(short_track(t) for t in COLUMNS), "verdict", "wall time"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for rank, row in enumerate(rows, start=1):
        scores = [_cell(row.scores.get(t), t in row.scores) for t in COLUMNS]
        cells = [str(rank), row.submission, ", ".join(row.authors), *scores, row.verdict, f"{row.wall_s / 60:.1f} min"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines.append("Scores of runs with a failure verdict are shown as —; an empty cell: not graded on that track.")
    return "\n".join(lines)


def to_csv(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "submission", "authors", *COLUMNS, *(f"verdict:{short_track(t)}" for t in COLUMNS),
                     "wall_s"])
    for rank, row in enumerate(rows, start=1):
        scores = ["" if row.scores.get(t) is None else f"{row.scores[t]:.6f}" for t in COLUMNS]
        verdicts = [row.verdicts.get(t, "") for t in COLUMNS]
        writer.writerow([rank, row.submission, ";".join(row.authors), *scores, *verdicts, f"{row.wall_s:.3f}"])
    return out.getvalue()
