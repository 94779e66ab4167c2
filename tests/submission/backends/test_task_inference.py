"""Task-type inference and output shaping: tables of prompts and raw texts, checked with the official parsers."""

from __future__ import annotations

import json
import random

import pytest

from submission.backends.task_inference import (
    GENERATION,
    NER,
    RANKING,
    RETRIEVAL,
    answer_complete,
    infer_task_type,
    listed_ids,
    mc_choices,
    shape_generation,
    shape_multiple_choice,
    shape_ner,
    shape_output,
    shape_ranking,
    shape_retrieval,
)
from submission.scoring.parsers import parse


def numbered(n: int, start: int = 1, sep: str = ". ") -> str:
    return "\n".join(f"{i}{sep}candidate {i}" for i in range(start, start + n))


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Header\n1. a\n2. b\n3. c\nOutput: ", [1, 2, 3]),
        ("Aspect List: \n1.comfort\n2.fit\n3.value\n", [1, 2, 3]),  # no space after the dot
        ("0. red\n1. blue\n2. green\n3. black\nAnswer: ", [0, 1, 2, 3]),
        ("Description:\n1. waterproof\n2. light\n\nOptions:\n0. tent\n1. stove\n2. lamp\n3. mat\n", [0, 1, 2, 3]),
        ("Length 2.5 inches\n3.5 inches wide\n", []),  # decimals are not list items
        ("1. only one item\n", []),
        ("no list at all", []),
        ("1. a\n2. b\n4. d\n5. e\n6. f\n", [4, 5, 6]),  # the last run of consecutive numbers
    ],
)
def test_listed_ids(prompt, expected):
    assert listed_ids(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Q?\n0. a\n1. b\n2. c\n3. d\nAnswer: ", [0, 1, 2, 3]),
        ("Q?\n0. yes\n1. no\nAnswer: ", [0, 1]),
        ("Evaluate the review on a scale of 1 to 5, with 1 being very negative.\nAnswer: ", [1, 2, 3, 4, 5]),
        ("Which one fits best?\nAnswer: ", [0, 1, 2, 3]),  # no options listed: the official 0..3
        ("Pick one\n5. a\n6. b\nAnswer: ", [0, 1, 2, 3]),  # a list not starting at 0 or 1 is not the options
    ],
)
def test_mc_choices(prompt, expected):
    assert mc_choices(prompt) == expected


RETRIEVAL_PROMPTS = [
    f"You are given a numbered list of 15 review snippets. Please select 3 snippets.\n{numbered(15)}\nOutput: ",
    f"Please choose three aspects from the list that are covered by the review.\n{numbered(10, sep='.')}\nOutput: ",
    f"What is most likely to be the keyword of your next query? Output ONLY three numbers separated with "
    f"comma.\n\nCandidate Query List:\n{numbered(10)}\nOutput: ",
    f"The following numbered list contains 12 products.\n{numbered(12)}\nYou should output 3 numbers that "
    f"correspond to the selected products.",
]
RANKING_PROMPTS = [
    f"Given the following numbered list of 5 products, please rank the products according their relevance "
    f"with the query.\n{numbered(5)}\nYou should output a permutation of 1 to 5.",
    f"Re-rank these five results by how well they match the query.\n{numbered(5)}\nOutput: ",
]
NER_PROMPTS = [
    "Please extract phrases from the query that correspond to the entity type 'brand'.\nQuery: acme tent\nOutput: ",
    "Identify all named entities of type color in: red running shoes.\nOutput: ",
]
GENERATION_PROMPTS = [
    "Instructions: Explain the product category name\nInput: Watch Band\nOutput:",
    "Generate an adequate title for the product when it appears on a German online shopping website.\nOutput: ",
    "Please extract the keyphrase from the review that mentions the given aspect.\nReview: Soft.\nOutput: ",
    "Write a short description for this product.\nFeatures:\n1. waterproof\n2. light\nOutput: ",
]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [(p, RETRIEVAL) for p in RETRIEVAL_PROMPTS]
    + [(p, RANKING) for p in RANKING_PROMPTS]
    + [(p, NER) for p in NER_PROMPTS]
    + [(p, GENERATION) for p in GENERATION_PROMPTS],
)
def test_infer_task_type(prompt, expected):
    assert infer_task_type(prompt) == expected


