"""A worker's batches: running a claimed batch through its model, recording each outcome once, giving a batch
back, and putting back the jobs of dead workers."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Field
from django.utils import timezone

from datastore.models import InferenceJob, ModelVersion
from datastore.services import registry
from modelpack.inputs import InputError
from serving.jobs.messages import announce_finished, queue_jobs
from serving.worker import outbox
from serving.worker.claims import MAX_ATTEMPTS, Batch, fail_out_of_attempts
from serving.worker.metrics import observe_batch
from serving.worker.runtimes import get_runtime


def job_input(job: InferenceJob) -> Any:
    """What the runtime takes for a job: its text, or its image file's bytes."""
    return base64.b64decode(job.inputs["image"]) if "image" in job.inputs else job.inputs["text"]


def run_batch(batch: Batch) -> int:
    """Run the batch's model on all its inputs at once and record each job's result or error.

    ``NAME@ALIAS`` is resolved once per batch: a promotion reaches the workers between batches, and every job of
    a batch is answered by the one whole version recorded on it. An input the model refuses fails its own job
    only; the rest run again without it. Returns how many jobs this claim finished (and records the batch in
    ``serving.worker.metrics``).

    Raises:
        RegistryError: the alias names no version any more. Errors of loading the model (a store that is down, a
            bad archive) are raised as they come; the task retries.
    """
    first = batch.jobs[0]
    model = registry.resolve(first.model_ref) if "@" in first.model_ref else first.model_version
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
    writes nothing, so no job ends twice. A job's callback becomes due in the same transaction (``outbox.owe``).
    Returns the jobs this call finished."""
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
            outbox.owe(job, now)  # the callback is owed from the very commit that ends the job
        _write_ended(done)
        transaction.on_commit(lambda: announce_finished(done), robust=True)  # once stored: callbacks, waiters
    return done


_ENDED_FIELDS = ("result", "error", "status", "finished_at", "lease_until", "model_version", *outbox.OWED_FIELDS)


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
        lease_until=timezone.now() + timedelta(seconds=settings.FSML_REQUEUE_QUEUED_SECONDS),
    )
    for job in batch.jobs[1:]:  # the first job's own message is the one being retried
        queue_jobs([job], countdown)


def requeue_lapsed(now: datetime | None = None) -> int:
    """Queue again the jobs nobody is serving: running jobs whose claim lapsed (their worker died; those out of
    attempts are failed instead) and queued jobs whose message was sent ``FSML_REQUEUE_QUEUED_SECONDS`` ago and
    not taken (a worker died holding it, or the broker lost it).

    Every worker runs this every few seconds (``serving.tasks``); skip-locked rows make concurrent calls share
    the work, and a duplicate message is harmless (the claim decides). Returns the number of jobs handled.
    """
    now = now or timezone.now()
    with transaction.atomic():
        stale = list(
            InferenceJob.objects.select_for_update(skip_locked=True)  # no select_related: see claims
            .filter(status__in=[InferenceJob.Status.RUNNING, InferenceJob.Status.QUEUED], lease_until__lt=now)
            .order_by("lease_until")[:500]
        )
        requeue = [j for j in stale if j.attempts < MAX_ATTEMPTS or j.status == InferenceJob.Status.QUEUED]
        for job in stale:
            if job not in requeue:
                fail_out_of_attempts(job)
        InferenceJob.objects.filter(pk__in=[j.pk for j in requeue]).update(
            status=InferenceJob.Status.QUEUED,
            claim=None,
            lease_until=now + timedelta(seconds=settings.FSML_REQUEUE_QUEUED_SECONDS),
        )
    queue_jobs(requeue)  # those that failed before are split off to run alone when claimed
    return len(stale)
