"""Celery tasks: deserialise, call the worker's code, record. Retries and time limits are explicit.

A message names the jobs that one web process stored together (or one job sent again); the worker that takes it
claims them and, to fill its batch, other queued jobs of the same model (``serving.worker.claims``). The messages
of those batch-mates then find their jobs running or done and end at once. Each worker's main process also
puts back jobs whose claim lapsed because their worker died (``serving.worker.batches.requeue_lapsed``, every
``FSML_REQUEUE_SECONDS``), and prompts the callbacks that are due with no message on its way
(``serving.worker.outbox.prompt_due``): a callback is owed in the database, its message is only a prompt. The web
side sends these tasks by name (``serving.jobs.messages``).
"""

from __future__ import annotations

import logging
import os
import threading
from functools import partial

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutting_down
from django.conf import settings
from django.db import close_old_connections

from serving.jobs.messages import DELIVER_CALLBACK, RUN_INFERENCE
from serving.worker import batches, claims, delivery, health, outbox
from serving.worker.metrics import serve_worker_metrics

log = logging.getLogger(__name__)


@shared_task(
    name=RUN_INFERENCE,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
    default_retry_delay=2,
    soft_time_limit=settings.INFERENCE_TASK_TIME_LIMIT - 10,
    time_limit=settings.INFERENCE_TASK_TIME_LIMIT,
)
def run_inference(self, job_ids: list[str] | str) -> None:  # type: ignore[no-untyped-def]  # Celery's bound task
    batch = claims.claim_batch(job_ids, worker=self.request.hostname or "", pid=os.getpid())
    if batch is None:
        return
    try:
        batches.run_batch(batch)
    except Exception as exc:  # the model did not load (store down, bad archive): retry, then fail the batch
        error = f"{type(exc).__name__}: {exc}"
        if self.request.retries >= self.max_retries or any(j.attempts >= claims.MAX_ATTEMPTS for j in batch.jobs):
            batches.finish_batch(batch, {job.pk: (None, error) for job in batch.jobs})
            return
        countdown = self.default_retry_delay * 2**self.request.retries
        batches.release_batch(batch, error, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name=DELIVER_CALLBACK, acks_late=True, time_limit=settings.CALLBACK_TASK_TIME_LIMIT)
def deliver_callback(job_id: str) -> None:
    """POST the finished job to its callback URL, when it is due and no other worker sends it, then other due
    callbacks for a few seconds. Not retried by Celery: a failed attempt leaves the callback due after a backoff, in
    the database (``serving.worker.outbox``)."""
    delivery.deliver_due(job_id)


_stop = threading.Event()
_requeued = health.Heartbeat()


def _requeue_loop(interval: float) -> None:
    while True:
        try:
            if count := batches.requeue_lapsed():
                log.warning("requeued or failed %d jobs whose worker stopped holding them", count)
            if count := outbox.prompt_due():
                log.warning("prompted %d due callbacks whose message was lost, late or never sent", count)
            _requeued.beat()
        except Exception:  # the database or the broker is down for a moment: try again next round
            log.exception("requeueing lapsed jobs or due callbacks failed")
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
    close_old_connections()


@worker_ready.connect
def start_requeue_loop(**_: object) -> None:
    interval = settings.FSML_REQUEUE_SECONDS
    threading.Thread(target=_requeue_loop, args=(interval,), name="fsml-requeue", daemon=True).start()
    serve_worker_metrics(partial(health.readiness, _requeued.age, interval))


@worker_shutting_down.connect
def stop_requeue_loop(**_: object) -> None:
    _stop.set()
