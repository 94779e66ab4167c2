"""The judge against hostile models in local runs (issue 19): the supervisor times every batch itself, checks
every message, ends a broken channel with the ``protocol`` verdict (never a traceback, never a hang, memory
bounded), leaves nothing running when the model kills the kit's reaper, and writes results from its own
records. Real model processes throughout (tests/fake_models/hostile.py); each test failed before the judge
moved out of the model's process (checked against the tree at 334a88b)."""

from __future__ import annotations

import json
import resource

import pytest
from kit_paths import SAMPLE_DATA, TESTS
from test_hostile import recorded_pids, wait_dead
from test_runner import FAST, QUESTIONS, tiny_limits

import local_evaluation
from submission.harness.outcome import ModelSpec
from submission.harness.predictions import read_records
from submission.harness.protocol import MAX_LINE_BYTES
from submission.harness.runner import run_model


def run(tmp_path, model, limits=None, fail_batch=2, **env):
    spec = ModelSpec(model=f"fake_models.hostile:{model}", repo=str(TESTS),
                     env={"FAKE_FAIL_BATCH": str(fail_batch), **{k.upper(): str(v) for k, v in env.items()}})
    return run_model(spec, QUESTIONS, tmp_path / "out", limits or tiny_limits(tmp_path), FAST)


def kept(tmp_path) -> list[dict]:
    return read_records(tmp_path / "out" / "predictions.jsonl")


# ---------------------------------------------------------------- forged verdicts and clocks


def test_an_error_message_claiming_the_verdict_ok_is_a_protocol_verdict(tmp_path):
    outcome = run(tmp_path, "ForgesOkVerdict")
    assert outcome.verdict.status == "protocol", outcome.verdict
    assert "an error message with status 'ok'" in outcome.verdict.detail
    assert "while batch 2 (2 prompts) was asked" in outcome.verdict.detail
    assert outcome.n_answered == 4 and len(kept(tmp_path)) == 4


def test_the_judge_times_each_batch_itself_whatever_the_models_clocks_say(tmp_path):
    outcome = run(tmp_path, "FreezesItsClocks", tiny_limits(tmp_path), fail_batch=-1, fake_delay_s=0.3)
    assert outcome.verdict.ok, outcome.verdict
    assert len(outcome.batches) == 7 and all(b.latency_s >= 0.3 for b in outcome.batches)
    assert all(r["latency_s"] >= 0.3 for r in kept(tmp_path))


def test_a_message_claiming_the_batch_was_answered_cannot_stop_the_batch_clock(tmp_path):
    limits = tiny_limits(tmp_path, seconds_per_sample=0.4)  # 0.8 s per batch of 2; the model sleeps 2 s
    outcome = run(tmp_path, "ForgesAnsweredClock", limits, fake_delay_after_s=2)
    assert not outcome.verdict.ok
    assert outcome.verdict.status == "protocol" and 'a "answered" message' in outcome.verdict.detail
    assert outcome.n_answered == 4 and len(kept(tmp_path)) == 4


# ---------------------------------------------------------------- garbage and floods on the channel


@pytest.mark.parametrize("garbage, said", [
    (b"{not json\n", "a line that is not JSON: b'{not json'"),
    (b"[1, 2]\n", "a JSON line that is not a message"),
    (b'{"t": "answers", "b": 7, "i": 0, "out": ["3"]}\n', "answers for batch 7 while batch 2 was asked"),
    (b'{"t": "answers", "b": 2, "i": 0, "out": ["1", "2", "3"]}\n', "3 answers for batch 2 when 2 of its 2 were due"),
    (b'{"t": "answers", "b": 2, "i": 0, "out": [3, 4]}\n', "answer 0 of batch 2 that is not a string"),
    (b'{"t": "ready", "init_s": 0, "notes": []}\n', 'a "ready" message'),
    (b'{"t": "end"}\n', 'a "end" message'),
    (b'{"t": "info", "info": {}}\n' * 3, '"info" message number 3 (at most 2 are sent)'),
])
def test_garbage_on_the_channel_is_a_protocol_verdict_with_the_answers_so_far(tmp_path, garbage, said):
    outcome = run(tmp_path, "WritesGarbage", fake_garbage=repr(garbage), fake_hang=1)
    assert outcome.verdict.status == "protocol", outcome.verdict
    assert outcome.verdict.detail.startswith("the model's process sent ") and said in outcome.verdict.detail
    assert outcome.n_answered == 4 and [r["row"] for r in kept(tmp_path)] == [0, 1, 2, 4]


def test_answers_sent_twice_are_a_protocol_verdict(tmp_path):
    outcome = run(tmp_path, "SendsAnswersTwice")
    assert outcome.verdict.status == "protocol"
    assert "answers for batch 2 when no batch was being asked" in outcome.verdict.detail
    assert outcome.n_answered == 6  # the first copy answered batch 2 in full: it is kept


def test_an_endless_line_is_cut_at_the_cap_and_the_judges_memory_stays_bounded(tmp_path):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    limits = tiny_limits(tmp_path, seconds_per_sample=5)
    outcome = run(tmp_path, "FloodsChannel", limits, fake_flood_mb=300, fake_marker=tmp_path / "sent")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert outcome.verdict.status == "protocol", outcome.verdict
    assert f"a line of more than {MAX_LINE_BYTES:,} bytes" in outcome.verdict.detail
    assert outcome.n_answered == 4 and outcome.wall_s < 10  # at once, not at the batch's 10 s deadline
    assert grown < 3 * MAX_LINE_BYTES  # 300 MB were on their way: the judge held at most about one line


# ---------------------------------------------------------------- the kit's processes


def test_a_model_that_kills_the_reaper_is_crashed_and_nothing_it_started_survives(tmp_path):
    pids = tmp_path / "pids"
    outcome = run(tmp_path, "KillsItsReaper", fake_pid_file=pids)
    assert outcome.verdict.status == "crashed", outcome.verdict
    assert "the kit's reaper (the model's parent process) was killed" in outcome.verdict.detail
    assert len(recorded_pids(pids)) == 2 and wait_dead(recorded_pids(pids), timeout=5) == []
    assert outcome.n_answered == 4
    assert any("left running after the kit's reaper was killed" in note for note in outcome.notes)


# ---------------------------------------------------------------- the run folder comes from the judge's records


def test_results_come_from_the_judges_records_not_from_files_the_model_rewrote(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    straight, tampered = tmp_path / "straight", tmp_path / "tampered"
    common = ["--data", str(SAMPLE_DATA), "--limit", "12", "--no-limits"]
    assert local_evaluation.main(["--model", "fake_models.models:Deterministic", *common,
                                  "--output-dir", str(straight)]) == 0
    monkeypatch.setenv("FAKE_OUTPUT_DIR", str(tampered))
    monkeypatch.setenv("FAKE_FAIL_BATCH", "5")
    assert local_evaluation.main(["--model", "fake_models.hostile:RewritesItsPredictions", *common,
                                  "--output-dir", str(tampered)]) == 0
    mine, theirs = (json.loads((folder / "results.json").read_text()) for folder in (tampered, straight))
    assert mine["all_around"] == theirs["all_around"] and mine["tasks"] == theirs["tasks"]
    assert mine["verdict"]["detail"] != "forged"

    def outputs(folder):
        return [(r["row"], r["output"]) for r in read_records(folder / "predictions.jsonl")]

    assert outputs(tampered) == outputs(straight)
