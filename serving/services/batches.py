"""A worker's batches: claiming jobs under a token and a lease, running them, recording each outcome once, and
putting back the jobs of dead workers."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from django.db import connections, transaction
from django.db.models import F, Field
from django.utils import timezone

from datastore.models import InferenceJob, ModelVersion
from modelpack.inputs import InputError
from serving.services.messages import (
    MAX_ATTEMPTS,
    announce_finished,
    batch_max,
    batch_wait,
    finish_job,
    lease_seconds,
    queue_jobs,
    requeue_queued_seconds,
    run_inference_later,
)
from serving.services.submit import job_input, resolve_model


@dataclass
class Batch:
    """Jobs one worker claimed together: same model reference, one claim token, one lease."""

    jobs: list[InferenceJob]
    claim: uuid.UUID
    worker: str
    pid: int


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


def claim_batch(job_ids: list[str] | str, worker: str, pid: int) -> Batch | None:
    """Claim a message's jobs and, to fill the batch, up to ``batch_max()`` queued jobs of the same model
    reference in all.

    Returns None when the message has nothing to do: its jobs ended, or another live worker holds them (a batch
    took them; if that worker dies, its lease lapses and ``requeue_lapsed`` queues the job again). A job that has
    failed before runs alone, so a poison input cannot take innocent batch-mates down with it (the message's
    other such jobs are sent again, one message each), and after MAX_ATTEMPTS it is failed instead of run again.
    """
    ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
    now = timezone.now()
    with transaction.atomic():
        listed = InferenceJob.objects.select_for_update().filter(pk__in=ids).order_by("queued_at")
        jobs: list[InferenceJob] = []
        tried: list[InferenceJob] = []
        for job in listed:
            held = job.status == InferenceJob.Status.RUNNING and job.lease_until and job.lease_until > now
            if job.status in (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED) or (
                held and not _holder_is_dead(job, worker)
            ):
                continue
            if job.attempts >= MAX_ATTEMPTS:
                finish_job(job, error=_gave_up(job))
                continue
            (tried if job.attempts else jobs).append(job)
        if not jobs and tried:
            jobs, tried = tried[:1], tried[1:]
        for job in tried:
            transaction.on_commit(partial(run_inference_later, job), robust=True)
        if not jobs:
            return None
        if len(jobs) > batch_max():  # the sender allowed larger batches than this worker: the rest go back
            jobs, overflow = jobs[: batch_max()], jobs[batch_max() :]
            transaction.on_commit(lambda: queue_jobs(overflow), robust=True)
        fresh = jobs[0].attempts == 0
        if fresh:
            jobs += _queued_batch_mates(jobs[0], batch_max() - len(jobs), exclude=[j.pk for j in jobs])
        if fresh and len(jobs) < batch_max() and batch_wait():
            time.sleep(batch_wait())  # dynamic batching: a few milliseconds for more of the same model's jobs
            jobs += _queued_batch_mates(jobs[0], batch_max() - len(jobs), exclude=[j.pk for j in jobs])
        token = uuid.uuid4()
        claimed = {
            "status": InferenceJob.Status.RUNNING,
            "claim": token,
            "lease_until": now + timedelta(seconds=lease_seconds()),
            "started_at": timezone.now(),
            "worker": worker,
            "worker_pid": pid,
            "batch_size": len(jobs),
        }
        InferenceJob.objects.filter(pk__in=[j.pk for j in jobs]).update(attempts=F("attempts") + 1, **claimed)
    for j in jobs:  # the rows as now stored: a finished job is announced with them
        for name, value in claimed.items():
            setattr(j, name, value)
        j.attempts += 1
    return Batch(jobs, token, worker, pid)


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


def run_batch(batch: Batch) -> int:
    """Run the batch's model on all its inputs at once and record each job's result or error.

    ``NAME@ALIAS`` is resolved once per batch: a promotion reaches the workers between batches, and every job of
    a batch is answered by the one whole version recorded on it. An input the model refuses fails its own job
    only; the rest run again without it. Returns how many jobs this claim finished (and records the batch in
    ``serving.metrics``).
    """
    from serving.metrics import observe_batch
    from serving.runtimes import get_runtime

    first = batch.jobs[0]
    model = resolve_model(first.model_ref) if "@" in first.model_ref else first.model_version
    runtime = get_runtime(model)  # fully loaded before use: never half a model
    began = time.perf_counter()
    outcomes: dict[Any, tuple[dict[str, Any] | None, str]] = {}
    pending = list(batch.jobs)
    while pending:
        try:
            predictions = runtime.predict([job_input(j) for j in pending])
        except InputError as exc:
            bad = pending if exc.index is None else [pending[exc.index]]
            outcomes.update({j.pk: (None, exc.reason if exc.index is not None else str(exc)) for j in bad})
            pending = [j for j in pending if j not in bad]
            continue
        outcomes.update({j.pk: (p.as_dict(), "") for j, p in zip(pending, predictions, strict=True)})
        break
    seconds = time.perf_counter() - began
    finished = finish_batch(batch, outcomes, model)
    observe_batch(model.name, finished, outcomes, seconds)
    return len(finished)


def finish_batch(
    batch: Batch, outcomes: dict[Any, tuple[dict[str, Any] | None, str]], model: ModelVersion | None = None
) -> list[InferenceJob]:
    """Record each job's outcome, only while this claim still holds it: a claim that lapsed and was taken over
    writes nothing, so no job ends twice. Returns the jobs this call finished."""
    now = timezone.now()
    with transaction.atomic():
        # Lock the jobs this claim still holds; the rest were taken over and are not ours to end.
        held = set(
            InferenceJob.objects.select_for_update()
            .filter(pk__in=[job.pk for job in batch.jobs], claim=batch.claim, status=InferenceJob.Status.RUNNING)
            .values_list("pk", flat=True)
        )
        done = [job for job in batch.jobs if job.pk in held]
        for job in done:
            job.result, job.error = outcomes[job.pk]
            job.status = InferenceJob.Status.FAILED if job.error else InferenceJob.Status.SUCCEEDED
            job.finished_at, job.lease_until = now, None
            if model is not None:
                job.model_version = model
        _write_ended(done)
        transaction.on_commit(lambda: announce_finished(done), robust=True)  # once stored: callbacks, waiters
    return done


_ENDED_FIELDS = ("result", "error", "status", "finished_at", "lease_until", "model_version")


def _write_ended(jobs: list[InferenceJob]) -> None:
    """Write the ended jobs' outcome fields: one UPDATE statement, executed with a row of parameters per job
    (mysqlclient sends one round trip per row, but no query is built per job). The ORM's
    ``update`` or ``bulk_update`` (a CASE per field and job) spent more CPU building the query than the model
    spent on the batch."""
    if not jobs:
        return
    meta, conn = InferenceJob._meta, connections[InferenceJob.objects.db]
    quote = conn.ops.quote_name
    fields = [cast(Field, meta.get_field(name)) for name in _ENDED_FIELDS]
    pk = cast(Field, meta.pk)
    sets = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(pk.column)} = %s"
    rows = [
        [f.get_db_prep_save(getattr(job, f.attname), conn) for f in fields] + [pk.get_db_prep_value(job.pk, conn)]
        for job in jobs
    ]
    with conn.cursor() as cursor:
        cursor.executemany(sql, rows)


def release_batch(batch: Batch, error: str, countdown: float) -> None:
    """Give a batch back to the queue (its model failed to load: the task retries after ``countdown``), with the
    error kept on each job for the record, and its batch-mates' messages re-sent after the same delay."""
    ids = [j.pk for j in batch.jobs]
    InferenceJob.objects.filter(pk__in=ids, claim=batch.claim, status=InferenceJob.Status.RUNNING).update(
        status=InferenceJob.Status.QUEUED,
        claim=None,
        error=error,
        lease_until=timezone.now() + timedelta(seconds=requeue_queued_seconds()),
    )
    for job in batch.jobs[1:]:  # the first job's own message is the one being retried
        run_inference_later(job, countdown)


