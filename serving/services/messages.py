"""Sending jobs' messages and announcing their ends: the queue, the Redis wake-ups, the callbacks' bookkeeping,
and ending a job outside a batch."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from datastore.models import InferenceJob
from serving import frontdoor

MAX_ATTEMPTS = 3
CALLBACK_QUEUE = "callbacks"


def run_inference_later(job: InferenceJob, countdown: float = 0) -> None:
    """Send one job's message again (a retry, or a job put back in the queue)."""
    queue_jobs([job], countdown)


def queue_jobs(jobs: list[InferenceJob], countdown: float = 0) -> None:
    """Send the jobs' messages: one per model reference and ``batch_max()`` jobs, to the model's own queue when
    ``FSML_MODEL_QUEUES`` names it. A message's jobs are claimed and run as one batch."""
    from serving.tasks import run_inference

    groups: dict[tuple[str, str, Any], list[str]] = defaultdict(list)
    for job in jobs:
        groups[(queue_for(job.model_version.name), job.model_ref, job.model_version_id)].append(str(job.pk))
    size = batch_max()
    for (queue, _, _), ids in groups.items():
        for start in range(0, len(ids), size):
            # None, not 0: a countdown of 0 would still make an ETA message, held in the worker until due.
            run_inference.apply_async(
                (ids[start : start + size],),
                queue=queue,
                countdown=countdown or None,  # type: ignore[arg-type]  # celery-types wants a float; None is Celery's default
            )


def queue_for(model_name: str) -> str:
    """``model.NAME`` for the models listed in ``FSML_MODEL_QUEUES`` (workers started with ``--queues``), else
    the shared ``inference`` queue."""
    return f"model.{model_name}" if model_name in settings.FSML_MODEL_QUEUES else "inference"


def requeue_queued_seconds() -> float:
    """A job still queued this long after its message was sent gets its message sent again (a lost message:
    its worker died holding it, or the broker lost it); a duplicate message is harmless."""
    return float(settings.FSML_REQUEUE_QUEUED_SECONDS)


def batch_max() -> int:
    return int(settings.FSML_BATCH_MAX)


def batch_wait() -> float:
    """Seconds a worker waits for more queued jobs when its first look finds fewer than ``batch_max``."""
    return float(settings.FSML_BATCH_WAIT_SECONDS)


def lease_seconds() -> float:
    """How long a claim lasts: above the task's time limit, so a live worker's job is never taken from it."""
    return float(settings.FSML_JOB_LEASE_SECONDS)


def announce_finished(jobs: list[InferenceJob]) -> None:
    """After the results are committed: wake the synchronous requests waiting on these jobs (Redis pub/sub) and
    queue the callbacks they asked for."""

    from serving.tasks import deliver_callback

    for job in jobs:
        if job.callback_url:
            try:
                deliver_callback.apply_async((str(job.pk),), queue=CALLBACK_QUEUE)
            except Exception as exc:  # broker down: say so on the job; the others still go
                job.callback_status = f"{NOT_QUEUED}{exc}"[:300]
                InferenceJob.objects.filter(pk=job.pk).update(callback_status=job.callback_status)
    if jobs and uses_redis():
        with contextlib.suppress(redis.RedisError):  # waiters read the database while their listener is down
            broker_redis().publish(frontdoor.FINISHED_CHANNEL, frontdoor.announcement(map(ended_state, jobs)))


# What a finished job's announcement carries: every field its ending, its claim or a callback may have changed.
_CARRIED = (
    "status",
    "result",
    "error",
    "attempts",
    "worker",
    "worker_pid",
    "batch_size",
    "model_version_id",
    "callback_status",
    "callback_attempts",
)
_CARRIED_TIMES = ("started_at", "finished_at")


def ended_state(job: InferenceJob) -> dict[str, Any]:
    """The fields of an ended job that ``apply_ended_state`` sets on the submitter's copy of it."""
    state = {"id": str(job.pk)} | {name: getattr(job, name) for name in _CARRIED}
    return state | {name: when.isoformat() if (when := getattr(job, name)) else None for name in _CARRIED_TIMES}


