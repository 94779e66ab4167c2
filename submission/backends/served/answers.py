"""What ServedModel sends and how it reads the answers: request bodies, and multiple choice constrained
to the allowed digits wherever the server allows it.

Servers accept and then silently ignore fields (``transformers serve`` drops ``logprobs`` on
completions, continuous batching drops ``logit_bias``; llama.cpp returns logprobs for generated tokens
only), so nothing is trusted: ``probe`` tries each method once at start on a question whose forced
answer the model would not give by itself, and every answer is checked again against the prompt's
choices. Methods, in the order tried:

- ``structured_outputs``: vLLM's ``{"structured_outputs": {"choice": [...]}}`` (the older
  ``guided_choice`` was removed in vLLM 0.12);
- ``top_logprobs``: one token with the top log-probabilities; the most likely allowed digit wins;
- ``logit_bias``: +100 on the allowed digits' token ids (the tokenizer gives them), one token;
- ``generate``: a few tokens, shaped to the first allowed number (``task_inference.shape_multiple_choice``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ServerError
from ..prompting import chat_messages
from ..task_inference import mc_choices, shape_multiple_choice
from .client import HttpError, OpenAIClient, excerpt

PROBE_PROMPT = "Reply with one digit."
PROBE_DIGITS = ("7", "3")  # two forced answers to one question: a server ignoring the field cannot give both
TOP_LOGPROBS = 20  # the most OpenAI's API and vLLM's default max_logprobs allow
BIAS = 100.0  # a float: transformers serve answers HTTP 500 to an int bias
SHAPED = "shaped"  # how an answer that failed its check is counted


@dataclass(frozen=True)
class Asker:
    """How a prompt becomes a request: chat messages (the server applies the chat template) or a
    completion prompt (``render``: the chat template applied here, or the system prompt prepended)."""

    api: str
    model: str
    system_prompt: str
    render: Callable[[str], str] | None = None

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.api == "chat" else "/v1/completions"

    def body(self, prompt: str, max_tokens: int, **extra: Any) -> dict:
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "temperature": 0.0}
        if self.api == "chat":
            body["messages"] = chat_messages(prompt, self.system_prompt)
        else:
            body["prompt"] = self.render(prompt) if self.render else self.system_prompt + prompt
        body.update(extra)
        return body

    def text(self, response: dict) -> str:
        """The answer's text; a 200 answer without a usable one (the field missing, null or not a string) is a
        ServerError naming the field and what came instead, never an empty answer."""
        field = "choices[0].message.content" if self.api == "chat" else "choices[0].text"
        try:
            first = response["choices"][0]
            text = first["message"]["content"] if self.api == "chat" else first["text"]
        except (KeyError, IndexError, TypeError):
            raise ServerError(f"{self.path} answered 200 without {field}: {excerpt(json.dumps(response))}") from None
        if not isinstance(text, str):
            kinds = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}
            found = "null" if text is None else f"{kinds.get(type(text), 'a value')} ({excerpt(json.dumps(text), 80)})"
            raise ServerError(f"{self.path} answered 200 with {field} {found}, not a string: "
                              f"{excerpt(json.dumps(response))}")
        return text

    def top_logprobs(self, response: dict) -> list[tuple[str, float]]:
        """The first generated token's alternatives ``(token text, log-probability)``; [] when absent."""
        try:
            logprobs = response["choices"][0]["logprobs"]
            if self.api == "chat":
                items = [(item["token"], item["logprob"]) for item in logprobs["content"][0]["top_logprobs"]]
            else:
                items = list(logprobs["top_logprobs"][0].items())
        except (KeyError, IndexError, TypeError, AttributeError):
            return []
        return [(str(token), float(value)) for token, value in items
                if isinstance(value, (int, float)) and not isinstance(value, bool)]


# --- multiple choice ---------------------------------------------------------------------------------------