OFFICIAL_TYPE = {"named_entity_recognition": NER}


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_question_of_the_development_split_is_typed_right(dev_path):
    rows = _rows(dev_path)
    for row in rows:
        prompt = row["input_field"]
        if row["is_multiple_choice"]:
            assert int(row["output_field"]) in mc_choices(prompt), row["task_name"]
        else:
            assert infer_task_type(prompt) == OFFICIAL_TYPE.get(row["task_type"], row["task_type"]), row["task_name"]


def test_every_question_of_the_sample_split_is_typed_right():
    from tests.conftest import SAMPLE_DATA

    if not SAMPLE_DATA.is_file():
        pytest.skip(f"{SAMPLE_DATA} is absent")
    for row in _rows(SAMPLE_DATA):
        prompt = row["input_field"]
        if row["is_multiple_choice"]:
            assert int(row["output_field"]) in mc_choices(prompt), row["task_name"]
        else:
            assert infer_task_type(prompt) == OFFICIAL_TYPE.get(row["task_type"], row["task_type"]), row["task_name"]


@pytest.mark.parametrize(
    ("text", "ids", "expected"),
    [
        ("6, 9, 15", list(range(1, 16)), "6, 9, 15"),
        ("The answer is 6,6,9 and then 2", list(range(1, 16)), "6, 9, 2"),
        ("16, 0, 7", list(range(1, 11)), "7, 1, 2"),  # out-of-list ids dropped, topped up in order
        ("", list(range(1, 11)), "1, 2, 3"),
        ("three, five", list(range(1, 11)), "1, 2, 3"),
        ("10 9 8 7", list(range(1, 11)), "10, 9, 8"),
        ("2", [1, 2], "2, 1"),  # a list shorter than three
    ],
)
def test_shape_retrieval(text, ids, expected):
    assert shape_retrieval(text, ids) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3, 1, 2, 5, 4", "3, 1, 2, 5, 4"),
        ("3, 3, 1", "3, 1, 2, 4, 5"),  # repeats dropped, the rest filled in listed order
        ("Ranking: 5 > 4", "5, 4, 1, 2, 3"),
        ("7, 0, 12", "1, 2, 3, 4, 5"),
        ("", "1, 2, 3, 4, 5"),
    ],
)
def test_shape_ranking(text, expected):
    assert shape_ranking(text, [1, 2, 3, 4, 5]) == expected


def test_shaped_ids_always_parse_to_valid_ids_for_random_text():
    rng = random.Random(7)
    alphabet = "0123456789 ,.;abc\n-[]'"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        n = rng.randint(3, 15)
        ids = list(range(1, n + 1))
        retrieved = parse("retrieval", shape_retrieval(text, ids)).value
        assert len(retrieved) == len(set(retrieved)) == 3 and set(retrieved) <= set(ids), text
        ranked = parse("ranking", shape_ranking(text, [1, 2, 3, 4, 5])).value
        assert sorted(ranked) == [1, 2, 3, 4, 5], text


@pytest.mark.parametrize(
    ("text", "expected", "parsed"),
    [
        ("acme, contoso", "acme, contoso", ["acme", "contoso"]),
        ("Output: acme\nMore text on a second line", "acme", ["acme"]),
        ("['acme', 'contoso']", "acme, contoso", ["acme", "contoso"]),
        ("[acme, contoso]", "acme, contoso", ["acme", "contoso"]),
        ('"acme", "acme", contoso.', "acme, contoso", ["acme", "contoso"]),
        ("", "", []),
        ("  \n\n  tablette  ", "tablette", ["tablette"]),
        ("The phrases extracted from the query are:\nlumaforge, kovalo", "lumaforge, kovalo",
         ["lumaforge", "kovalo"]),
        ("The phrases extracted from the query are:", "", []),  # only a preamble: no false positive
        ("The entities are:\n1. zapatillas\n2. nike", "zapatillas", ["zapatillas"]),
        ("- damen regenjacke", "damen regenjacke", ["damen regenjacke"]),
    ],
)
def test_shape_ner(text, expected, parsed):
    assert shape_ner(text) == expected
    assert parse("named_entity_recognition", expected).value == parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  A watch band holds a watch.  ", "A watch band holds a watch."),
        ("First line\nsecond line\n\nNew paragraph", "First line\nsecond line"),
        ("\n\nLeading blank lines\n \nthen more", "Leading blank lines"),
        ("", ""),
    ],
)
def test_shape_generation(text, expected):
    assert shape_generation(text) == expected


