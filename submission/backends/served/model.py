"""A ShopBench model answered by an OpenAI-compatible server: vLLM, SGLang, llama.cpp, ``transformers serve``.

``ServedModel()`` uses the defaults of ``ServedSettings`` (a subclass names its settings file in
``config_file``: ``models/served_model.py`` reads ``models/served.yaml``); both launch ``transformers
serve`` on the default SmolLM2 weights, so ``python local_evaluation.py --model
models.served_model:ServedModel`` runs out of the box. Two modes:

- ``launch``: the model starts the server itself, inside the submission (``launcher.py``:
  127.0.0.1, a reserved port, its own process group under a guard, stopped on every ending);
- ``base_url``: a server that already runs (an API key can come from the environment variable named by
  ``api_key_env``; it is never written anywhere).

It is ready when the server process is alive, ``/health`` answers 200, ``/v1/models`` lists the model and
a one-token warm-up request succeeds, all within ``startup_timeout_s``. Then the multiple-choice method is
chosen by probing the server (``answers.py``). What it does along the way (the command, the pids, the
method and its fallbacks) goes to log records (``logging``, never print: a run's progress bar owns the
terminal) and into ``run_info()``, which the evaluator records in results.json and prints in its summary. A
batch's prompts go to the server at once (up to ``max_concurrency``); the answers come back in order,
shaped by the baseline's own ``task_inference.py``, exactly as ``TransformersModel`` shapes them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import weakref
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from ...card import profile_card
from ...errors import ConfigError, ServerError, WeightsError
from ...interface import ShopBenchBaseModel
from ..prompting import format_prompt
from ..settings import settings_from_mapping
from ..task_inference import infer_task_type, shape_output
from .answers import (
    SHAPED,
    Asker,
    MultipleChoice,
    choose_method,
    digit_token_ids,
)
from .client import ClientOptions, OpenAIClient
from .config import ServedSettings, load_served_settings
from .engines import check_command, engine_of, fit_target_mib
from .gpu import budget_from_environment, fraction_text, margin_for, utilization
from .launcher import (
    HOST,
    LaunchPlan,
    ServerLauncher,
    render_command,
    resolve_executable,
)

READY_POLL_S = 0.5  # the longest pause between two readiness checks (the first is 0.05 s)

log = logging.getLogger(__name__)


# --- the launch command ------------------------------------------------------------------------------------

def device_and_dtype(config: ServedSettings) -> tuple[str, str]:
    """``{device}`` and ``{dtype}`` by the kit's hardware rules (``hardware.py``: no bfloat16 on a T4)."""
    import torch

    from ..hardware import cuda_capability, resolve_device, resolve_dtype

    device = resolve_device(config.device, torch.cuda.is_available())
    # the profile's card when the harness exported one: no CUDA call (and context) in this process for it
    capability = (profile_card().capability or cuda_capability()) if device == "cuda" else None
    dtype = resolve_dtype(config.dtype, device, capability)
    return device, str(dtype).removeprefix("torch.")


def launch_plan(config: ServedSettings) -> tuple[LaunchPlan, Path | None, list[str]]:
    """The rendered command (``{port}`` left for the launcher), the weights folder if used, and notes."""
    from ..weights import resolve_weights

    template, notes = config.launch, []
    assert template is not None  # called for a launched server only
    values = {"host": HOST, "python": sys.executable}
    weights = None
    if "{weights}" in template:
        weights = resolve_weights(config.weights, config.base_dir)
        values["weights"] = str(weights)
    if "{device}" in template or "{dtype}" in template:
        values["device"], values["dtype"] = device_and_dtype(config)
    engine = engine_of(render_command(template, values))  # the margin is the engine's (gpu.py)
    budget = budget_from_environment(margin_for(engine, config.gpu_memory_margin_gib))
    if "{gpu_memory_utilization}" in template:
        requested = None if config.gpu_memory_utilization == "auto" else float(config.gpu_memory_utilization)
        values["gpu_memory_utilization"] = fraction_text(utilization(budget, requested))
    if "{fit_target_mib}" in template:
        values["fit_target_mib"] = str(fit_target_mib(budget))
    argv, checked = check_command(resolve_executable(render_command(template, values)), budget, profile_card())
    notes += checked
    log_file = config.relative(config.log_file) if config.log_file else None
    plan = LaunchPlan(tuple(argv), dict(config.env), config.startup_timeout_s, config.shutdown_grace_s, log_file)
    return plan, weights, notes


