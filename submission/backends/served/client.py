"""A small HTTP client for OpenAI-compatible servers: JSON in, JSON out, concurrent, retried, bounded.

Python's own ``http.client`` and a thread pool, deliberately (see the README, "Served models"): no
dependency to pin or install in a submission image, whatever the server's image holds; the raw JSON of
every answer is checked by the caller (a typed SDK fills in defaults for fields a server silently
dropped); retries are this module's alone (an SDK's own retries would multiply them); and a batch holds
at most 16 prompts, which threads serve as well as an event loop.

- ``post_many`` sends a batch's requests at once (up to ``max_concurrency`` in flight, so a
  continuous-batching server fills its batch) and returns the answers in the order asked.
- Connection errors, HTTP 429 and 5xx are retried ``max_retries`` times with exponential backoff; a
  4xx answer is not (the request is wrong, not the server); a timeout is not (the server is overloaded,
  and a retry would add to it). When a launched server has died, no retry is made.
- A request's timeout is a total deadline, from its first byte sent to the last byte of the answer
  received, not a limit per socket read: a watchdog (``Deadline``) shuts the socket down when it passes,
  so a server that trickles one byte every few seconds cannot stretch it.
- The API key goes into the ``Authorization`` header only; it is in no message and no ``repr``.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ...errors import ServerError

RETRY_STATUSES = (429, 500, 502, 503, 504)
CONNECTION_ERRORS = (ConnectionError, http.client.HTTPException, OSError)


class HttpError(ServerError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status, self.body = status, body


@dataclass(frozen=True)
class ClientOptions:
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    request_timeout_s: float = 600.0
    max_retries: int = 3
    retry_backoff_s: float = 0.5
    max_concurrency: int = 16


def split_base_url(base_url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path prefix)``; a trailing ``/v1`` is dropped (the client adds it)."""
    parts = urlsplit(base_url.rstrip("/"))
    prefix = parts.path.rstrip("/")
    prefix = prefix.removesuffix("/v1")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname or "", port, prefix


def excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


class Deadline:
    """Shuts ``sock`` down ``seconds`` from now unless cancelled first: a read or write blocked on it then
    ends at once, whatever the socket's own per-operation timeout. ``expired`` says whether it fired."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock, self.expired = sock, False
        self.timer = threading.Timer(max(seconds, 0.0), self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self) -> None:
        self.expired = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed
            pass

    def cancel(self) -> None:
        self.timer.cancel()


class OpenAIClient:
    """JSON requests to one server. ``dead()`` (optional) says why a launched server can no longer answer."""

    def __init__(self, options: ClientOptions, dead: Callable[[], str | None] | None = None) -> None:
        self.options, self.dead = options, dead
        self.scheme, self.host, self.port, self.prefix = split_base_url(options.base_url)
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=options.max_concurrency, thread_name_prefix="served-client")
        self.requests_sent = 0

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.prefix}{path}"

    # one request ---------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None,
                timeout: float | None = None) -> tuple[int, str]:
        """One HTTP request on this thread's connection: ``(status, body text)``; raises OSError and friends,
        and TimeoutError when the whole exchange takes longer than ``timeout`` (default request_timeout_s)."""
        limit = timeout or self.options.request_timeout_s
        deadline = time.monotonic() + limit
        connection = self._connection(limit)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.options.api_key:
            headers["Authorization"] = f"Bearer {self.options.api_key}"
        watchdog = None
        try:
            if connection.sock is None:
                connection.connect()  # bounded by the connection's timeout: one operation
            watchdog = Deadline(connection.sock, deadline - time.monotonic())
            connection.request(method, self.prefix + path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
        except BaseException:
            self._drop_connection()
            if watchdog is not None and watchdog.expired:
                raise TimeoutError(f"the answer was not complete after {limit:g} s") from None
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
        self.requests_sent += 1
        if watchdog.expired:  # shut down mid-answer, http.client may take what came as a whole (short) answer
            self._drop_connection()
            raise TimeoutError(f"the answer was not complete after {limit:g} s")
        if response.getheader("Connection", "").lower() == "close":
            self._drop_connection()
        return response.status, text

    def get_json(self, path: str, timeout: float | None = None) -> tuple[int, Any]:
        """GET ``path`` once, no retry: ``(status, parsed JSON or the text)``."""
        status, text = self.request("GET", path, timeout=timeout)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def post_json(self, path: str, body: dict, retries: int | None = None, timeout: float | None = None) -> dict:
        """POST ``body``; the parsed JSON object of a 200 answer. Retries as the module docstring says; each
        attempt has ``timeout`` seconds in all (default request_timeout_s)."""
        retries = self.options.max_retries if retries is None else retries
        limit = timeout or self.options.request_timeout_s
        last = ""
        for attempt in range(retries + 1):
            self._check_alive(path, last)
            if attempt:
                time.sleep(self.options.retry_backoff_s * 2 ** (attempt - 1))
                self._check_alive(path, last)
            try:
                status, text = self.request("POST", path, body, timeout=limit)
            except TimeoutError:
                raise ServerError(f"POST {self.url(path)}: no complete answer within {limit:g} s (request_timeout_s: "
                                  f"from the first byte sent to the last byte received)") from None
            except CONNECTION_ERRORS as error:
                last = f"{type(error).__name__}: {error}"
                continue
            if status == 200:
                return self._parse(path, text)
            message = f"POST {self.url(path)} answered HTTP {status}: {excerpt(text)}"
            if status not in RETRY_STATUSES:
                raise HttpError(message, status, text)
            last = f"HTTP {status}: {excerpt(text)}"
        raise ServerError(f"POST {self.url(path)} failed {retries + 1} time(s); last: {last}")

    def _parse(self, path: str, text: str) -> dict:
        try:
            data = json.loads(text)
        except ValueError:
            raise ServerError(f"POST {self.url(path)} answered 200 with no JSON: {excerpt(text)}") from None
        if not isinstance(data, dict):
            raise ServerError(f"POST {self.url(path)} answered 200 with JSON that is not an object: {excerpt(text)}")
        return data

    def _check_alive(self, path: str, last: str) -> None:
        reason = self.dead() if self.dead is not None else None
        if reason:
            after = f" (last error: {last})" if last else ""
            raise ServerError(f"POST {self.url(path)}: {reason}{after}")

    # many requests ---------------------------------------------------------------------------------------
    def post_many(self, path: str, bodies: list[dict]) -> list[dict]:
        """POST every body, up to ``max_concurrency`` at once; the answers in the order of ``bodies``.

        The first failure (in that order) is raised after the other requests are cancelled or finished.
        """
        futures = [self.pool.submit(self.post_json, path, body) for body in bodies]
        answers, error = [], None
        for future in futures:
            if error is not None:
                future.cancel()
                continue
            try:
                answers.append(future.result())
            except BaseException as failure:  # noqa: BLE001 - re-raised below, after the others stop
                error = failure
        if error is not None:
            for future in futures:
                if not future.cancelled():
                    try:
                        future.exception()
                    except BaseException:  # noqa: BLE001 - cancelled meanwhile
                        pass
            raise error
        return answers

    # connections -----------------------------------------------------------------------------------------
    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            connection = kind(self.host, self.port, timeout=timeout)
            self.local.connection = connection
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            connection.close()
            self.local.connection = None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._drop_connection()
