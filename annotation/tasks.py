"""Celery tasks of the annotation app: background project jobs (``annotation.background``)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from annotation import background
from annotation import image_imports as _image_imports  # noqa: F401  # registers the import runner
from annotation import preannotation as _preannotation  # noqa: F401  # registers the preannotate runner
from annotation.intake import services as _intake  # noqa: F401  # registers the add_items runner


@shared_task(
    name=background.RUN_PROJECT_JOB,
    acks_late=True,
    reject_on_worker_lost=True,
    # raised inside the runner: the job fails with the reason
    soft_time_limit=int(settings.PROJECT_JOB_TIME_LIMIT) - 30,
    time_limit=int(settings.PROJECT_JOB_TIME_LIMIT),
)
def run_project_job(job_id: int) -> str:
    job = background.run(job_id)
    return job.status if job is not None else "not queued"