def needs_tokenizer(config: ServedSettings) -> bool:
    return "logit_bias" in config.multiple_choice or (config.api == "completions" and config.use_chat_template)


def tokenizer_folder(config: ServedSettings, weights: Path | None) -> tuple[Path | None, str]:
    """Where the tokenizer is (for ``logit_bias`` and for completions with a chat template), or None and why.

    ``auto`` is the ``weights`` folder: in launch mode the one ``{weights}`` was filled with (none when the
    command has no ``{weights}``); in base_url mode ``weights`` resolved here, when a tokenizer is needed."""
    if config.tokenizer is None:
        return None, "tokenizer: null"
    if config.tokenizer != "auto":
        folder = config.relative(config.tokenizer)
        if not folder.is_dir():
            raise ConfigError(f"tokenizer: {folder} is not a folder; give a folder with tokenizer.json (or tokenizer "
                              f"files), or tokenizer: auto")
        return folder, ""
    if weights is not None:
        return weights, ""
    if config.launch is not None:
        return None, "tokenizer: auto is the {weights} folder, and the launch command has no {weights}"
    if not needs_tokenizer(config):
        return None, "not needed"
    from ..weights import resolve_weights

    try:
        return resolve_weights(config.weights, config.base_dir), ""
    except WeightsError as error:
        return None, f"tokenizer: auto is the weights folder, and weights: {config.weights} gives none: {error}"


def api_key(config: ServedSettings) -> str | None:
    if config.api_key_env is None:
        return None
    key = os.environ.get(config.api_key_env)
    if not key:
        raise ConfigError(f"api_key_env: the environment variable {config.api_key_env} is not set; export it, or "
                          f"set api_key_env: null for a server without a key")
    return key


# --- ready ---------------------------------------------------------------------------------------------------

def listed_models(data: Any) -> list[str]:
    try:
        return [str(item["id"]) for item in data["data"]]
    except (KeyError, TypeError):
        return []


def wait_until_ready(client: OpenAIClient, config: ServedSettings, launcher: ServerLauncher | None) -> str:
    """Wait for /health (200; 404 accepted from a base_url server), the model in /v1/models and a one-token
    warm-up answer; returns the model id to send. Raises a ServerError with the log's tail on timeout."""
    deadline = time.monotonic() + config.startup_timeout_s
    stage, last, model, pause = "/health", "no answer yet", None, 0.05

    def left(most: float) -> float:  # every request ends by the start-up deadline, however slowly it answers
        return min(most, max(deadline - time.monotonic(), 0.05))

    while True:
        reason = launcher.exit_reason() if launcher is not None else None
        if launcher is not None and reason:
            raise launcher.failure(f"{reason} before it was ready")
        if time.monotonic() > deadline:
            what = (f"the server at {client.url('')} was not ready within {config.startup_timeout_s:g} s "
                    f"(startup_timeout_s); waiting for {stage}: {last}")
            raise launcher.failure(what) if launcher is not None else ServerError(what)
        try:
            if stage == "/health":
                status, body = client.get_json("/health", timeout=left(10.0))
                if status == 200 or (status == 404 and launcher is None):
                    stage = "/v1/models"
                else:
                    last = f"HTTP {status}"
            if stage == "/v1/models":
                status, body = client.get_json("/v1/models", timeout=left(10.0))
                model, last = pick_model(config.model, listed_models(body) if status == 200 else [], status)
                stage = "/v1/models" if model is None else "a warm-up answer"
            if model is not None:
                asker = Asker(config.api, model, config.system_prompt, lambda prompt: prompt)
                client.post_json(asker.path, asker.body("Hello", 1), retries=0, timeout=left(config.request_timeout_s))
                return model
        except ServerError as error:
            last = str(error).splitlines()[0]
        except OSError as error:  # connection refused while the server starts, timeouts
            last = f"{type(error).__name__}: {error}"
        time.sleep(pause)
        pause = min(READY_POLL_S, pause * 2)


