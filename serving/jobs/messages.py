"""The queue's messages and the announcement of ended jobs, which the web side (a submit) and the worker side
(a batch, a requeue) both send.

Messages name their Celery task (``serving.tasks``) rather than import it: the web side never loads worker code.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

import redis
from celery import current_app
from django.conf import settings

from datastore.models import InferenceJob
from serving.jobs.announcements import FINISHED_CHANNEL, announcement
from serving.jobs.states import ended_state

RUN_INFERENCE = "serving.tasks.run_inference"  # claims and runs the jobs a message names
DELIVER_CALLBACK = "serving.tasks.deliver_callback"  # POSTs a finished job to its callback URL
CALLBACK_QUEUE = "callbacks"


def queue_for(model_name: str) -> str:
    """``model.NAME`` for the models listed in ``FSML_MODEL_QUEUES`` (workers started with ``--queues``), else
    the shared ``inference`` queue."""
    return f"model.{model_name}" if model_name in settings.FSML_MODEL_QUEUES else "inference"


def queue_jobs(jobs: list[InferenceJob], countdown: float = 0) -> None:
    """Send the jobs' messages: one per model reference and ``FSML_BATCH_MAX`` jobs, to the model's own queue when
    ``FSML_MODEL_QUEUES`` names it; ``countdown`` delays them (a retry). A message's jobs are claimed and run as
    one batch."""
    groups: dict[tuple[str, str, Any], list[str]] = defaultdict(list)
    for job in jobs:
        groups[(queue_for(job.model_version.name), job.model_ref, job.model_version_id)].append(str(job.pk))
    size = settings.FSML_BATCH_MAX
    for (queue, _, _), ids in groups.items():
        for start in range(0, len(ids), size):
            # None, not 0: a countdown of 0 would still make an ETA message, held in the worker until due.
            current_app.send_task(
                RUN_INFERENCE, args=[ids[start : start + size]], queue=queue, countdown=countdown or None
            )


def queue_callback(job_id: Any, countdown: float = 0) -> None:
    """Send the message that prompts a worker to deliver a job's due callback (``serving.worker.outbox``), after
    ``countdown`` seconds. Only a prompt: the callback is owed in the database whether or not it arrives."""
    current_app.send_task(DELIVER_CALLBACK, args=[str(job_id)], queue=CALLBACK_QUEUE, countdown=countdown or None)


def announce_finished(jobs: list[InferenceJob]) -> None:
    """After the jobs' ends are committed (their callbacks due with them): prompt the callbacks they asked for and
    wake the synchronous requests waiting on them (Redis pub/sub)."""
    for job in jobs:
        if job.callback_url and job.callback_status == InferenceJob.CallbackStatus.PENDING:
            try:
                queue_callback(job.pk)
            except Exception as exc:  # broker down: say so on the job (a requeue loop prompts it); the others still go
                job.callback_status, job.callback_error = InferenceJob.CallbackStatus.NOT_QUEUED, str(exc)
                job.callback_queued_at = None
                InferenceJob.objects.filter(pk=job.pk, callback_status=InferenceJob.CallbackStatus.PENDING).update(
                    callback_status=job.callback_status, callback_error=job.callback_error, callback_queued_at=None
                )
    if jobs and uses_redis():
        with contextlib.suppress(redis.RedisError):  # waiters read the database while their listener is down
            broker_redis().publish(FINISHED_CHANNEL, announcement(map(ended_state, jobs)))


def uses_redis() -> bool:
    """The broker is Redis: finished jobs are announced on it (pub/sub), and it is checked for readiness."""
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


_redis: dict[str, redis.Redis] = {}


def broker_redis() -> redis.Redis:
    """A client of the broker's Redis with a connection pool, one per process (pub/sub of finished jobs)."""
    url = settings.CELERY_BROKER_URL
    if url not in _redis:
        _redis[url] = redis.Redis.from_url(url, socket_timeout=40, health_check_interval=30)
    return _redis[url]
