"""Celery tasks of the annotation app: background project jobs (``annotation.background``)."""

from __future__ import annotations

from celery import shared_task

from annotation import background


@shared_task(name=background.RUN_PROJECT_JOB, acks_late=True, reject_on_worker_lost=True)
def run_project_job(job_id: int) -> str:
    job = background.run(job_id)
    return job.status if job is not None else "not queued"