def apply_ended_state(job: InferenceJob, state: dict[str, Any]) -> bool:
    """Bring ``job`` (as submitted) to its ended ``state``, as reading it back would (tests compare the two).
    False, with ``job`` untouched, for a state that is not a whole ended one (the caller reads the job instead)."""
    try:
        ended = state["status"] in (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED)
        values = {name: state[name] for name in _CARRIED}
        times = {name: datetime.fromisoformat(state[name]) if state[name] else None for name in _CARRIED_TIMES}
    except (KeyError, TypeError, ValueError):
        return False
    if not ended:
        return False
    for name, value in (values | times).items():
        setattr(job, name, value)  # a model version other than the submitted one is read when shown
    job.lease_until = None
    return True


_redis: dict[str, redis.Redis] = {}


def uses_redis() -> bool:
    """The broker is Redis: finished jobs are announced on it (pub/sub), and it is checked for readiness."""
    from django.conf import settings

    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def broker_redis() -> redis.Redis:
    """A client of the broker's Redis with a connection pool, one per process (pub/sub of finished jobs)."""
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if url not in _redis:
        _redis[url] = redis.Redis.from_url(url, socket_timeout=40, health_check_interval=30)
    return _redis[url]


def record_callback(job_id: Any, outcome: str, gave_up: bool = False) -> None:
    status = "delivered" if not outcome else (f"gave up: {outcome}" if gave_up else outcome)
    InferenceJob.objects.filter(pk=job_id).update(
        callback_status=status[:300], callback_attempts=F("callback_attempts") + 1
    )


NOT_QUEUED = "not queued: "


def resend_callbacks() -> int:
    """Queue again the callbacks that could not be queued when their job ended (the broker was down then).
    Every worker's requeue loop calls this; returns how many were sent."""
    from serving.tasks import deliver_callback

    with transaction.atomic():
        # Locked rows are skipped: two workers' loops never send the same callback. A broker error rolls the
        # marks back, so what was not sent is tried next round (a message sent before the error may go twice:
        # receivers dedupe by X-Fsml-Job, and deliver_callback skips a job already delivered).
        pending = (
            InferenceJob.objects.select_for_update(skip_locked=True)
            .filter(callback_status__startswith=NOT_QUEUED)
            .values_list("pk", flat=True)
        )
        ids = list(pending[:500])
        for job_id in ids:
            deliver_callback.apply_async((str(job_id),), queue=CALLBACK_QUEUE)
        return InferenceJob.objects.filter(pk__in=ids).update(callback_status="queued again")


def fail_unqueued(jobs: list[InferenceJob], error: str) -> list[InferenceJob]:
    """End the jobs of a submit whose messages could not all be sent, where no worker took them yet: they must not
    wait in "queued" forever, and the caller is told to retry. Their idempotency keys are freed, so the retry
    stores them again instead of finding these failed rows. A job a worker already claimed (its message went out
    before the broker failed) runs on. Returns the jobs ended here."""
    now = timezone.now()
    with transaction.atomic():
        untaken = list(
            InferenceJob.objects.select_for_update()
            .select_related("model_version")
            .filter(pk__in=[job.pk for job in jobs], status=InferenceJob.Status.QUEUED)
        )
        for job in untaken:
            job.status, job.error, job.finished_at, job.lease_until = InferenceJob.Status.FAILED, error, now, None
            job.idempotency_key = None
        InferenceJob.objects.bulk_update(
            untaken, ["status", "error", "finished_at", "lease_until", "idempotency_key"], batch_size=500
        )
        transaction.on_commit(lambda: announce_finished(untaken), robust=True)
    return untaken


def finish_job(job: InferenceJob, result: dict[str, Any] | None = None, error: str = "") -> InferenceJob:
    """End a job outside any batch claim (it could not be queued, or it is out of attempts)."""
    job.result, job.error = result, error
    job.status = InferenceJob.Status.FAILED if error else InferenceJob.Status.SUCCEEDED
    job.finished_at, job.lease_until = timezone.now(), None
    job.save(update_fields=["result", "error", "status", "finished_at", "lease_until"])
    transaction.on_commit(lambda: announce_finished([job]), robust=True)
    return job
