"""Reports: the run folder, what results.json and the terminal say, intervals, compare, the HTML pages.

Owns:
    run_folder.py  ``write_run_folder``: the one writer of a scored run folder (local runs and the grader)
    reuse.py       an --output-dir given again: a folder holding a run refused (--resume, --overwrite),
                   links and FIFOs at the run folder's names refused, ``clear_run`` for --overwrite
    results.py     results.json and the scored predictions
    runstats.py    the harness part of results.json: verdict, limits, timings, memory, projection
    table.py       the terminal table
    intervals.py   bootstrap intervals and paired comparisons, scored the official way
    run_view.py    a scored run as the reports read it (``RunView``)
    charts.py      scores.png and the comparison chart (matplotlib, PNG bytes)
    pages.py       the Jinja2 environment (autoescape on) and the formatting both pages share
    html.py        report.html and scores.png (``python -m submission report``)
    comparison.py  two runs compared: paired bootstrap deltas and the questions that flipped
    compare.py     a comparison shown: the terminal table, the delta chart, compare.html
    templates/     the Jinja2 templates of both pages

May import: scoring and harness; never grading.

Public names: write_run_folder, results_dict, format_table, bootstrap, paired_bootstrap,
load_run_dir, write_reports, compare_runs, compare_folders, format_comparison, render_compare.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "run_folder": ("write_run_folder",),
    "results": ("results_dict",),
    "table": ("format_table",),
    "intervals": ("bootstrap", "paired_bootstrap"),
    "run_view": ("load_run_dir",),
    "html": ("write_reports",),
    "comparison": ("compare_runs", "compare_folders"),
    "compare": ("format_comparison", "render_compare"),
})
