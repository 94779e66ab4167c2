"""The grading queue on Celery: the app that workers, ``enqueue`` and ``status`` share, and what a grade is.

A grade is one Celery task, ``shopbench.grade``, whose only argument is a ``GradeRequest`` as JSON. It is
routed by the GPUs its profile needs: one queue per GPU count (``shopbench.gpus-0`` for CPU profiles,
``shopbench.gpus-4`` for four GPUs), so a worker only ever takes grades its GPUs can run.

Only what every kombu transport offers is used (direct queues, message priorities, late
acknowledgement), so the broker URL may name Redis (``redis://``) or RabbitMQ (``amqp://``):

* ``task_acks_late`` and ``task_reject_on_worker_lost``: a grade is acknowledged once its result is
  written; a worker that dies first leaves it unacknowledged and the broker hands it to another worker.
* The redelivery time: Redis gives an unacknowledged grade to another worker after its
  ``visibility_timeout`` (set here from the worker's ``--redelivery-s``); RabbitMQ at once when the
  worker's connection drops, and it closes a consumer that holds a message longer than its
  ``consumer_timeout`` (a server setting: see docs/grading-at-scale.md).
* ``--priority`` 0 to 9, higher first: RabbitMQ orders by ``x-max-priority`` queues (higher first),
  kombu's Redis transport by one list per priority (lower first), so the number is turned over for Redis.

The result backend must be Redis (by default the broker itself when that is Redis): besides Celery's
results it holds the registry of enqueued grades (``shopbench:grades``, so ``status`` can list grades no
worker has taken yet) and each worker's heartbeat (``shopbench:worker:NAME``, a key that expires).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, KitError
from ..harness.profiles import ALL_TRACKS

log = logging.getLogger(__name__)

TASK_NAME = "shopbench.grade"
QUEUE_PREFIX = "shopbench.gpus-"
REGISTRY_KEY = "shopbench:grades"
WORKER_KEY = "shopbench:worker:"
HEARTBEAT_S = 10.0  # a worker writes its heartbeat this often ...
HEARTBEAT_TTL_S = 35.0  # ... and status calls it gone when none came for this long
MAX_PRIORITY = 9
DEFAULT_PRIORITY = 5
ANSWER_TIMEOUT_S = 5.0  # how long enqueue and status wait for the broker and the backend
PRODUCER_REDELIVERY_S = 3600.0  # enqueue's and status's app: never used to redeliver (only workers consume)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a submission's name is a folder name


class BrokerUnavailable(KitError):
    """The broker or the result backend does not answer."""


class GradeFailed(KitError):
    """A grade that could not be run or scored; its message is what ``status`` shows as the reason."""


def queue_for(gpus: int) -> str:
    return f"{QUEUE_PREFIX}{gpus}"


def safe_url(url: str) -> str:
    """The URL with its password masked, for every message that names it."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url, mask="***")


def _hide_password(text: str, url: str) -> str:
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


@dataclass(frozen=True)
class Endpoints:
    broker: str
    backend: str

    @property
    def redis_broker(self) -> bool:
        return urlsplit(self.broker).scheme in ("redis", "rediss")


def endpoints(broker: str, backend: str | None = None) -> Endpoints:
    """The broker and the Redis result backend; the backend defaults to the broker when that is Redis."""
    scheme = urlsplit(broker).scheme
    if scheme not in ("redis", "rediss", "amqp", "amqps", "pyamqp"):
        raise ConfigError(f"--broker {safe_url(broker)}: expected a redis://HOST:PORT/DB or amqp://USER:PASSWORD@HOST:"
                          "PORT/VHOST URL")
    if backend is None:
        if scheme not in ("redis", "rediss"):
            raise ConfigError(f"--broker {safe_url(broker)} is not Redis: pass --backend redis://HOST:PORT/DB, the "
                              "Redis that holds the grades' results and the registry that status reads")
        backend = broker
    if urlsplit(backend).scheme not in ("redis", "rediss"):
        raise ConfigError(f"--backend {safe_url(backend)}: the result backend must be Redis (redis://HOST:PORT/DB)")
    return Endpoints(broker, backend)


