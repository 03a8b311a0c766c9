"""A worker's own HTTP port (``FSML_WORKER_METRICS_PORT``), served by its main process:

- ``/metrics``: every pool process's Prometheus metrics (``serving.worker.metrics``), for Prometheus only
  (``FSML_METRICS_TOKEN``: ``fsml.metrics_auth``);
- ``/healthz``: the main process answers;
- ``/readyz``: it can serve jobs: MariaDB and the broker answer, and its requeue loop (which puts back the jobs
  of dead workers) ran lately. 503 with the failing parts otherwise.

``celery inspect ping`` only proves that the consumer answers over the broker; a worker whose database is gone
would still pass it while failing every job.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.db import connection
from prometheus_client import CollectorRegistry, make_wsgi_app

from fsml.metrics_auth import scrape_refusal
from serving.jobs.messages import broker_redis, uses_redis

log = logging.getLogger(__name__)

Checks = Callable[[], dict[str, str]]  # part -> "ok" or what is wrong


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # probes every few seconds: not worth a log line each
        pass


def readiness(requeue_age: Callable[[], float | None], requeue_interval: float) -> dict[str, str]:
    """The worker's parts, each "ok" or the reason it is not."""
    parts: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        parts["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason goes to the caller and the log
        parts["database"] = f"unreachable: {type(exc).__name__}"
    finally:
        connection.close()  # each probe runs on a thread of its own: its connection must not outlive it
    if uses_redis():
        try:
            broker_redis().ping()
            parts["broker"] = "ok"
        except Exception as exc:  # the same: not ready
            parts["broker"] = f"unreachable: {type(exc).__name__}"
    age = requeue_age()
    if age is None or age > 3 * requeue_interval + 5:
        parts["requeue"] = "not run lately" if age is not None else "not run yet"
    else:
        parts["requeue"] = "ok"
    return parts


def serve(host: str, port: int, registry: CollectorRegistry, checks: Checks) -> None:
    """Serve the three endpoints on a daemon thread."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            refusal = scrape_refusal(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR", ""))
            if refusal is None:
                return metrics(environ, start_response)
            status = "401 Unauthorized" if refusal.status == 401 else "403 Forbidden"
            start_response(status, [("Content-Type", "text/plain"), *refusal.headers])
            return [refusal.reason.encode() + b"\n"]
        if path in ("/healthz", "/readyz"):
            parts = {"process": "ok"} if path == "/healthz" else checks()
            ok = all(v == "ok" for v in parts.values())
            body = json.dumps({"status": "ok" if ok else "unavailable", **parts}).encode()
            if not ok:
                log.warning("worker not ready: %s", parts)
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: /metrics, /healthz, /readyz\n"]

    server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="fsml-worker-http", daemon=True).start()


class Heartbeat:
    """When a loop last finished a round, for ``readiness``."""

    def __init__(self) -> None:
        self._last: float | None = None

    def beat(self) -> None:
        self._last = time.monotonic()

    def age(self) -> float | None:
        return None if self._last is None else time.monotonic() - self._last
