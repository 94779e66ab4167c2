"""The served backend's settings and their loader: the defaults launch transformers serve, unknown keys and
bad values are refused with the file, the key, its line and the fix. (The shipped models/served.yaml is
tested with the participant's folder, tests/models.)"""

from __future__ import annotations

import pytest

from submission.backends.served.config import MC_METHODS, ServedSettings, load_served_settings
from submission.backends.settings import GenerationBudget, settings_from_mapping
from submission.errors import ConfigError


def from_mapping(data):
    return settings_from_mapping(ServedSettings, data)


def write(tmp_path, text: str):
    path = tmp_path / "served.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_defaults_launch_transformers_serve_on_smollm2_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_served_settings()
    assert config.launch.startswith("transformers serve {weights} --host {host} --port {port}")
    assert config.base_url is None and config.weights == "smollm2" and config.api == "chat"
    assert config.env == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    assert config.multiple_choice == MC_METHODS and config.max_new_tokens == GenerationBudget()
    assert config.base_dir == tmp_path


def test_an_unknown_key_is_refused_with_its_line_and_a_suggestion(tmp_path):
    path = write(tmp_path, "launch: x {host} {port}\nmax_concurency: 4\n")
    with pytest.raises(ConfigError) as error:
        load_served_settings(path)
    message = str(error.value)
    assert f"{path}, line 2" in message and "'max_concurency'" in message
    assert "did you mean 'max_concurrency'" in message


def test_a_bad_value_names_the_key_its_line_and_what_was_expected(tmp_path):
    path = write(tmp_path, "launch: x {host} {port}\n\napi: responses\n")
    with pytest.raises(ConfigError, match=r"line 3: api: expected one of chat, completions, found 'responses'"):
        load_served_settings(path)


@pytest.mark.parametrize("launch, expected", [
    ("vllm serve m --port {port}", "found no {host}"),
    ("vllm serve m --host {host}", "found no {port}"),
    ("vllm serve {model} --host {host} --port {port}", "unknown placeholder {model}"),
    ("vllm serve 'unclosed --host {host} --port {port}", "check its quotes"),
])
def test_a_launch_command_needs_host_and_port_and_only_known_placeholders(launch, expected):
    with pytest.raises(ConfigError, match=expected.replace("{", r"\{").replace("}", r"\}")):
        from_mapping({"launch": launch})


def test_exactly_one_of_launch_and_base_url():
    with pytest.raises(ConfigError, match="exactly one of them"):
        from_mapping({"launch": None})
    with pytest.raises(ConfigError, match="exactly one of them"):
        from_mapping({"launch": "x {host} {port}", "base_url": "http://127.0.0.1:1"})
    with pytest.raises(ConfigError, match="base_url: expected an http:// or https:// URL"):
        from_mapping({"base_url": "127.0.0.1:8000"})


def test_a_base_url_override_replaces_the_files_launch_command(tmp_path):
    path = write(tmp_path, "launch: x {host} {port}\nbase_url: null\n")
    config = load_served_settings(path, base_url="http://127.0.0.1:9", max_concurrency=4)
    assert config.launch is None and config.base_url == "http://127.0.0.1:9" and config.max_concurrency == 4
    assert from_mapping({"base_url": "http://127.0.0.1:9"}).launch is None  # replaces the default
    assert load_served_settings(write(tmp_path, "base_url: http://127.0.0.1:9\n")).launch is None


def test_multiple_choice_methods_are_a_known_list_and_budgets_merge(tmp_path):
    path = write(tmp_path, "launch: x {host} {port}\nmultiple_choice: [logit_bias, generate]\n"
                           "max_new_tokens: {generation: 32}\n")
    config = load_served_settings(path, max_new_tokens={"ner": 8})
    assert config.multiple_choice == ("logit_bias", "generate")
    assert config.max_new_tokens == GenerationBudget(ner=8, generation=32)
    with pytest.raises(ConfigError, match="multiple_choice: expected a list of methods"):
        from_mapping({"launch": "x {host} {port}", "multiple_choice": ["guided_choice"]})
    with pytest.raises(ConfigError, match="unknown key 'max_new_tokens.mc'"):
        from_mapping({"launch": "x {host} {port}", "max_new_tokens": {"mc": 1}})


@pytest.mark.parametrize("key, value, expected", [
    ("env", {"HF_HUB_OFFLINE": 1}, "a mapping of names to strings .quote numbers"),
    ("gpu_memory_utilization", 1.5, r"auto or a fraction in \(0, 1\]"),
    ("batch_size", 17, "an int from 1 to 16"),
    ("startup_timeout_s", 0, "a positive number of seconds"),
    ("api_key_env", "MY-KEY", "null or the name of an environment variable"),
])
def test_values_are_checked(key, value, expected):
    with pytest.raises(ConfigError, match=f"{key}: expected {expected}"):
        from_mapping({"launch": "x {host} {port}", key: value})


def test_relative_paths_resolve_from_the_yaml_folder(tmp_path):
    config = load_served_settings(write(tmp_path, "launch: x {host} {port}\n"))
    assert config.relative("weights/m") == tmp_path / "weights" / "m"
    assert isinstance(ServedSettings(launch=None, base_url="http://127.0.0.1:1").relative("/abs"), type(tmp_path))
