"""Liveness, readiness and Prometheus metrics of the web process (docker compose, load balancers and
Prometheus poll these). The web's ``/metrics`` reads the state of the queue when scraped: jobs queued and running
per model from the database, and the messages waiting in each Redis queue; the workers serve their own
(``serving.worker.metrics``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import cast

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from datastore.models import InferenceJob
from serving.jobs.messages import queue_for, uses_redis

log = logging.getLogger(__name__)


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# MySQL/MariaDB client and server error codes a readiness check meets, and what each tells an operator.
DATABASE_REASONS = {
    1045: "access denied: check the user and password in DATABASE_URL",
    1049: "unknown database: check the name in DATABASE_URL, or create it",
    1040: "too many connections",
    2002: "cannot connect to the database server: is it running, and listening where DATABASE_URL says?",
    2003: "cannot connect to the database server: is it running, and listening where DATABASE_URL says?",
    2005: "unknown database host: check the host in DATABASE_URL",
    2006: "the database server went away",
    2013: "lost the connection to the database server",
}


def database_reason(exc: Exception) -> str:
    """Why the database did not answer, in words, with the driver's error code: no host, user or password."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code is None:
        return f"{type(exc).__name__}: the database did not answer the check query"
    return f"{DATABASE_REASONS.get(code, type(exc).__name__)} (error {code})"


def ready(request: HttpRequest) -> JsonResponse:
    """200 when the database answers; else 503 with the reason (``database_reason``; the full error is logged)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure means not ready
        log.warning("readiness check failed: %s", exc)
        body = {"status": "unavailable", "database": "unreachable", "reason": database_reason(exc)}
        response = JsonResponse(body, status=503)
        response["Retry-After"] = "10"
        return response
    return JsonResponse({"status": "ok", "database": "ok"})


def metrics(request: HttpRequest) -> HttpResponse:
    """The queue's state for Prometheus (``QueueCollector``)."""
    registry = CollectorRegistry()
    registry.register(QueueCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class QueueCollector(Collector):
    """The queue as the web process sees it when scraped: jobs per status and model, messages per Redis queue."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("fsml_jobs", "Jobs queued or running now, by model.", labels=["model", "status"])
        waiting = InferenceJob.objects.filter(status__in=[InferenceJob.Status.QUEUED, InferenceJob.Status.RUNNING])
        for row in waiting.values("model_version__name", "status").annotate(n=Count("pk")):
            jobs.add_metric([row["model_version__name"], row["status"]], row["n"])
        yield jobs
        if uses_redis():
            yield self._redis_queues(settings.CELERY_BROKER_URL)

    def _redis_queues(self, url: str) -> GaugeMetricFamily:
        family = GaugeMetricFamily("fsml_queue_messages", "Messages waiting in a Redis queue.", labels=["queue"])
        names = {"inference"} | {queue_for(name) for name in settings.FSML_MODEL_QUEUES}
        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            for name in sorted(names):
                family.add_metric([name], cast(int, client.llen(name)))
        except redis.RedisError as exc:  # the scrape still answers; the gap shows the broker is down
            log.warning("cannot read queue lengths: %s", exc)
        finally:
            client.close()
        return family
