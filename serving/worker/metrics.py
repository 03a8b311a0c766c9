"""Prometheus metrics of a worker: every pool process records finished jobs, job latency (submit to result),
batch sizes, model time per batch and runtime loads into ``PROMETHEUS_MULTIPROC_DIR`` (``fsml worker`` makes a
fresh one per worker), and the worker's main process serves them all on ``FSML_WORKER_METRICS_PORT``
(``/metrics``; unset: not served). The web's own ``/metrics`` is ``serving.web.health``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

from serving.worker import health

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
JOBS_FINISHED = Counter("fsml_jobs_finished_total", "Jobs finished by the workers.", ["model", "status"])
JOB_LATENCY = Histogram(
    "fsml_job_latency_seconds", "From submit to result, per finished job.", ["model"], buckets=LATENCY_BUCKETS
)
BATCH_SIZE = Histogram(
    "fsml_batch_size", "Jobs per batch a worker ran.", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
RUNTIME_LOADS = Counter(
    "fsml_runtime_loads_total",
    "Model versions a worker process loaded, by the backend that runs them.",
    ["model", "backend"],
)
BATCH_SECONDS = Histogram(
    "fsml_batch_seconds",
    "Time a worker spent running one batch through its model.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)


def observe_batch(model: str, jobs: Iterable[Any], outcomes: dict[Any, tuple[Any, str]], seconds: float) -> None:
    """Record one batch: its size, its model time, and each finished job's status and latency."""
    jobs = list(jobs)
    BATCH_SIZE.labels(model).observe(len(jobs))
    BATCH_SECONDS.labels(model).observe(seconds)
    for job in jobs:
        _, error = outcomes[job.pk]
        JOBS_FINISHED.labels(model, "failed" if error else "succeeded").inc()
        if job.finished_at is not None and job.queued_at is not None:
            JOB_LATENCY.labels(model).observe((job.finished_at - job.queued_at).total_seconds())


def serve_worker_metrics(checks: Callable[[], dict[str, str]]) -> None:
    """In a worker's main process: serve every pool process's metrics, with the worker's health and readiness
    (``checks``), on ``FSML_WORKER_METRICS_PORT`` (``serving.worker.health``)."""
    port = settings.FSML_WORKER_METRICS_PORT
    if not port:
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        log.warning("FSML_WORKER_METRICS_PORT is set but PROMETHEUS_MULTIPROC_DIR is not: start with fsml worker")
        return
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    health.serve(settings.FSML_WORKER_METRICS_HOST, port, registry, checks)
    log.info("worker metrics on port %s", port)
