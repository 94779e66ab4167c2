"""scores.png's value labels: inside the axes and clear of every whisker, at 1.0 too (the chart of a run that
answers everything right, and of a mixed run)."""

import json
import re

import pytest
from kit_paths import SAMPLE_DATA

from benchmarks.reference_grader import perfect_output
from submission.reports.charts import score_chart
from submission.reports.intervals import bootstrap
from submission.reports.results import results_dict, scored_records
from submission.reports.run_view import load_run_dir
from submission.scoring.data import load_questions
from submission.scoring.scorer import score_outputs

VALUE = re.compile(r"-?\d\.\d{3}")


def run_folder(folder, wrong_every: int | None):
    """A run folder of the sample split (its embedding task aside): every answer right, or every
    ``wrong_every``-th one wrong."""
    lines = [line for line in SAMPLE_DATA.read_text(encoding="utf-8").splitlines()
             if line.strip() and "sent-transformer" not in json.loads(line)["metric"]]
    folder.mkdir(parents=True)
    data = folder / "data.json"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    questions = load_questions(data, require_truth=True)
    outputs = {q.row: "0" if wrong_every and i % wrong_every == 0 else perfect_output(q)
               for i, q in enumerate(questions)}
    result = score_outputs(questions, outputs)
    records = scored_records(questions, outputs, result, {})
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    results = results_dict(result, {"data_file": str(data), "seed": 0, "model": "tests:Fixed"})
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return load_run_dir(folder)


def saved_figure(monkeypatch, make):
    """The matplotlib figure that ``make()`` saves as PNG."""
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig

    def spy(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    make()
    assert len(saved) == 1
    return saved[0]


def whisker_boxes(ax, renderer):
    """The display boxes of the error bars' lines and caps."""
    from matplotlib.collections import LineCollection
    from matplotlib.transforms import Bbox

    boxes = []
    for collection in ax.collections:
        if isinstance(collection, LineCollection):
            for segment in collection.get_segments():
                (x0, y0), (x1, y1) = ax.transData.transform(segment)
                boxes.append(Bbox.from_extents(min(x0, x1) - 1, min(y0, y1) - 1, max(x0, x1) + 1, max(y0, y1) + 1))
    boxes += [line.get_window_extent(renderer) for line in ax.lines if line.get_marker() == "|"]
    return boxes


@pytest.mark.parametrize("wrong_every, all_around", [(None, 1.0), (3, None)])
def test_value_labels_lie_inside_the_axes_and_clear_of_the_whiskers(tmp_path, monkeypatch, wrong_every, all_around):
    view = run_folder(tmp_path / "run", wrong_every)
    if all_around is not None:
        assert view.results["all_around"] == all_around
    intervals = bootstrap(view.tasks, seed=0, resamples=200)
    fig = saved_figure(monkeypatch, lambda: score_chart(view, intervals))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the canvas savefig drew on, laid out the same way
    canvas.draw()
    renderer = canvas.get_renderer()
    n_labels = 0
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        whiskers = whisker_boxes(ax, renderer)
        assert whiskers or not ax.patches
        for label in (t for t in ax.texts if VALUE.fullmatch(t.get_text())):
            n_labels += 1
            extent = label.get_window_extent(renderer)
            assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1, \
                (label.get_text(), extent, box)
            assert not any(extent.overlaps(w) for w in whiskers), (label.get_text(), extent)
    assert n_labels == len(view.results["tasks"])