def pick_model(wanted: str, listed: list[str], status: int) -> tuple[str | None, str]:
    """The model to use from /v1/models (``auto``: the first listed), or None and why not yet."""
    if status != 200:
        return None, f"HTTP {status}"
    if wanted == "auto":
        return (listed[0], "") if listed else (None, "it lists no model yet")
    if wanted in listed:
        return wanted, ""
    return None, f"it lists {listed}, not model: {wanted!r}"


# --- the model -----------------------------------------------------------------------------------------------

class ServedModel(ShopBenchBaseModel):
    """Answers through an OpenAI-compatible server, launched here or already running.

    Args:
        config_path: a served-model YAML file (see ``models/served.yaml``); default ``config_file``.
        config: a ready ``ServedSettings`` (then ``config_path`` and overrides must be absent).
        **overrides: any YAML key, e.g. ``base_url="http://10.0.0.5:8000"``, ``max_concurrency=8``.

    Use it as a context manager, or call ``close()``; ``atexit`` and SIGTERM/SIGINT stop the server too.
    A subclass sets ``config_file`` to its default settings file; without one the dataclass defaults apply
    (equal to ``models/served.yaml``'s) and relative paths resolve from the current folder.
    """

    config_file: ClassVar[Path | None] = None

    def __init__(self, config_path: str | Path | None = None, config: ServedSettings | None = None,
                 **overrides: Any) -> None:
        if config is not None and (config_path is not None or overrides):
            raise ConfigError("pass either config, or config_path and keyword overrides, not both")
        if config is None:
            config = load_served_settings(config_path or self.config_file, base_dir=self.settings_folder(), **overrides)
        self.config = config
        self.launcher: ServerLauncher | None = None
        self.client: OpenAIClient | None = None
        self.counts: Counter[str] = Counter()
        self.notes: list[str] = []
        started = time.monotonic()
        try:
            self._connect()
        except BaseException:
            self.close()
            raise
        self.startup_s = time.monotonic() - started
        log.info("ready in %.1f s: %s", self.startup_s, self.describe())

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ServedModel:
        """Build from plain data (no YAML file), e.g. ``{"base_url": "http://127.0.0.1:8000"}``."""
        return cls(config=settings_from_mapping(ServedSettings, data, base_dir=cls.settings_folder()))

    @classmethod
    def check_settings(cls) -> ServedSettings:
        """The interface's optional pre-run check: read ``config_file`` (every key and value checked: exactly
        one of launch and base_url, the launch placeholders), starting nothing."""
        return load_served_settings(cls.config_file, base_dir=cls.settings_folder())

    @classmethod
    def settings_folder(cls) -> Path:
        """Where relative paths resolve without a settings file: ``config_file``'s folder, else the current one."""
        return cls.config_file.parent if cls.config_file is not None else Path.cwd()

    def _connect(self) -> None:
        config, weights = self.config, None
        if config.launch is not None:
            plan, weights, self.notes = launch_plan(config)
            self.launcher = ServerLauncher(plan)
            weakref.finalize(self, self.launcher.stop)  # a model dropped without close() stops its server too
            base_url = self.launcher.start()
            log.info("started `%s` (guard pid %s, server pid %s); waiting up to %g s for it to answer",
                     self.launcher.plan_command, self.launcher.guard_pid, self.launcher.server_pid,
                     config.startup_timeout_s)
        else:
            assert config.base_url is not None  # the settings hold exactly one of launch and base_url
            base_url = config.base_url
        options = ClientOptions(base_url, api_key(config), config.request_timeout_s, config.max_retries,
                                config.retry_backoff_s, config.max_concurrency)
        self.client = OpenAIClient(options, dead=self.launcher.dead if self.launcher else None)
        self.model_id = wait_until_ready(self.client, config, self.launcher)
        if self.launcher is not None:
            self.launcher.ready()
        folder, why = tokenizer_folder(config, weights)
        self.tokenizer = folder
        self.asker = Asker(config.api, self.model_id, config.system_prompt, self._renderer(folder, why))
        digits = digit_token_ids(folder) if folder is not None and "logit_bias" in config.multiple_choice else None
        if folder is not None and digits is None:
            why = f"no tokenizer with the digits 0-9 in {folder}"
        self.mc_method, self.probes = choose_method(config.multiple_choice, self.client, self.asker, digits, why)
        self.mc = MultipleChoice(self.mc_method, self.asker, digits, config.mc_max_new_tokens)
        failed = [f"{p.method} ({p.reason})" for p in self.probes if not p.ok]
        log.info("multiple choice by %s%s", self.mc_method, f"; fell back from {'; '.join(failed)}" if failed else "")

    def _renderer(self, folder: Path | None, why: str = "") -> Callable[[str], str] | None:
        """Completions: the prompt text the model reads (``prompting.format_prompt``)."""
        config = self.config
        if config.api == "chat":
            return None
        tokenizer = None
        if config.use_chat_template:
            if folder is None:
                raise ConfigError("api: completions with use_chat_template: true needs the model's tokenizer: set "
                                  "tokenizer: FOLDER (or weights: FOLDER, which tokenizer: auto uses), or "
                                  "use_chat_template: false" + (f" ({why})" if why else ""))
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return lambda prompt: format_prompt(tokenizer, prompt, config.system_prompt, config.use_chat_template)

    def describe(self) -> str:
        url = self.client.url("") if self.client else "(closed)"
        where = f"launched at {url}" if self.launcher else f"at {url}"
        return f"model {self.model_id!r} {where}, api {self.config.api}, multiple choice by {self.mc_method}"

    # the ShopBench interface -----------------------------------------------------------------------------
    def get_batch_size(self) -> int:
        return self.config.batch_size

    def batch_predict(self, batch: dict[str, Any], is_multiple_choice: bool) -> list[str]:
        prompts = list(batch["prompt"])
        if not prompts:
            return []
        if is_multiple_choice:
            return self.answer_multiple_choice(prompts)
        task_types = [infer_task_type(prompt) for prompt in prompts]
        bodies = [self.asker.body(prompt, getattr(self.config.max_new_tokens, task_type))
                  for prompt, task_type in zip(prompts, task_types, strict=True)]
        responses = self._post_many(bodies)
        return [shape_output(task_type, self.asker.text(response), prompt)
                for prompt, task_type, response in zip(prompts, task_types, responses, strict=True)]

    def answer_multiple_choice(self, prompts: list[str]) -> list[str]:
        """One allowed digit per prompt, by the method chosen at start; checked, shaped when it fails."""
        responses = self._post_many([self.mc.body(prompt) for prompt in prompts])
        answers, shaped = [], 0
        for prompt, response in zip(prompts, responses, strict=True):
            answer, how = self.mc.answer(prompt, response)
            self.counts[how] += 1
            shaped += how == SHAPED
            answers.append(answer)
        if shaped:
            log.info("%d of %d multiple-choice answers by %s were not an allowed digit; shaped from the text instead",
                     shaped, len(prompts), self.mc_method)
        return answers

    def _post_many(self, bodies: list[dict]) -> list[dict]:
        if self.client is None:
            raise ServerError("the served model is closed")
        return self.client.post_many(self.asker.path, bodies)

    # what to record, and the end -------------------------------------------------------------------------
    def run_info(self) -> dict[str, Any]:
        """What this run's results should record: mode, server, API, the multiple-choice method, its probes
        and how each answer was made. JSON-ready; holds no API key."""
        return {
            "mode": "launch" if self.launcher else "base_url",
            "command": self.launcher.plan_command if self.launcher else None,
            "base_url": self.client.url("") if self.client else None, "model": self.model_id,
            "api": self.config.api, "tokenizer": str(self.tokenizer) if self.tokenizer else None,
            "multiple_choice_method": self.mc_method,
            "probes": [{"method": p.method, "ok": p.ok, "reason": p.reason} for p in self.probes],
            "multiple_choice_answers": dict(self.counts), "startup_s": round(self.startup_s, 3),
            "notes": list(self.notes),
            "guard_pid": self.launcher.guard.pid if self.launcher and self.launcher.guard else None,
            "server_pid": self.launcher.server_pid if self.launcher else None,
        }

    def close(self) -> None:
        """Stop the launched server (SIGTERM, grace period, SIGKILL to all it started). Safe to call twice."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.launcher is not None:
            self.launcher.stop()

    def __enter__(self) -> ServedModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
