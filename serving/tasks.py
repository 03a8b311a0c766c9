"""Celery tasks: deserialise, call the services, record. Retries and time limits are explicit.

A message names the jobs that one web process stored together (or one job sent again); the worker that takes it
claims them and, to fill its batch, other queued jobs of the same model (``services.claim_batch``). The messages
of those batch-mates then find their jobs running or done and end at once. Each worker's main process also
puts back jobs whose claim lapsed because their worker died (``services.requeue_lapsed``, every
``FSML_REQUEUE_SECONDS``).
"""

from __future__ import annotations

import logging
import os
import threading
from functools import partial

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutting_down
from django.conf import settings

from serving import callbacks, services, workerhealth

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
    default_retry_delay=2,
    soft_time_limit=settings.INFERENCE_TASK_TIME_LIMIT - 10,
    time_limit=settings.INFERENCE_TASK_TIME_LIMIT,
)
def run_inference(self, job_ids: list[str] | str) -> None:  # type: ignore[no-untyped-def]  # Celery's bound task
    batch = services.claim_batch(job_ids, worker=self.request.hostname or "", pid=os.getpid())
    if batch is None:
        return
    try:
        services.run_batch(batch)
    except Exception as exc:  # the model did not load (store down, bad archive): retry, then fail the batch
        error = f"{type(exc).__name__}: {exc}"
        if self.request.retries >= self.max_retries or any(j.attempts >= services.MAX_ATTEMPTS for j in batch.jobs):
            services.finish_batch(batch, {job.pk: (None, error) for job in batch.jobs})
            return
        countdown = self.default_retry_delay * 2**self.request.retries
        services.release_batch(batch, error, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(bind=True, acks_late=True, max_retries=6, time_limit=60)
def deliver_callback(self, job_id: str) -> None:  # type: ignore[no-untyped-def]  # Celery's bound task
    """POST the finished job to its callback URL; retried with backoff (2, 4, ... 64 s) until it answers 2xx."""
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    from datastore.models import InferenceJob
    from serving.api import JobSerializer

    job = InferenceJob.objects.select_related("model_version").filter(pk=job_id).first()
    if job is None or not job.callback_url or job.callback_status == "delivered":
        return
    # The job as GET /api/jobs/ID/ shows it, without the delivery's own bookkeeping: every retry sends the same body.
    fields = {k: v for k, v in JobSerializer(job).data.items() if not k.startswith("callback_")}
    body = json.dumps(fields, cls=DjangoJSONEncoder).encode()
    failure = callbacks.post(job, body)
    gave_up = bool(failure) and (self.request.retries >= self.max_retries or failure.startswith(callbacks.REFUSED))
    services.record_callback(job.pk, failure, gave_up)
    if failure and not gave_up:
        raise self.retry(countdown=2 ** (self.request.retries + 1))


_stop = threading.Event()
_requeued = workerhealth.Heartbeat()


def _requeue_loop(interval: float) -> None:
    from django.db import close_old_connections

    while True:
        try:
            if count := services.requeue_lapsed():
                log.warning("requeued or failed %d jobs whose worker stopped holding them", count)
            if count := services.resend_callbacks():
                log.warning("queued %d callbacks that could not be queued when their job ended", count)
            _requeued.beat()
        except Exception:  # the database or the broker is down for a moment: try again next round
            log.exception("requeueing lapsed jobs failed")
        finally:
            close_old_connections()
        if _stop.wait(interval):
            return


@task_prerun.connect
@task_postrun.connect
def recycle_connections(**_: object) -> None:
    """Around each task, close the database connections that are broken or past ``CONN_MAX_AGE``, as Django does
    around each request. Celery would close them all, every task (``CELERY_DB_REUSE_MAX`` stops that): a new
    MariaDB connection per batch took a fifth of a worker's py-spy samples, most of them waiting on the server."""
    from django.db import close_old_connections

    close_old_connections()


@worker_ready.connect
def start_requeue_loop(**_: object) -> None:
    from serving.metrics import serve_worker_metrics

    interval = float(settings.FSML_REQUEUE_SECONDS)
    threading.Thread(target=_requeue_loop, args=(interval,), name="fsml-requeue", daemon=True).start()
    serve_worker_metrics(partial(workerhealth.readiness, _requeued.age, interval))


@worker_shutting_down.connect
def stop_requeue_loop(**_: object) -> None:
    _stop.set()
