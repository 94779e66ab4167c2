"""aicrowd.json validation: a table of files and the error each one gets."""

import json

import pytest
from kit_paths import ROOT

from submission.errors import ConfigError
from submission.grading.aicrowd import load_aicrowd, loads_aicrowd

GOOD = {"challenge_id": "amazon-kdd-cup-24-multi-lingual-abilities", "authors": ["alice", "bob"], "gpu": True,
        "description": "mine"}


def test_a_valid_file_gives_track_profile_and_authors():
    config = loads_aicrowd(json.dumps(GOOD), "aicrowd.json")
    assert config.track == "amazon-kdd-cup-24-multi-lingual-abilities" and config.authors == ("alice", "bob")
    assert config.profile_name == "phase2" and not config.placeholder_authors


def test_gpu_false_gives_the_cpu_profile():
    assert loads_aicrowd(json.dumps({**GOOD, "gpu": False}), "a").profile_name == "cpu"


@pytest.mark.parametrize("change, expected", [
    ({"challenge_id": "amazon-kdd-cup-24-multilingual-abilities"},
     "unknown challenge_id \"amazon-kdd-cup-24-multilingual-abilities\"; did you mean "
     "'amazon-kdd-cup-24-multi-lingual-abilities'? valid: amazon-kdd-cup-24-understanding-shopping-concepts, "),
    ({"challenge_id": 3}, "unknown challenge_id 3; valid: amazon-kdd-cup-24-understanding-shopping-concepts"),
    ({"authors": []}, "'authors' must be a non-empty list of AIcrowd usernames, got []"),
    ({"authors": "alice"}, "'authors' must be a non-empty list"),
    ({"authors": ["alice", " "]}, "'authors' must be a non-empty list"),
    ({"gpu": "yes"}, "'gpu' must be true (the GPU grader) or false (CPU only), got \"yes\""),
    ({"challange_id": "x"}, "unknown key 'challange_id'; did you mean 'challenge_id'?"),
    ({"description": 5}, "'description' must be a string"),
])
def test_invalid_values_are_refused_with_the_fix(change, expected):
    with pytest.raises(ConfigError) as error:
        loads_aicrowd(json.dumps({**GOOD, **change}), "repo/aicrowd.json")
    assert str(error.value).startswith("repo/aicrowd.json: ") and expected in str(error.value)


@pytest.mark.parametrize("missing", ["authors", "challenge_id", "gpu"])
def test_a_missing_key_is_named_with_an_example(missing):
    raw = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ConfigError, match=f"missing '{missing}'; e.g. "):
        loads_aicrowd(json.dumps(raw), "aicrowd.json")


def test_bad_json_names_the_line(tmp_path):
    (tmp_path / "aicrowd.json").write_text('{\n  "authors": ["a"],\n  "gpu": true,\n}\n')
    with pytest.raises(ConfigError, match=r"aicrowd.json:4: not valid JSON"):
        load_aicrowd(tmp_path)


def test_a_missing_file_says_what_it_needs(tmp_path):
    with pytest.raises(ConfigError, match="no such file; a submission needs an aicrowd.json"):
        load_aicrowd(tmp_path)


def test_the_kits_own_file_is_valid_but_has_the_placeholder_author():

    config = load_aicrowd(ROOT)
    assert config.placeholder_authors