def transport_options(redis_broker: bool, redelivery_s: float) -> dict[str, Any]:
    if not redis_broker:
        return {}
    return {"visibility_timeout": int(redelivery_s), "priority_steps": list(range(MAX_PRIORITY + 1)), "sep": ":",
            # sweep for grades of dead workers often enough that one comes back soon after its redelivery time
            "unacked_restore_interval": max(1, min(60, int(redelivery_s // 20))), "unacked_restore_throttle": 1,
            "socket_connect_timeout": ANSWER_TIMEOUT_S}


def make_app(where: Endpoints, redelivery_s: float) -> Any:
    """The Celery app of the grading queue (a grade's task is registered by the worker, not here)."""
    try:
        from celery import Celery
    except ImportError:
        raise ConfigError("grading at scale needs Celery and the Redis client, which a submission's image does not "
                          "carry: pip install -r requirements-grading.txt (./setup.sh installs it)") from None

    app = Celery("shopbench", broker=where.broker, backend=where.backend, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_acks_late=True, task_reject_on_worker_lost=True, task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1, task_queue_max_priority=MAX_PRIORITY,
        task_default_queue=queue_for(0), result_extended=True, result_expires=None,
        broker_transport_options=transport_options(where.redis_broker, redelivery_s),
        # RabbitMQ hands a dead connection's messages to others: a grade still running here must then stop.
        # Redis keeps them until the redelivery time, and a running grade may finish after a reconnect.
        worker_cancel_long_running_tasks_on_connection_loss=not where.redis_broker,
        broker_connection_retry_on_startup=True, broker_connection_timeout=ANSWER_TIMEOUT_S,
        redis_socket_connect_timeout=ANSWER_TIMEOUT_S, redis_socket_timeout=30,
        worker_hijack_root_logger=True, worker_redirect_stdouts=False,
    )
    return app


def producer_app(broker: str, backend: str | None) -> tuple[Any, Endpoints]:
    """The app of a command that only sends or reads (enqueue, status), its broker and backend checked to answer.
    A producer never redelivers: the workers' redelivery time is the one that applies."""
    where = endpoints(broker, backend)
    app = make_app(where, PRODUCER_REDELIVERY_S)
    check_reachable(app, where)
    return app, where


def check_reachable(app: Any, where: Endpoints) -> None:
    """BrokerUnavailable, naming the URL without its password, unless the broker and the backend answer."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=ANSWER_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - whatever the transport raises
        raise BrokerUnavailable(f"the broker at {safe_url(where.broker)} does not answer "
                                f"({_hide_password(str(exc), where.broker) or type(exc).__name__}); start it, or "
                                "check the URL and that this host can reach it") from None
    try:
        app.backend.client.ping()
    except Exception as exc:  # noqa: BLE001 - whatever the Redis client raises
        raise BrokerUnavailable(f"the result backend at {safe_url(where.backend)} does not answer "
                                f"({_hide_password(str(exc), where.backend)}); start it, or check --backend") from None


# ---------------------------------------------------------------- what a grade is


@dataclass(frozen=True)
class GradeRequest:
    """One grade as it travels on the queue; validated where it is read back (``from_payload``)."""

    grade_id: str
    submission: str
    track: str
    profile: str
    gpus: int
    image: str | None = None  # a tag the workers have or can pull
    image_file: str | None = None  # a `docker save` tarball on storage every worker reads
    priority: int = DEFAULT_PRIORITY
    enqueued_at: float = 0.0

    @property
    def queue(self) -> str:
        return queue_for(self.gpus)

    def payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, raw: Any) -> GradeRequest:
        known = {f.name for f in fields(cls)}
        if not isinstance(raw, dict) or not {"grade_id", "submission", "track", "profile", "gpus"} <= set(raw):
            raise GradeFailed(f"not a grade request: {str(raw)[:200]}")
        request = cls(**{k: v for k, v in raw.items() if k in known})
        problem = request.problem()
        if problem:
            raise GradeFailed(f"a malformed grade request ({problem}): {str(raw)[:200]}")
        return request

    def problem(self) -> str | None:
        """What is wrong with this request, or None."""
        if not isinstance(self.submission, str) or not NAME_PATTERN.fullmatch(self.submission):
            return (f"submission name {self.submission!r:.60}: use letters, digits, '.', '_' and '-' (it names a "
                    "folder of the results)")
        if self.track not in ALL_TRACKS:
            return f"unknown track {self.track!r:.80}"
        if (self.image is None) == (self.image_file is None):
            return "exactly one of image and image_file"
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 0:
            return f"gpus must be a count, got {self.gpus!r:.20}"
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or \
                not 0 <= self.priority <= MAX_PRIORITY:
            return f"priority must be 0 to {MAX_PRIORITY}, got {self.priority!r:.20}"
        return None


def new_request(submission: str, track: str, profile: str, gpus: int, image: str | None, image_file: str | None,
                priority: int = DEFAULT_PRIORITY) -> GradeRequest:
    request = GradeRequest(str(uuid.uuid4()), submission, track, profile, gpus, image, image_file, priority,
                           time.time())
    problem = request.problem()
    if problem:
        raise ConfigError(problem)
    return request


def broker_priority(priority: int, where: Endpoints) -> int:
    """``--priority`` (higher first) as the broker's message priority."""
    return MAX_PRIORITY - priority if where.redis_broker else priority


def send(app: Any, request: GradeRequest, where: Endpoints) -> None:
    """Record the grade in the registry, then put it on its queue (removed from the registry if that fails)."""
    client = app.backend.client
    client.hset(REGISTRY_KEY, request.grade_id, json.dumps(request.payload()))
    try:
        app.send_task(TASK_NAME, args=[request.payload()], task_id=request.grade_id, queue=request.queue,
                      priority=broker_priority(request.priority, where), retry=False)
    except Exception as exc:  # noqa: BLE001 - whatever the transport raises: the grade leaves the registry
        client.hdel(REGISTRY_KEY, request.grade_id)
        raise BrokerUnavailable(f"the broker at {safe_url(where.broker)} refused the grade "
                                f"({_hide_password(str(exc), where.broker)})") from None


def registry(app: Any) -> list[GradeRequest]:
    """Every grade ever enqueued on this backend, oldest first (entries that do not parse are skipped)."""
    requests = []
    for grade_id, raw in app.backend.client.hgetall(REGISTRY_KEY).items():
        try:
            requests.append(GradeRequest.from_payload(json.loads(raw)))
        except (GradeFailed, TypeError, ValueError):
            log.warning("registry entry %s is not a grade request: skipped", grade_id)
    return sorted(requests, key=lambda r: r.enqueued_at)


# ---------------------------------------------------------------- workers' heartbeats


def write_heartbeat(client: Any, name: str, info: dict[str, Any]) -> None:
    client.set(WORKER_KEY + name, json.dumps({**info, "seen_at": time.time()}), ex=int(HEARTBEAT_TTL_S))


def forget_worker(client: Any, name: str) -> None:
    client.delete(WORKER_KEY + name)


def live_workers(client: Any) -> dict[str, dict[str, Any]]:
    """name -> its last heartbeat, for every worker seen within HEARTBEAT_TTL_S."""
    workers = {}
    for key in client.scan_iter(match=WORKER_KEY + "*"):
        raw = client.get(key)
        if raw:
            info = json.loads(raw)
            workers[info.get("name", key.decode() if isinstance(key, bytes) else key)] = info
    return workers
