"""Scoring: what a question is, how an answer is read, and what it scores, the official way.

Owns:
    data.py        ``Question``; loading and validating data files (JSON Lines, file and line in every error);
                   the track and task-type names
    parsers.py     the official parsers: raw model output -> ``Parsed`` value and whether the parse failed
    targets.py     the other way round: a truth -> the answer string the official parser reads back as it
                   (what fine-tuning trains on)
    metrics.py     per-sample metrics as pure functions, the metric registry, aggregation
    embeddings.py  finding the embedding models offline, embedding texts, the truth-embedding cache
    scorer.py      ``score_outputs``: parse, score, aggregate per task, track and all-around (``RunResult``)

May import: nothing of the kit but ``submission.errors``. Everything else (harness, grading, reports)
builds on this package; nothing here knows how the answers were made.

Public names (import them from the module, or from this package): Question, load_questions,
iter_json_lines, TRACKS, ALL_AROUND, short_track, Parsed, parse, build_target, TargetError, get_metric,
aggregate, ScoringConfig, RunResult, TaskResult, SampleScore, check_scoring_ready, score_outputs.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "data": ("Question", "load_questions", "iter_json_lines", "TRACKS", "ALL_AROUND", "short_track"),
    "parsers": ("Parsed", "parse"),
    "targets": ("build_target", "TargetError"),
    "metrics": ("get_metric", "aggregate"),
    "scorer": ("ScoringConfig", "RunResult", "TaskResult", "SampleScore", "check_scoring_ready", "score_outputs"),
})
