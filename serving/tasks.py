"""Celery tasks: deserialise, call the services, record. Retries and time limits are explicit."""

from __future__ import annotations

import os

from celery import shared_task

from serving import services


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
    default_retry_delay=2,
    soft_time_limit=50,
    time_limit=60,
)
def run_inference(self, job_id: str) -> None:  # type: ignore[no-untyped-def] -- Celery's bound task
    job = services.start_job(job_id, worker=self.request.hostname or "", pid=os.getpid())
    if job is None:
        return
    try:
        services.run_job(job)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            services.finish_job(job, error=f"{type(exc).__name__}: {exc}")
            return
        raise self.retry(exc=exc) from exc
