"""Strict, UTF-8-safe JSON writing: lone surrogates as escapes, NaN and Infinity as null."""

import json
import math

import pytest

from submission.jsonio import dumps, finite, printable, write_json


def strict(text):
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in strict JSON"))


def test_results_are_written_strictly_with_null_where_a_number_does_not_exist(tmp_path):
    path = tmp_path / "results.json"
    write_json(path, {"all_around": math.nan, "tracks": {"a": math.inf, "b": 0.5}, "tasks": [-math.inf, 1]})
    assert strict(path.read_text(encoding="utf-8")) == {"all_around": None, "tracks": {"a": None, "b": 0.5},
                                                        "tasks": [None, 1]}
    with pytest.raises(ValueError):
        dumps({"score": math.nan})  # the guard: finite() must come first
    assert finite((1.0, [math.nan])) == [1.0, [None]]


def test_text_is_kept_readable_and_a_lone_surrogate_round_trips_as_an_escape():
    assert dumps({"output": "caf\u00e9 \u65e5\u672c"}) == '{"output": "caf\u00e9 \u65e5\u672c"}'
    text = dumps({"output": "\ud800 caf\u00e9"})
    assert text.encode("utf-8") and "\\ud800" in text and json.loads(text)["output"] == "\ud800 caf\u00e9"
    assert printable("ok \ud800") == "ok \\ud800" and printable("caf\u00e9") == "caf\u00e9"


def test_json_lines_keep_text_readable_and_escape_only_the_records_with_a_lone_surrogate():
    from submission.jsonio import lines_bytes

    data = lines_bytes([{"output": "caf\u00e9"}, {"output": "\ud800x"}])
    first, second = data.decode("utf-8").splitlines()
    assert first == '{"output": "caf\u00e9"}' and second == '{"output": "\\ud800x"}'
    assert json.loads(second)["output"] == "\ud800x"
