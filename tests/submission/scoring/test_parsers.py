"""The official parsers' behaviour (starter kit 0.1.1), case by case, quirks included."""

import pytest

from submission.scoring.parsers import MAX_RESPONSE_CHARACTERS, parse

CASES = [
    # multiple choice: first character after strip, as an int; anything else is -1
    ("multiple-choice", "2", 2, False),
    ("multiple-choice", " 2", 2, False),
    ("multiple-choice", "\n 3", 3, False),
    ("multiple-choice", "10", 1, False),
    ("multiple-choice", "3. leash", 3, False),
    ("multiple-choice", "a", -1, True),
    ("multiple-choice", "Answer: 2", -1, True),
    ("multiple-choice", "", -1, True),
    ("multiple-choice", "\n ", -1, True),
    ("multiple-choice", "-1", -1, True),
    ("multiple-choice", "٣", 3, False),  # int() accepts other scripts' digits
    ("multiple-choice", "²", -1, True),  # isnumeric but int() refuses it
    # ranking: digits, commas, spaces; pieces int() accepts and <= 5; first 5; duplicates -> []
    ("ranking", "1, 2, 3, 4, 5", [1, 2, 3, 4, 5], False),
    ("ranking", "[1, 2, 3, 4, 5]", [1, 2, 3, 4, 5], False),
    ("ranking", "1, 2, 2, 3", [], True),
    ("ranking", "1, 2, 4, aicrowd, 5", [1, 2, 4, 5], False),
    ("ranking", "The answer is: 1, 2, 3, 4, 5", [1, 2, 3, 4, 5], False),
    ("ranking", ",1,2,3,4,5", [1, 2, 3, 4, 5], False),
    ("ranking", "1 2", [], True),
    ("ranking", "\n", [], True),
    ("ranking", "", [], True),
    ("ranking", "3, 7, 1, 12, 2", [3, 1, 2], False),
    ("ranking", "0, 1", [0, 1], False),
    ("ranking", "5,4,3,2,1,1", [5, 4, 3, 2, 1], False),  # cut to 5 before the duplicate check
    ("ranking", "1\n2\n3", [], True),
    ("ranking", "1.5, 2", [2], False),  # "15" > 5 is dropped
    # retrieval: same cleaning, no <= 5 filter, first 3, duplicates allowed
    ("retrieval", "100, 200, 300", [100, 200, 300], False),
    ("retrieval", "100, 200", [100, 200], False),
    ("retrieval", "100, 200, jjhg", [100, 200], False),
    ("retrieval", "100,           200, \n\n\n 300", [100, 200, 300], False),
    ("retrieval", "100, 200, 300, 400", [100, 200, 300], False),
    ("retrieval", "6, 6, 9", [6, 6, 9], False),
    ("retrieval", "\n \n \n", [], True),
    ("retrieval", "none of them", [], True),
    ("retrieval", "[6, 9, 15]", [6, 9, 15], False),
    # named entity recognition: a literal list of strings, else comma split, strip, drop empties
    ("named_entity_recognition", "['New York', 'ShopBench', 'Amazon']", ["New York", "ShopBench", "Amazon"], False),
    ("named_entity_recognition", "New York, ShopBench, Amazon", ["New York", "ShopBench", "Amazon"], False),
    ("named_entity_recognition", "[New York, ShopBench, Amazon]", ["[New York", "ShopBench", "Amazon]"], False),
    ("named_entity_recognition", "\n, New York, ShopBench", ["New York", "ShopBench"], False),
    ("named_entity_recognition", " ", [], False),
    ("named_entity_recognition", "[4, 1, 2]", ["[4", "1", "2]"], False),
    ("named_entity_recognition", "['a', 1]", ["['a'", "1]"], False),
    ("named_entity_recognition", "[' padded ']", [" padded "], False),
    ("named_entity_recognition", "'tablette'", ["'tablette'"], False),
    # generation: stripped
    ("generation", "This is a generated response.", "This is a generated response.", False),
    ("generation", "\nThe answer is \n\n good.\n\n\n", "The answer is \n\n good.", False),
    ("generation", "\n \n", "", False),
]


@pytest.mark.parametrize("task_type,response,expected,failed", CASES)
def test_official_parser_behaviour(task_type, response, expected, failed):
    parsed = parse(task_type, response)
    assert parsed.value == expected
    assert parsed.failed == failed


def test_responses_are_cut_to_5000_characters():
    long_tail = "x" * (MAX_RESPONSE_CHARACTERS - 3) + "abc, 4"
    assert parse("retrieval", "1, " + "9" * 10).value == [1, 9999999999]
    assert parse("generation", long_tail).value == "x" * (MAX_RESPONSE_CHARACTERS - 3) + "abc"
    assert parse("ranking", " " * MAX_RESPONSE_CHARACTERS + "1, 2").value == []


def test_non_string_response_is_refused():
    with pytest.raises(TypeError, match="must be a string"):
        parse("generation", 3)
