"""Loading data files: both formats, and a clear error for each kind of bad line."""

import json

import pytest

from submission.errors import DataError
from submission.scoring.data import TRACKS, load_questions

GOOD = {
    "input_field": "Which colour?\n0. red\n1. blue\nAnswer: ", "output_field": 1, "task_name": "t1",
    "task_type": "multiple-choice", "metric": "accuracy", "is_multiple_choice": True, "track": TRACKS[0],
}


def write_lines(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def test_loads_development_format_with_row_as_line_number(tmp_path):
    second = dict(GOOD, output_field=0)
    path = write_lines(tmp_path / "d.json", GOOD, "", second)
    questions = load_questions(path)
    assert [q.row for q in questions] == [0, 2]
    assert questions[1].truth == 0 and questions[1].is_multiple_choice and questions[1].has_truth


def test_loads_test_format(tmp_path):
    path = write_lines(tmp_path / "t.json", {"input_field": "hi", "is_multiple_choice": False})
    (question,) = load_questions(path)
    assert question.prompt == "hi" and not question.has_truth and question.metric is None


def test_test_format_is_refused_where_truth_is_required(tmp_path):
    path = write_lines(tmp_path / "t.json", {"input_field": "hi", "is_multiple_choice": False})
    with pytest.raises(DataError, match=r"t.json:1: missing field\(s\) 'output_field', 'task_name'"):
        load_questions(path, require_truth=True)


@pytest.mark.parametrize("line,message", [
    ('{"input_field": "x",', r"d.json:2: not valid JSON"),
    ("[1, 2]", r"d.json:2: expected a JSON object"),
    (dict(GOOD, task_type="multiple_choice"),
     r"d.json:2: unknown task_type 'multiple_choice'; did you mean 'multiple-choice'"),
    (dict(GOOD, metric="acuracy"), r"d.json:2: unknown metric 'acuracy'; did you mean 'accuracy'"),
    (dict(GOOD, track="amazon-kdd-cup-24-all-around"), r"d.json:2: unknown track"),
    (dict(GOOD, output_field="1"), r"d.json:2: field 'output_field' must be an int .* for metric 'accuracy', got str"),
    (dict(GOOD, metric="ndcg"), r"d.json:2: metric 'ndcg' scores ranking tasks, but task_type is 'multiple-choice'"),
    (dict(GOOD, is_multiple_choice=False), r"d.json:2: is_multiple_choice must be true exactly"),
    (dict(GOOD, is_multiple_choice="yes"), r"d.json:2: field 'is_multiple_choice' must be true or false"),
    ({k: v for k, v in GOOD.items() if k != "track"}, r"d.json:2: missing field\(s\) 'track'"),
    (dict(GOOD, task_type="retrieval", metric="hit rate@3", is_multiple_choice=False, output_field=[]),
     r"must be a non-empty list of ints"),
    (dict(GOOD, task_type="ranking", metric="ndcg", is_multiple_choice=False, output_field=[1, "a"]),
     r"must be a non-empty list of numbers"),
    (dict(GOOD, task_type="named_entity_recognition", metric="micro f1", is_multiple_choice=False, output_field="a"),
     r"must be a list of strings"),
    (dict(GOOD, task_type="generation", metric="sent-transformer", is_multiple_choice=False, output_field=3),
     r"must be a string or a non-empty list of strings"),
])
def test_bad_lines_are_named(tmp_path, line, message):
    path = write_lines(tmp_path / "d.json", GOOD, line)
    with pytest.raises(DataError, match=message):
        load_questions(path)


def test_a_task_must_keep_one_track(tmp_path):
    path = write_lines(tmp_path / "d.json", GOOD, dict(GOOD, track=TRACKS[1]))
    with pytest.raises(DataError, match="task 't1' has track .* at row 0 but .* at row 1"):
        load_questions(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="no such data file$"):
        load_questions(tmp_path / "nope.json")
    (tmp_path / "development.json").write_text("")
    with pytest.raises(DataError, match=f"no such data file; did you mean '{tmp_path / 'development.json'}'"):
        load_questions(tmp_path / "develpment.json")  # a typo
    with pytest.raises(DataError, match="holds no questions"):
        load_questions(write_lines(tmp_path / "e.json", ""))


def test_the_sample_split_covers_what_it_promises():
    from kit_paths import SAMPLE_DATA

    questions = load_questions(SAMPLE_DATA, require_truth=True)
    assert len(questions) >= 40
    assert {q.task_type for q in questions} == {
        "multiple-choice", "retrieval", "ranking", "named_entity_recognition", "generation"}
    assert {q.track for q in questions} == set(TRACKS)
    assert {q.metric for q in questions} == {
        "accuracy", "hit rate@3", "ndcg", "micro f1", "rougel", "sent-transformer", "bleu", "jp-bleu"}
    prompts = [q.prompt for q in questions]
    assert len(set(prompts)) < len(prompts), "the sample keeps a duplicated prompt to test joining by row"


def test_the_official_split_loads(dev_path):
    questions = load_questions(dev_path, require_truth=True)
    assert len(questions) == 96
    assert len({q.task_name for q in questions}) == 18


# --- strange files (the hardening issue) ----------------------------------------------------------

NDCG = {"input_field": "Rank these:\n1. a\n2. b\n3. c\n", "task_name": "rank", "task_type": "ranking",
        "metric": "ndcg", "is_multiple_choice": False, "track": TRACKS[2]}


@pytest.mark.parametrize("weights", ["[1, NaN, 0]", "[Infinity, 1, 0]", "[1, -Infinity, 0]"])
def test_non_finite_json_numbers_are_refused_with_file_and_line(tmp_path, weights):
    line = json.dumps(NDCG)[:-1] + f', "output_field": {weights}}}'
    path = write_lines(tmp_path / "d.json", GOOD, line)
    with pytest.raises(DataError, match=r"d.json:2: not valid JSON \((NaN|Infinity|-Infinity) is not a JSON number"):
        load_questions(path)


@pytest.mark.parametrize("weights, item", [([1, 64, 0], "item 1 is 64"), ([2, 1, 1e999], "item 2 is inf"),
                                           ([-1, 0, 0], "item 0 is -1")])
def test_ndcg_weights_the_official_maths_cannot_score_are_refused(tmp_path, weights, item):
    line = json.dumps(NDCG)[:-1] + f', "output_field": {json.dumps(weights).replace("Infinity", "1e999")}}}'
    path = write_lines(tmp_path / "d.json", line)
    with pytest.raises(DataError, match=rf"d.json:1: field 'output_field' {item}; an nDCG relevance weight must be "
                                        r"a finite number from 0 to 63"):
        load_questions(path)


def test_ndcg_weights_up_to_63_load(tmp_path):
    path = write_lines(tmp_path / "d.json", dict(NDCG, output_field=[63, 1.5, 0]))
    assert load_questions(path)[0].truth == [63, 1.5, 0]


@pytest.mark.parametrize("field", ["output_field", "input_field"])
def test_a_lone_surrogate_escape_in_a_text_is_refused(tmp_path, field):
    record = dict(GOOD, task_type="generation", metric="rougel", is_multiple_choice=False, output_field="fine")
    record[field] = "a \ud800 b"
    path = tmp_path / "d.json"
    path.write_text(json.dumps(record) + "\n", encoding="ascii")  # json.dumps escapes it: \ud800
    with pytest.raises(DataError, match=rf"d.json:1: field '{field}' holds a lone surrogate escape"):
        load_questions(path)


@pytest.mark.parametrize("bad, byte", [(b"\xff", "0xff"), ("caf\u00e9".encode("latin-1"), "0xe9")])
def test_a_file_that_is_not_utf8_names_the_file_line_and_byte_offset(tmp_path, bad, byte):
    first = (json.dumps(GOOD) + "\n").encode()
    second = json.dumps(dict(GOOD, task_name="tX")).encode().replace(b"tX", b"t" + bad)
    path = tmp_path / "d.json"
    path.write_bytes(first + second + b"\n")
    offset = len(first) + second.index(bytes([int(byte, 16)]))
    with pytest.raises(DataError, match=rf"d.json:2: not UTF-8 \(byte {byte} at byte offset {offset} of the file\)"):
        load_questions(path)


def test_a_utf8_byte_order_mark_at_the_start_is_accepted(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(GOOD) + "\n").encode())
    assert load_questions(path)[0].truth == 1
