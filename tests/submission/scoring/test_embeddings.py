"""Offline resolution of the embedding models: explicit path, environment, package, HF cache, or a clear error."""

import pytest

from submission.errors import ConfigError
from submission.scoring import embeddings
from submission.scoring.data import Question
from submission.scoring.scorer import check_scoring_ready


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch, tmp_path):
    for spec in embeddings.EMBEDDING_MODELS.values():
        monkeypatch.delenv(spec.env_var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)


def fake_model_dir(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


def test_explicit_path_wins_over_everything(tmp_path, monkeypatch):
    explicit = fake_model_dir(tmp_path / "mine")
    monkeypatch.setenv("SHOPBENCH_SENT_TRANSFORMER_MODEL", str(fake_model_dir(tmp_path / "env")))
    assert embeddings.resolve_model_path("sent-transformer", {"sent-transformer": str(explicit)}) == explicit


def test_environment_variable_then_package(tmp_path, monkeypatch, minilm_path):
    env = fake_model_dir(tmp_path / "env")
    monkeypatch.setenv("SHOPBENCH_SENT_TRANSFORMER_MODEL", str(env))
    assert embeddings.resolve_model_path("sent-transformer") == env
    monkeypatch.delenv("SHOPBENCH_SENT_TRANSFORMER_MODEL")
    assert embeddings.resolve_model_path("sent-transformer") == minilm_path


def test_hugging_face_cache_snapshot(tmp_path):
    repo = tmp_path / "hf" / "hub" / "models--sentence-transformers--paraphrase-multilingual-MiniLM-L12-v2"
    snapshot = fake_model_dir(repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert embeddings.resolve_model_path("multilingual-sent-transformer") == snapshot


def test_missing_model_fails_naming_metric_model_and_fix():
    with pytest.raises(ConfigError) as error:
        embeddings.resolve_model_path("multilingual-sent-transformer")
    message = str(error.value)
    for part in ("multilingual-sent-transformer", "paraphrase-multilingual-MiniLM-L12-v2",
                 "SHOPBENCH_MULTILINGUAL_SENT_TRANSFORMER_MODEL", "--embedding-model", "never downloaded"):
        assert part in message


def test_a_path_that_is_no_model_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="is not a sentence-transformers model folder"):
        embeddings.resolve_model_path("sent-transformer", {"sent-transformer": str(tmp_path / "empty")})


def test_scoring_readiness_is_checked_before_any_model_runs():
    question = Question(0, "p", False, "t", "generation", "multilingual-sent-transformer",
                        "amazon-kdd-cup-24-multi-lingual-abilities", "x")
    with pytest.raises(ConfigError, match="multilingual-sent-transformer"):
        check_scoring_ready([question])


def test_truth_cache_reuses_embeddings_and_follows_the_model_files(tmp_path, minilm_path):
    model = embeddings.load_model(minilm_path)
    cache = embeddings.TruthEmbeddingCache(minilm_path, tmp_path / "cache")
    first = cache.embed(model, ["a red kettle", "a blue kettle", "a red kettle"])
    cache.save()
    again = embeddings.TruthEmbeddingCache(minilm_path, tmp_path / "cache")
    assert set(again.vectors) == {again.key("a red kettle"), again.key("a blue kettle")}
    calls = []

    class Counting:
        def encode(self, texts, **kw):
            calls.append(list(texts))
            return model.encode(texts, **kw)

    counting = Counting()
    second = again.embed(counting, ["a blue kettle", "a green kettle"])
    assert calls == [["a green kettle"]]  # only the new text is embedded
    assert (second["a blue kettle"] == first["a blue kettle"]).all()
    other = tmp_path / "copy"
    other.mkdir()
    (other / "config.json").write_text("{}")
    assert embeddings.TruthEmbeddingCache(other, tmp_path / "cache").path != again.path
