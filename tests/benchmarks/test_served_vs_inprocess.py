"""The served-vs-in-process benchmark's pieces on small real models: the tiny random Llama in process and a
ServedModel on the scripted server, answering the same grader-order batches in turns."""

from __future__ import annotations

import pytest
from kit_paths import TESTS

from benchmarks import served_vs_inprocess as bench
from submission.scoring.data import Question

TRACK = "amazon-kdd-cup-24-understanding-shopping-concepts"


def test_every_model_answers_every_question_in_turns(tiny_llama_dir):
    from submission.backends.served.model import ServedModel
    from submission.backends.transformers import TransformersModel

    questions = [Question(0, "Describe a tent.\nOutput: ", False, task_name="t0", track=TRACK),
                 Question(1, "Q?\n0. a\n1. b\nAnswer: ", True, task_name="t1", track=TRACK),
                 Question(2, "Q2?\n0. a\n1. b\n2. c\nAnswer: ", True, task_name="t1", track=TRACK)]
    server = TESTS / "fake_models" / "openai_server.py"
    served = ServedModel(launch=f"{{python}} {server} --host {{host}} --port {{port}} --features structured_outputs",
                         shutdown_grace_s=1, batch_size=2)
    try:
        models = {"in-process": TransformersModel(weights=str(tiny_llama_dir), batch_size=2,
                                                  max_new_tokens={"generation": 3}), "served": served}
        answers = bench.answer_interleaved(models, questions)
    finally:
        served.close()
    assert all(sorted(a.outputs) == [0, 1, 2] and a.seconds > 0 for a in answers.values())
    assert answers["served"].outputs[1] in ("0", "1") and answers["served"].outputs[2] in ("0", "1", "2")
    assert sum(answers["served"].per_track.values()) == pytest.approx(answers["served"].seconds)


def test_without_the_development_split_it_says_so_and_exits_77(tmp_path, capsys):
    assert bench.main(["--data", str(tmp_path / "development.json")]) == 77
    assert "is not present" in capsys.readouterr().err
