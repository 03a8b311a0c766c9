"""A worker's claims on jobs: the jobs of a message and, to fill a batch, other queued jobs of the same model,
taken under one token and one lease, so that only the current claim can record a job's result."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from datastore.models import InferenceJob
from serving.jobs.messages import announce_finished, queue_jobs
from serving.jobs.states import ENDED
from serving.worker import outbox

MAX_ATTEMPTS = 3  # runs of a job before it fails with its last error


@dataclass
class Batch:
    """Jobs one worker claimed together: same model reference, one claim token, one lease."""

    jobs: list[InferenceJob]
    claim: uuid.UUID
    worker: str
    pid: int


def claim_batch(job_ids: list[str] | str, worker: str, pid: int) -> Batch | None:
    """Claim a message's jobs and, to fill the batch, queued jobs of the same model reference, up to
    ``FSML_BATCH_MAX`` in all. When a fresh batch is still short of that, the worker waits
    ``FSML_BATCH_WAIT_MS`` for more, holding no row lock meanwhile (its jobs are already claimed), and claims
    those that came.

    Returns None when the message has nothing to do: its jobs ended, or another live worker holds them (a batch
    took them; if that worker dies, its lease lapses and ``requeue_lapsed`` queues the job again). A job that has
    failed before runs alone, so a poison input cannot take innocent batch-mates down with it (the message's
    other such jobs are sent again, one message each), and after MAX_ATTEMPTS it is failed instead of run again.
    """
    batch = _claim_listed([job_ids] if isinstance(job_ids, str) else list(job_ids), worker, pid)
    wait = settings.FSML_BATCH_WAIT_SECONDS
    fresh = batch is not None and batch.jobs[0].attempts == 1  # its jobs run for the first time
    if batch is not None and fresh and len(batch.jobs) < settings.FSML_BATCH_MAX and wait:
        time.sleep(wait)  # dynamic batching: a few milliseconds for more of the same model's jobs
        _claim_more(batch)
    return batch


def _claim_listed(ids: list[str], worker: str, pid: int) -> Batch | None:
    """Claim the message's jobs that are free, with the batch-mates queued now (one transaction)."""
    now = timezone.now()
    most = settings.FSML_BATCH_MAX
    with transaction.atomic():
        listed = InferenceJob.objects.select_for_update().filter(pk__in=ids).order_by("queued_at")
        jobs: list[InferenceJob] = []
        tried: list[InferenceJob] = []
        for job in listed:
            held = job.status == InferenceJob.Status.RUNNING and job.lease_until and job.lease_until > now
            if job.status in ENDED or (held and not _holder_is_dead(job, worker)):
                continue
            if job.attempts >= MAX_ATTEMPTS:
                fail_out_of_attempts(job)
                continue
            (tried if job.attempts else jobs).append(job)
        if not jobs and tried:
            jobs, tried = tried[:1], tried[1:]
        for job in tried:
            transaction.on_commit(partial(queue_jobs, [job]), robust=True)
        if not jobs:
            return None
        if len(jobs) > most:  # the sender allowed larger batches than this worker: the rest go back
            jobs, overflow = jobs[:most], jobs[most:]
            transaction.on_commit(lambda: queue_jobs(overflow), robust=True)
        if jobs[0].attempts == 0:
            jobs += _queued_batch_mates(jobs[0], most - len(jobs), exclude=[j.pk for j in jobs])
        batch = Batch([], uuid.uuid4(), worker, pid)
        _take(batch, jobs)
    return batch


def _claim_more(batch: Batch) -> None:
    """Add to a fresh batch the batch-mates queued since it was claimed (one transaction)."""
    with transaction.atomic():
        first = batch.jobs[0]
        mates = _queued_batch_mates(first, settings.FSML_BATCH_MAX - len(batch.jobs), [j.pk for j in batch.jobs])
        if mates:
            _take(batch, mates)
            InferenceJob.objects.filter(pk__in=[j.pk for j in batch.jobs], claim=batch.claim).update(
                batch_size=len(batch.jobs)
            )
            for job in batch.jobs:
                job.batch_size = len(batch.jobs)


def _take(batch: Batch, jobs: list[InferenceJob]) -> None:
    """Claim ``jobs`` (locked) for ``batch``: running, under its token and a fresh lease, one attempt more."""
    now = timezone.now()
    claimed = {
        "status": InferenceJob.Status.RUNNING,
        "claim": batch.claim,
        "lease_until": now + timedelta(seconds=settings.FSML_JOB_LEASE_SECONDS),
        "started_at": now,
        "worker": batch.worker,
        "worker_pid": batch.pid,
        "batch_size": len(batch.jobs) + len(jobs),
    }
    InferenceJob.objects.filter(pk__in=[j.pk for j in jobs]).update(attempts=F("attempts") + 1, **claimed)
    for job in jobs:  # the rows as now stored: a finished job is announced with them
        for name, value in claimed.items():
            setattr(job, name, value)
        job.attempts += 1
    batch.jobs += jobs


def _holder_is_dead(job: InferenceJob, worker: str) -> bool:
    """The job's claimer was a process of this very worker that no longer exists (a killed pool child)."""
    if job.worker != worker or not job.worker_pid:
        return False
    try:
        os.kill(job.worker_pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _queued_batch_mates(job: InferenceJob, limit: int, exclude: list[Any]) -> list[InferenceJob]:
    if limit <= 0:
        return []
    # No select_related here: under FOR UPDATE, MariaDB would lock the joined model version row too, serialising
    # every worker's claims and every submit for that model behind it.
    mates = InferenceJob.objects.select_for_update(skip_locked=True)
    mates = mates.filter(status=InferenceJob.Status.QUEUED, model_ref=job.model_ref, attempts=0)
    if "@" not in job.model_ref:  # NAME and NAME:VERSION were fixed to a version at submit: keep to it
        mates = mates.filter(model_version=job.model_version_id)
    mates = mates.exclude(pk__in=exclude).order_by("queued_at")
    return list(mates[:limit])


def fail_out_of_attempts(job: InferenceJob) -> None:
    """End a job that ran MAX_ATTEMPTS times, outside any batch claim, with its last failure when there was one."""
    last = f"; last error: {job.error}" if job.error else " (the worker died or timed out)"
    job.result, job.error = None, f"gave up after {job.attempts} attempts{last}"
    job.status, job.finished_at, job.lease_until = InferenceJob.Status.FAILED, timezone.now(), None
    owed = outbox.owe(job, job.finished_at)  # in the caller's transaction, with the job's end
    job.save(update_fields=["result", "error", "status", "finished_at", "lease_until", *owed])
    transaction.on_commit(lambda: announce_finished([job]), robust=True)
