"""Fine-tuning's evaluation is the evaluation pipeline: for the same model and questions it writes the run
folder local_evaluation.py writes (the same results.json fields, answers and scores)."""

import json

import local_evaluation
from submission.cli.output import REPORTER
from submission.environment import EVALUATED_MODEL_CONFIG as CONFIG_ENV
from submission.training.evaluated_model import SPEC
from submission.training.evaluation import evaluate_config, plan_evaluation


def test_the_evaluation_of_a_config_writes_the_run_folder_local_evaluation_writes(tiny_base, data_files, tmp_path,
                                                                                monkeypatch):
    plan = plan_evaluation(data_files["eval"], seed=0)
    evaluated = evaluate_config(plan, tiny_base, tmp_path / "base", "base", REPORTER)
    monkeypatch.setenv(CONFIG_ENV, str(tiny_base))
    assert local_evaluation.main(["--model", SPEC, "--data", str(data_files["eval"]),
                                  "--output-dir", str(tmp_path / "local")]) == 0
    mine, theirs = evaluated.results, json.loads((tmp_path / "local" / "results.json").read_text())
    assert set(mine) == set(theirs) and set(mine["timings"]) == set(theirs["timings"])
    assert mine["tasks"] == theirs["tasks"] and mine["verdict"] == theirs["verdict"] and evaluated.ok
    assert mine["limits"] == theirs["limits"] and mine["model"] == f"base: {tiny_base}"
    outputs = [[json.loads(line)["output"] for line in (folder / "predictions.jsonl").open()]
               for folder in (tmp_path / "base", tmp_path / "local")]
    assert outputs[0] == outputs[1] and len(outputs[0]) == 4
