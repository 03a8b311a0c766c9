"""Liveness, readiness and Prometheus metrics of the web process (docker compose, load balancers and
Prometheus poll these)."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def ready(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure means not ready; details go to the log, not the caller
        log.warning("readiness check failed: %s", exc)
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def metrics(request: HttpRequest) -> HttpResponse:
    """The queue's state for Prometheus (``serving.metrics.QueueCollector``); the workers serve their own."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from serving.metrics import web_registry

    return HttpResponse(generate_latest(web_registry()), content_type=CONTENT_TYPE_LATEST)
