"""A scripted OpenAI-compatible server for the served-model tests: standard library only, deterministic.

It stands in for what cannot run here (vLLM's structured outputs, top log-probabilities, a server that
accepts a field and ignores it, a server that fails on cue) and for the Docker test, whose image has no
torch. It answers GET /health, GET /v1/models, GET /stats (requests seen, most in flight at once, the last
request's body) and POST /v1/chat/completions and /v1/completions with the response shapes vLLM documents.

    python openai_server.py --host 127.0.0.1 --port 8000 --features structured_outputs,logit_bias --vocab tokenizer.json

Behaviour:
- ``--features``: which of structured_outputs, top_logprobs, logit_bias it honours; any other field is
  accepted and ignored (``--reject-unknown``: answered 422, as ``transformers serve`` does);
- ``--honour-requests N``: honour the features for the first N POSTs only, then ignore them silently;
- an answer is picked from a hash of the prompt, so the same prompt always gets the same answer;
  a "token" is a word, and ``max_tokens`` words at most are returned;
- cues in a prompt: ``[503xN]`` answers 503 to its first N attempts, ``[400]`` answers 400, ``[slow]``
  waits 0.3 s, ``[exit]`` ends the server's process at once (exit code 3);
- ``--never-healthy``: /health answers 503 forever; ``--api-key K``: 401 without ``Bearer K``;
- ``--spawn-child``: starts a grandchild that leaves the process group and ignores SIGTERM (as vLLM's
  workers may), to test that the launcher's guard still stops it;
- ``--die-on-sigterm``: SIGTERM ends the process at once (the default action) instead of a clean shutdown;
- ``--trickle-s S``: the answer to a prompt with the cue ``[trickle]`` (and, with ``--trickle-health``, to
  every GET /health) is sent one byte every S seconds, status line and headers included, padded to a
  megabyte: a server that is never done answering, though never silent for long;
- cues ``[null-content]``, ``[no-content]``, ``[number-content]``: a 200 answer whose text (chat:
  ``choices[0].message.content``; completions: ``choices[0].text``) is null, missing or a number;
- cue ``[kill-guard]``: forks a daemon in a new session (it ignores SIGTERM and sleeps; its pid is written
  to ``--daemon-pid-file``), then SIGKILLs its own parent, the launcher's guard.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KNOWN = {"model", "messages", "prompt", "max_tokens", "temperature", "logprobs", "top_logprobs", "logit_bias",
         "stream", "seed", "stop", "top_p", "n"}
FEATURES = ("structured_outputs", "top_logprobs", "logit_bias")
TRICKLE_BYTES = 1 << 20  # a trickled answer's length: days at a byte every few seconds


class State:
    def __init__(self, args):
        self.args = args
        self.features = set(filter(None, args.features.split(",")))
        self.lock = threading.Lock()
        self.posts = self.in_flight = self.max_in_flight = 0
        self.attempts: dict[str, int] = {}
        self.last_body: dict | None = None
        self.vocab = {}
        if args.vocab:
            with open(args.vocab, encoding="utf-8") as handle:
                self.vocab = {v: k for k, v in json.load(handle)["model"]["vocab"].items()}


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def pick(options: list[str], prompt: str) -> str:
    return options[digest(prompt)[0] % len(options)]


def prompt_of(body: dict) -> str:
    if "messages" in body:
        return str(body["messages"][-1].get("content", ""))
    return str(body.get("prompt", ""))


def free_text(prompt: str) -> str:
    d = digest(prompt)
    return (f"The answer is {d[1] % 10}, then {d[2] % 10}, then {d[3] % 10}, then {d[4] % 10}.\n\n"
            f"A second paragraph that shaping drops.")


def answer(state: State, body: dict, honour: bool) -> tuple[str, list | None]:
    """(text, top log-probabilities of the first token or None)."""
    prompt = prompt_of(body)
    features = state.features if honour else set()
    choice = (body.get("structured_outputs") or {}).get("choice")
    if choice and "structured_outputs" in features:
        return pick([str(c) for c in choice], prompt), None
    bias = body.get("logit_bias")
    if bias and "logit_bias" in features:
        tokens = [state.vocab.get(int(k), "?").lstrip("Ġ▁") for k, v in bias.items() if float(v) > 0]
        return pick(sorted(tokens), prompt), None
    text = free_text(prompt)
    words = text.split(" ")[: int(body.get("max_tokens") or 10 ** 6)]
    tops = None
    if body.get("logprobs") and "top_logprobs" in features:
        d = digest(prompt)
        tops = [("The", -0.1)] + [(str(i), -1.0 - (d[5 + i] / 255)) for i in range(10)]
    return " ".join(words), tops


def respond(state: State, path: str, body: dict, honour: bool) -> dict:
    text, tops = answer(state, body, honour)
    if path.endswith("/chat/completions"):
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if tops is not None:
            choice["logprobs"] = {"content": [{"token": tops[0][0], "logprob": tops[0][1],
                                               "top_logprobs": [{"token": t, "logprob": v} for t, v in tops]}]}
        return {"id": "scripted", "object": "chat.completion", "model": state.args.model, "choices": [choice]}
    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
    if tops is not None:
        choice["logprobs"] = {"tokens": [tops[0][0]], "top_logprobs": [dict(tops)]}
    return {"id": "scripted", "object": "text_completion", "model": state.args.model, "choices": [choice]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # one line per request on stderr, like a real server's access log
        sys.stderr.write("scripted-server: " + fmt % args + "\n")

    def send(self, status: int, data, trickle: bool = False) -> None:
        payload = json.dumps(data).encode()
        if trickle:
            return self.trickle(status, payload + b" " * (TRICKLE_BYTES - len(payload)))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def trickle(self, status: int, payload: bytes) -> None:
        """The whole answer, one byte every --trickle-s seconds, until it is sent or the client hangs up."""
        head = (f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"\r\n").encode()
        try:
            for byte in head + payload:
                self.wfile.write(bytes([byte]))
                time.sleep(self.server.state.args.trickle_s)
        except OSError:  # the client gave up: what a total deadline does
            self.close_connection = True

    def authorised(self) -> bool:
        key = self.server.state.args.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self.send(401, {"error": "missing or wrong API key"})
            return False
        return True

    def do_GET(self):
        state = self.server.state
        if not self.authorised():
            return
        if self.path == "/health":
            self.send(503 if state.args.never_healthy else 200, {"status": "ok"}, trickle=state.args.trickle_health)
        elif self.path == "/v1/models":
            self.send(200, {"object": "list", "data": [{"id": state.args.model, "object": "model"}]})
        elif self.path == "/stats":
            self.send(200, {"posts": state.posts, "max_in_flight": state.max_in_flight, "last_body": state.last_body})
        else:
            self.send(404, {"error": f"no route {self.path}"})

    def do_POST(self):
        state = self.server.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if not self.authorised():
            return
        with state.lock:
            state.posts += 1
            state.last_body = body
            honour = state.args.honour_requests is None or state.posts <= state.args.honour_requests
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self.post(state, body, honour)
        finally:
            with state.lock:
                state.in_flight -= 1

    def post(self, state: State, body: dict, honour: bool) -> None:
        prompt = prompt_of(body)
        unknown = set(body) - KNOWN - ({"structured_outputs"} if "structured_outputs" in state.features else set())
        if unknown and state.args.reject_unknown:
            return self.send(422, {"detail": f"Unexpected fields in the request: {sorted(unknown)}"})
        if "[exit]" in prompt:
            os._exit(3)
        if "[kill-guard]" in prompt:
            spawn_daemon(state.args.daemon_pid_file)
            os.kill(os.getppid(), signal.SIGKILL)  # the guard; the kernel then SIGKILLs this process too
            time.sleep(60)
        if "[trickle]" in prompt:
            return self.send(200, respond(state, self.path, body, honour), trickle=True)
        if "[slow]" in prompt:
            time.sleep(0.3)
        if "[400]" in prompt:
            return self.send(400, {"error": "this prompt is refused ([400] cue)"})
        failures = re.search(r"\[503x(\d+)\]", prompt)
        if failures:
            with state.lock:
                state.attempts[prompt] = state.attempts.get(prompt, 0) + 1
                failing = state.attempts[prompt] <= int(failures.group(1))
            if failing:
                return self.send(503, {"error": "busy ([503xN] cue)"})
        self.send(200, broken(prompt, respond(state, self.path, body, honour)))


def broken(prompt: str, response: dict) -> dict:
    """``response`` with its text null, missing or a number when the prompt asks for it."""
    choice = response["choices"][0]
    holder, key = (choice["message"], "content") if "message" in choice else (choice, "text")
    if "[null-content]" in prompt:
        holder[key] = None
    elif "[no-content]" in prompt:
        del holder[key]
    elif "[number-content]" in prompt:
        holder[key] = 7
    return response


def spawn_daemon(pid_file: str | None) -> None:
    """A daemon in a new session that ignores SIGTERM and holds none of this process's files; its pid in
    ``pid_file``."""
    code = "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"
    daemon = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if pid_file:
        with open(pid_file, "w", encoding="utf-8") as handle:
            handle.write(str(daemon.pid))


def spawn_stubborn_grandchild() -> None:
    """A process that leaves the group (setsid) and ignores SIGTERM, then sleeps."""
    code = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('stubborn child', os.getpid(), flush=True); time.sleep(3600)")
    subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="scripted-model")
    parser.add_argument("--features", default="")
    parser.add_argument("--vocab", help="tokenizer.json whose vocabulary maps logit_bias ids to tokens")
    parser.add_argument("--honour-requests", type=int)
    parser.add_argument("--reject-unknown", action="store_true")
    parser.add_argument("--never-healthy", action="store_true")
    parser.add_argument("--api-key")
    parser.add_argument("--spawn-child", action="store_true")
    parser.add_argument("--die-on-sigterm", action="store_true")
    parser.add_argument("--trickle-s", type=float, default=1.0)
    parser.add_argument("--trickle-health", action="store_true")
    parser.add_argument("--daemon-pid-file")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)  # sets SO_REUSEADDR, as uvicorn does
    server.daemon_threads = True
    server.state = State(args)
    if args.spawn_child:
        spawn_stubborn_grandchild()
    if not args.die_on_sigterm:
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"scripted-server: listening on {args.host}:{args.port}", flush=True)
    server.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