def test_shape_output_dispatches_and_refuses_unknown_types():
    prompt = RANKING_PROMPTS[0]
    assert shape_output(RANKING, "2", prompt) == "2, 1, 3, 4, 5"
    assert shape_output(RETRIEVAL, "9", RETRIEVAL_PROMPTS[0]) == "9, 1, 2"
    with pytest.raises(ValueError, match="unknown task type 'multiple-choice'"):
        shape_output("multiple-choice", "1", prompt)


@pytest.mark.parametrize(
    ("task_type", "text", "ids", "expected"),
    [
        (NER, "acme", [], False),
        (NER, "\n\nacme", [], False),
        (NER, "acme\n", [], True),
        (NER, "The entities are:\n", [], False),  # a preamble is not the answer
        (NER, "The entities are:\nacme\n", [], True),
        (GENERATION, "First line\nsecond", [], False),
        (GENERATION, "\n\nFirst paragraph", [], False),
        (GENERATION, "First paragraph\n\n", [], True),
        (RETRIEVAL, "6, 9, 1", list(range(1, 16)), False),  # the last id may still become 15
        (RETRIEVAL, "6, 9, 15,", list(range(1, 16)), True),
        (RETRIEVAL, "6, 6, 9, 2 ", list(range(1, 16)), True),
        (RETRIEVAL, "6, 6, 9, 20 ", list(range(1, 16)), False),
        (RETRIEVAL, "2 ", [1, 2], False),  # only two listed: both are needed
        (RETRIEVAL, "2, 1,", [1, 2], True),
        (RANKING, "3, 1, 2, 5, 4", [1, 2, 3, 4, 5], False),
        (RANKING, "3, 1, 2, 5, 4.", [1, 2, 3, 4, 5], True),
    ],
)
def test_answer_complete(task_type, text, ids, expected):
    assert answer_complete(task_type, text, ids) is expected


def test_a_complete_answer_is_not_changed_by_more_text():
    """Stopping generation once ``answer_complete`` holds gives the answer the full text would give."""
    rng = random.Random(11)
    alphabet = "0123456789 ,.:\n\nab"
    prompts = {RETRIEVAL: RETRIEVAL_PROMPTS[0], RANKING: RANKING_PROMPTS[0], NER: NER_PROMPTS[0],
               GENERATION: GENERATION_PROMPTS[0]}
    checked = 0
    for _ in range(3000):
        task_type = rng.choice(list(prompts))
        prompt = prompts[task_type]
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        for cut in range(len(text) + 1):
            if answer_complete(task_type, text[:cut], listed_ids(prompt)):
                assert shape_output(task_type, text[:cut], prompt) == shape_output(task_type, text, prompt), text
                checked += 1
                break
    assert checked > 500


@pytest.mark.parametrize("text, prompt, expected", [
    ("2", "Q?\n0. a\n1. b\n2. c\n3. d\nAnswer: ", "2"),
    ("Answer: 3. d", "Q?\n0. a\n1. b\n2. c\n3. d\nAnswer: ", "3"),
    ("The best is 7, so 1", "Q?\n0. a\n1. b\n2. c\nAnswer: ", "1"),  # 7 is no option: the next number is
    ("I would say 4 stars", "Rate it on a scale of 1 to 5.\nAnswer: ", "4"),
    ("B", "Q?\n0. a\n1. b\nAnswer: ", "0"),  # no number: the first option, so the answer still parses
    ("10 of them", "Q?\n0. a\n1. b\nAnswer: ", "0"),  # "10" is not the option 1
])
def test_shape_multiple_choice_takes_the_first_allowed_number_else_the_first_option(text, prompt, expected):
    assert shape_multiple_choice(text, prompt) == expected
    assert parse("multiple-choice", shape_multiple_choice(text, prompt)).value == int(expected)