class MultipleChoice:
    """One method's request for a multiple-choice prompt, and the check of its answer."""

    def __init__(self, method: str, asker: Asker, digit_ids: dict[str, list[int]] | None,
                 generate_tokens: int) -> None:
        self.method, self.asker, self.digit_ids, self.generate_tokens = method, asker, digit_ids, generate_tokens

    def body(self, prompt: str, choices: list[str] | None = None) -> dict:
        choices = choices if choices is not None else [str(c) for c in mc_choices(prompt)]
        if self.method == "structured_outputs":
            return self.asker.body(prompt, 2, structured_outputs={"choice": choices})
        if self.method == "top_logprobs":
            chat = self.asker.api == "chat"
            extra = {"logprobs": True, "top_logprobs": TOP_LOGPROBS} if chat else {"logprobs": TOP_LOGPROBS}
            return self.asker.body(prompt, 1, **extra)
        if self.method == "logit_bias":
            digit_ids = self.digit_ids or {}
            bias = {str(token): BIAS for choice in choices for token in digit_ids.get(choice, [])}
            return self.asker.body(prompt, 1, logit_bias=bias)
        return self.asker.body(prompt, self.generate_tokens)

    def answer(self, prompt: str, response: dict) -> tuple[str, str]:
        """``(answer, how)``: ``how`` is the method when the answer passed its check, else ``shaped``."""
        text = self.asker.text(response)
        allowed = [str(c) for c in mc_choices(prompt)]
        if self.method == "generate":
            return shape_multiple_choice(text, prompt), "generate"
        if self.method == "top_logprobs":
            ranked = [(value, token.strip()) for token, value in self.asker.top_logprobs(response)
                      if token.strip() in allowed]
            if ranked:
                return max(ranked)[1], self.method
        elif text.strip() in allowed:
            return text.strip(), self.method
        return shape_multiple_choice(text, prompt), SHAPED


@dataclass(frozen=True)
class ProbeResult:
    method: str
    ok: bool
    reason: str


def probe(method: str, client: OpenAIClient, asker: Asker, digit_ids: dict[str, list[int]] | None,
          no_tokenizer: str = "") -> ProbeResult:
    """Whether ``method`` works on this server, tried on ``PROBE_PROMPT`` (no retries); ``no_tokenizer`` says
    why there are no ``digit_ids``."""
    if method == "generate":
        return ProbeResult(method, True, "generation plus shaping always works")
    if method == "logit_bias" and not digit_ids:
        return ProbeResult(method, False, f"no tokenizer to map digits to token ids "
                                          f"({no_tokenizer or 'set tokenizer: FOLDER'})")
    mc = MultipleChoice(method, asker, digit_ids, 1)
    try:
        if method == "top_logprobs":
            response = client.post_json(asker.path, mc.body(PROBE_PROMPT, list("0123456789")), retries=0)
            found = asker.top_logprobs(response)
            if len(found) < 2:
                return ProbeResult(method, False, "the server returned no top log-probabilities (it ignored the field)")
            return ProbeResult(method, True, f"{len(found)} alternatives per token")
        answers = [asker.text(client.post_json(asker.path, mc.body(PROBE_PROMPT, [digit]), retries=0)).strip()
                   for digit in PROBE_DIGITS]
    except HttpError as error:
        return ProbeResult(method, False, f"HTTP {error.status}: {excerpt(error.body, 160)}")
    except ServerError as error:
        if client.dead is not None and client.dead():
            raise
        return ProbeResult(method, False, excerpt(str(error), 200))
    if list(answers) != list(PROBE_DIGITS):
        return ProbeResult(method, False, f"forced to answer {' then '.join(PROBE_DIGITS)}, the server answered "
                           f"{' then '.join(repr(a) for a in answers)} (it ignored the field)")
    return ProbeResult(method, True, "forced answers honoured")


def choose_method(methods: tuple[str, ...], client: OpenAIClient, asker: Asker,
                  digit_ids: dict[str, list[int]] | None, no_tokenizer: str = "") -> tuple[str, list[ProbeResult]]:
    """The first of ``methods`` whose probe passes, and every probe's result."""
    results = []
    for method in methods:
        result = probe(method, client, asker, digit_ids, no_tokenizer)
        results.append(result)
        if result.ok:
            return method, results
    tried = "; ".join(f"{r.method}: {r.reason}" for r in results)
    raise ServerError(f"none of the multiple-choice methods in multiple_choice works with this server ({tried}); "
                      f"add generate to the list")


# --- the tokenizer's digits ---------------------------------------------------------------------------------

def digit_token_ids(folder: Path) -> dict[str, list[int]] | None:
    """Token ids that spell each digit 0-9 alone ("3", "Ġ3", "▁3") in the tokenizer of ``folder``; None
    when there is no tokenizer there or it cannot be read."""
    vocab = _vocabulary(folder)
    if vocab is None:
        return None
    ids = {str(d): [vocab[p] for p in (str(d), "Ġ" + str(d), "▁" + str(d)) if p in vocab] for d in range(10)}
    return ids if all(ids.values()) else None


def _vocabulary(folder: Path) -> dict[str, int] | None:
    path = folder / "tokenizer.json"
    if path.is_file():
        try:
            from tokenizers import Tokenizer

            return Tokenizer.from_file(str(path)).get_vocab(with_added_tokens=True)
        except ImportError:
            pass
        except Exception:  # noqa: BLE001 - an unreadable tokenizer.json: try transformers
            pass
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder)).get_vocab()
    except Exception:  # noqa: BLE001 - no transformers, or no tokenizer in the folder
        return None
