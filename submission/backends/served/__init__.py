"""The served backend: a ShopBench model answered by an OpenAI-compatible server (vLLM, SGLang, llama.cpp,
``transformers serve``), launched inside the submission or already running.

Owns:
    config.py    ``ServedSettings``: the server (launch command or base URL), requests, memory (models/served.yaml)
    model.py     ``ServedModel``: readiness, the multiple-choice method, batches, ``run_info`` and ``close``
    client.py    a small HTTP client: JSON in and out, concurrent, retried, bounded
    answers.py   request bodies, and multiple choice constrained to the allowed digits where the server allows
    launcher.py  starts the server under the guard on 127.0.0.1 and a reserved port; stops all it started
    guard.py     the standalone standard-library script between the model's process and the server
    gpu.py       ``{gpu_memory_utilization}``: the server kept within the grader's GPU memory cap
    engines.py   the rendered command checked per engine: the cap (vLLM, SGLang, llama.cpp), the card's dtypes

May import: the shared top-level modules and the other backends modules (settings, hardware, prompting,
task_inference, weights). ``guard.py`` imports only the standard library: it runs as a script.

Public names: ServedModel, ServedSettings, load_served_settings.
"""

from ..._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "model": ("ServedModel",),
    "config": ("ServedSettings", "load_served_settings"),
})