def requeue_lapsed(now: datetime | None = None) -> int:
    """Queue again the jobs nobody is serving: running jobs whose claim lapsed (their worker died; those out of
    attempts are failed instead) and queued jobs whose message was sent ``requeue_queued_seconds()`` ago and not
    taken (a worker died holding it, or the broker lost it).

    Every worker runs this every few seconds (``serving.tasks``); skip-locked rows make concurrent calls share
    the work, and a duplicate message is harmless (the claim decides). Returns the number of jobs handled.
    """
    now = now or timezone.now()
    with transaction.atomic():
        stale = list(
            InferenceJob.objects.select_for_update(skip_locked=True)  # no select_related: see _queued_batch_mates
            .filter(status__in=[InferenceJob.Status.RUNNING, InferenceJob.Status.QUEUED], lease_until__lt=now)
            .order_by("lease_until")[:500]
        )
        requeue = [j for j in stale if j.attempts < MAX_ATTEMPTS or j.status == InferenceJob.Status.QUEUED]
        for job in stale:
            if job not in requeue:
                finish_job(job, error=_gave_up(job))
        InferenceJob.objects.filter(pk__in=[j.pk for j in requeue]).update(
            status=InferenceJob.Status.QUEUED,
            claim=None,
            lease_until=now + timedelta(seconds=requeue_queued_seconds()),
        )
    queue_jobs(requeue)  # those that failed before are split off to run alone when claimed
    return len(stale)


def _gave_up(job: InferenceJob) -> str:
    """The error of a job out of attempts, with the last failure it met when there was one."""
    last = f"; last error: {job.error}" if job.error else " (the worker died or timed out)"
    return f"gave up after {job.attempts} attempts{last}"
