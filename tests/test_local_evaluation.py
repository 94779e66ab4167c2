"""local_evaluation.py end to end with real models: outputs, re-scoring, and errors that keep predictions."""

import json
import subprocess
import sys
import textwrap

import pytest
from kit_paths import ROOT, SAMPLE_DATA

import local_evaluation

DUMMY = "models.dummy_model:DummyModel"


@pytest.fixture(scope="module")
def dummy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert local_evaluation.main(["--model", DUMMY, "--output-dir", str(out), "--seed", "3"]) == 0
    return out


def load_results(out):
    return json.loads((out / "results.json").read_text())


def test_run_writes_results_and_one_prediction_per_row(dummy_run):
    results = load_results(dummy_run)
    for key in ("tasks", "tracks", "all_around", "task_mean", "data_file", "kit_version", "git_revision",
                "packages", "seed"):
        assert key in results
    assert results["data_file"].endswith("data/sample.json") and results["seed"] == 3
    task = next(iter(results["tasks"].values()))
    assert set(task) >= {"score", "metric", "task_type", "track", "n", "parse_failures"}
    records = [json.loads(line) for line in (dummy_run / "predictions.jsonl").read_text().splitlines()]
    n = sum(1 for line in SAMPLE_DATA.read_text().splitlines() if line.strip())
    assert sorted(r["row"] for r in records) == list(range(n))  # duplicate prompts stay separate rows
    assert all({"row", "output", "parsed", "score", "parse_failed", "batch"} <= set(r) for r in records)


def test_rescoring_saved_predictions_gives_the_same_scores(dummy_run, tmp_path):
    minimal = tmp_path / "minimal.jsonl"
    records = [json.loads(line) for line in (dummy_run / "predictions.jsonl").read_text().splitlines()]
    minimal.write_text("".join(json.dumps({"row": r["row"], "output": r["output"]}) + "\n" for r in records))
    out = tmp_path / "rescored"
    assert local_evaluation.main(["--predictions", str(minimal), "--output-dir", str(out)]) == 0
    first, again = load_results(dummy_run), load_results(out)
    assert again["tasks"] == first["tasks"]
    assert (again["all_around"], again["task_mean"]) == (first["all_around"], first["task_mean"])


def test_same_seed_same_answers(dummy_run, tmp_path):
    assert local_evaluation.main(["--model", DUMMY, "--output-dir", str(tmp_path), "--seed", "3"]) == 0
    def outputs(folder):
        return [json.loads(line)["output"] for line in (folder / "predictions.jsonl").read_text().splitlines()]

    assert outputs(tmp_path) == outputs(dummy_run)


def write_module(tmp_path, monkeypatch, source):
    (tmp_path / "fakemodels.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fakemodels", None)


def test_wrong_number_of_answers_stops_with_a_clear_error_and_keeps_earlier_batches(tmp_path, monkeypatch, capsys):
    write_module(tmp_path, monkeypatch, """
        class ShortOnThirdBatch:
            calls = 0
            def get_batch_size(self):
                return 4
            def batch_predict(self, batch, is_multiple_choice):
                ShortOnThirdBatch.calls += 1
                answers = ["1"] * len(batch["prompt"])
                return answers[:-1] if ShortOnThirdBatch.calls == 3 else answers
    """)
    out = tmp_path / "out"
    assert local_evaluation.main(["--model", "fakemodels:ShortOnThirdBatch", "--output-dir", str(out)]) == 1
    assert "returned 3 responses for 4 prompts" in capsys.readouterr().err
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 8


@pytest.mark.parametrize("source,message", [
    ("class M:\n    def get_batch_size(self):\n        return 17\n", "get_batch_size() returned 17"),
    ("class M:\n    def get_batch_size(self):\n        return 2\n"
     "    def batch_predict(self, batch, is_mc):\n        return [1] * len(batch['prompt'])\n",
     "response 0 is int"),
])
def test_interface_violations_are_named(tmp_path, monkeypatch, capsys, source, message):
    write_module(tmp_path, monkeypatch, source)
    assert local_evaluation.main(["--model", "fakemodels:M", "--output-dir", str(tmp_path / "o")]) == 1
    assert message in capsys.readouterr().err


def test_bad_inputs_exit_2_with_the_fix(tmp_path, monkeypatch, capsys):
    write_module(tmp_path, monkeypatch, "X = 1\n")
    assert local_evaluation.main(["--model", "fakemodels:UserModel", "--output-dir", str(tmp_path / "o")]) == 2
    assert "defines no UserModel; add `UserModel = YourModelClass` (the class, not an instance)" in \
        capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"input_field": 1}\n')
    assert local_evaluation.main(["--data", str(bad), "--model", DUMMY]) == 2
    assert "bad.json:1: missing field(s)" in capsys.readouterr().err


def test_command_line_prints_the_table(tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "local_evaluation.py"), "--model", DUMMY, "--limit", "12",
         "--output-dir", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "data: " in proc.stdout and "sample split" in proc.stdout
    assert "all-around score (over 1 of 4 tracks):" in proc.stdout
    assert "task mean (the official local evaluator's 'Overall Score')" in proc.stdout
    assert load_results(out)["n_questions"] == 12
