"""Background work on a project (``ProjectJob``): pre-annotation, large imports, adding items.

A request starts a job (``start``) and returns at once; a Celery worker on the ``projects`` queue runs it
(``run``) with the function registered for its kind (``@runs(kind)``), which reports progress through the
``report(done, total)`` it is given and returns the job's result. A job that raises ends ``failed`` with its
reason: the function does its writes in one transaction, so nothing is half-applied.

A job never stays unfinished for ever: its Celery task has a time limit (``FSML_PROJECT_JOB_TIME_LIMIT``), a job
whose worker died is failed once that time has passed (``fail_stale``, called wherever jobs are listed or
checked), and a job whose message cannot be queued fails at once with the broker's error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.services.access import AnnotationError
from datastore.models import Project, ProjectJob

log = logging.getLogger(__name__)

RUN_PROJECT_JOB = "annotation.run_project_job"
PROJECT_QUEUE = "projects"

Report = Callable[[int, int | None], None]
Runner = Callable[[ProjectJob, Report], dict[str, Any]]
RUNNERS: dict[str, Runner] = {}


def runs(kind: str) -> Callable[[Runner], Runner]:
    """Register the function that runs jobs of ``kind`` (one of ``ProjectJob.Kind``)."""
    if kind not in ProjectJob.Kind.values:
        raise ValueError(f"unknown project job kind {kind!r}")

    def register(function: Runner) -> Runner:
        RUNNERS[kind] = function
        return function

    return register


def start(project: Project, kind: str, params: dict[str, Any], user: Any) -> ProjectJob:
    """Record a queued job and send its message once the record is committed."""
    from celery import current_app  # local: Celery loads its app lazily; the web side only sends by name

    job = ProjectJob.objects.create(project=project, kind=kind, params=params, created_by=user)

    def send() -> None:
        try:
            current_app.send_task(RUN_PROJECT_JOB, args=[job.pk], queue=PROJECT_QUEUE)
        except Exception as exc:  # the broker is down: the job says so instead of waiting for ever
            log.warning("project job %s could not be queued: %s", job.pk, exc)
            _finish(job, ProjectJob.Status.FAILED, error=f"the job could not be queued ({exc}); start it again")

    transaction.on_commit(send)
    return job


def fail_stale(project: Project | None = None) -> int:
    """Fail the jobs whose worker stopped before they ended: still running past the time limit. Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.PROJECT_JOB_TIME_LIMIT + 60)
    stale = ProjectJob.objects.filter(status=ProjectJob.Status.RUNNING, started_at__lt=cutoff)
    if project is not None:
        stale = stale.filter(project=project)
    return stale.update(
        status=ProjectJob.Status.FAILED,
        error="the worker stopped before the job ended (no result within FSML_PROJECT_JOB_TIME_LIMIT); nothing was "
        "applied: start it again",
        finished_at=timezone.now(),
    )


def run(job_id: int) -> ProjectJob | None:
    """Run a queued job to its end (a worker calls this). A job that is not queued any more is left alone,
    so a message delivered twice runs the job once."""
    claimed = ProjectJob.objects.filter(pk=job_id, status=ProjectJob.Status.QUEUED).update(
        status=ProjectJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = ProjectJob.objects.select_related("project", "created_by").get(pk=job_id)

    def report(done: int, total: int | None = None) -> None:
        ProjectJob.objects.filter(pk=job.pk).update(done=done, total=total)

    try:
        runner = RUNNERS.get(job.kind)
        if runner is None:
            raise AnnotationError(f"no runner for project jobs of kind {job.kind!r}")
        result = runner(job, report)
    except AnnotationError as exc:
        _finish(job, ProjectJob.Status.FAILED, error=exc.reason)
    except Exception as exc:  # any other failure: its reason on the page, the worker goes on
        log.exception("project job %s failed", job.pk)
        _finish(job, ProjectJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    else:
        _finish(job, ProjectJob.Status.SUCCEEDED, result=result)
    job.refresh_from_db()
    return job


def _finish(job: ProjectJob, status: str, error: str = "", result: dict[str, Any] | None = None) -> None:
    ProjectJob.objects.filter(pk=job.pk).update(
        status=status, error=error, result=result or {}, finished_at=timezone.now()
    )
