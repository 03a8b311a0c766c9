"""Submitting inference jobs: idempotency, grouped storing and queueing, and waiting for a result. What a submit
is checked for first is ``serving.web.checks``."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.utils import timezone

from datastore.models import InferenceJob, ModelVersion
from serving.jobs.messages import announce_finished, broker_redis, queue_jobs, uses_redis
from serving.jobs.states import ENDED, apply_ended_state
from serving.web import frontdoor
from serving.web.checks import JobError, checked_callback_url, resolve_for_submit, validate_inputs

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 100
MAX_BATCH_SUBMIT = 256  # inputs per batch submit
BATCH_KEY_ROOM = 6  # characters of an idempotency key a batch submit keeps for its jobs' "#i" suffixes


def submit_job(
    user: Any, model_ref: str, inputs: Any, idempotency_key: str | None = None, callback_url: str = ""
) -> tuple[InferenceJob, bool]:
    """Create a job and queue it once the row is committed. Returns (job, created): a retried submit with the
    same idempotency key returns the first job instead of a second one. With a ``callback_url``, the finished
    job is POSTed there (``deliver_callback``)."""
    _check_key(idempotency_key, MAX_IDEMPOTENCY_KEY)
    callback_url = checked_callback_url(callback_url)
    model = resolve_for_submit(model_ref)
    jobs, created = _create(
        user, model, model_ref, [validate_inputs(model, inputs)], [idempotency_key or None], callback_url
    )
    return jobs[0], created


def submit_batch(
    user: Any, model_ref: str, inputs: Any, idempotency_key: str | None = None, callback_url: str = ""
) -> tuple[list[InferenceJob], bool]:
    """Create one job per input (all or none: every input is checked first) and queue them. Returns (jobs,
    created); a retried submit with the same idempotency key returns the first submit's jobs, whose keys are
    ``KEY#i``. With a ``callback_url``, each finished job is POSTed there (``deliver_callback``)."""
    _check_key(idempotency_key, MAX_IDEMPOTENCY_KEY - BATCH_KEY_ROOM)
    if not isinstance(inputs, list) or not inputs:
        raise JobError("inputs: expected a non-empty list", field="inputs")
    if len(inputs) > MAX_BATCH_SUBMIT:
        raise JobError(f"inputs: at most {MAX_BATCH_SUBMIT} per request, got {len(inputs)}", 413, "inputs")
    callback_url = checked_callback_url(callback_url)
    model = resolve_for_submit(model_ref)
    clean = [validate_inputs(model, x, i) for i, x in enumerate(inputs)]
    keys = [f"{idempotency_key}#{i}" if idempotency_key else None for i in range(len(clean))]
    return _create(user, model, model_ref, clean, keys, callback_url)


def _check_key(key: str | None, limit: int) -> None:
    if key is not None and not 0 < len(key) <= limit:
        raise JobError(f"Idempotency-Key must be 1 to {limit} characters", field="Idempotency-Key")


def _create(
    user: Any,
    model: ModelVersion,
    model_ref: str,
    clean: list[dict[str, Any]],
    keys: list[str | None],
    callback_url: str,
) -> tuple[list[InferenceJob], bool]:
    """Store and queue one job per checked input, or find the jobs of the earlier submit with these keys."""
    if any(keys):
        existing = _same_submit(user, model, model_ref, clean, keys)
        if existing is not None:
            return existing, False
    recheck = timezone.now() + timedelta(seconds=settings.FSML_REQUEUE_QUEUED_SECONDS)
    callback = InferenceJob.CallbackStatus.PENDING if callback_url else InferenceJob.CallbackStatus.NONE
    jobs = [
        InferenceJob(
            model_version=model,
            model_ref=model_ref,
            submitted_by=user,
            inputs=x,
            idempotency_key=key,
            lease_until=recheck,
            callback_url=callback_url,
            callback_status=callback,
        )
        for x, key in zip(clean, keys, strict=True)
    ]
    try:
        store_jobs(jobs)
    except IntegrityError as exc:
        if not is_duplicate_key(exc):  # a CHECK the inputs failed (MariaDB's JSON_VALID, say): the input's fault
            raise JobError("inputs: the database cannot store them as JSON text", field="inputs") from exc
        # A concurrent retry with the same key won the race: its jobs, if it was this request.
        earlier = _same_submit(user, model, model_ref, clean, keys)
        if earlier is None:
            raise
        return earlier, False
    return jobs, True


DUPLICATE_KEY_ERRORS = {1062, 1586}  # MariaDB/MySQL ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME


def is_duplicate_key(exc: IntegrityError) -> bool:
    """Whether the insert was refused for a unique key already taken (the idempotency key, the jobs' only one), not
    for a value the database refuses."""
    code = exc.args[0] if exc.args else None
    return code in DUPLICATE_KEY_ERRORS or str(exc).startswith("UNIQUE constraint failed")  # SQLite's wording


def _same_submit(
    user: Any, model: ModelVersion, model_ref: str, clean: list[dict[str, Any]], keys: list[Any]
) -> list[InferenceJob] | None:
    """The jobs of an earlier submit with these keys, or None; a JobError when the key was used otherwise."""
    found = {j.idempotency_key: j for j in InferenceJob.objects.filter(submitted_by=user, idempotency_key__in=keys)}
    if not found:
        return None
    jobs = [found.get(key) for key in keys]
    for job, inputs in zip(jobs, clean, strict=True):
        # The same reference, not the same version: an alias may have moved since the first submit.
        same_model = job is not None and (
            job.model_ref == model_ref if job.model_ref else job.model_version_id == model.pk
        )
        if job is None or not same_model or job.inputs != inputs:
            raise JobError(
                "Idempotency-Key was already used for a different request", status=422, field="Idempotency-Key"
            )
    return jobs  # type: ignore[return-value]


def store_jobs(jobs: list[InferenceJob]) -> None:
    """Insert the jobs and queue them, with the jobs of concurrent requests in this process (one insert, one
    commit, one message per model and ``FSML_BATCH_MAX`` jobs: ``frontdoor.Grouper``). A caller inside a
    transaction stores them in it, and they are queued when it commits (a worker would not see them before);
    ``FSML_GROUP_SUBMITS=0`` stores each request by itself.

    Raises:
        IntegrityError: an idempotency key already taken (only this request's jobs are refused).
        JobError: the broker is down (503; the jobs are stored as failed, never left queued).
    """
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():  # a savepoint: a taken key leaves the caller's transaction usable
            InferenceJob.objects.bulk_create(jobs, batch_size=500)
        transaction.on_commit(lambda: _queue_or_fail(jobs), robust=True)
        return
    if not settings.FSML_GROUP_SUBMITS:
        if error := store_groups([jobs])[0]:
            raise error
        return
    _submitter.put(jobs)


def store_groups(groups: list[list[InferenceJob]]) -> list[BaseException | None]:
    """Store and queue the jobs of several requests at once (one insert, one commit); the error each request
    gets, or None. A database error stores each request alone, so only the failing one fails."""
    try:
        with transaction.atomic():
            InferenceJob.objects.bulk_create([job for jobs in groups for job in jobs], batch_size=500)
    except DatabaseError as exc:  # a taken idempotency key, a deadlock, a statement too large for the server...
        # ...is one request's problem: store each request alone, so only the failing one fails.
        return [exc] if len(groups) == 1 else [store_groups([jobs])[0] for jobs in groups]
    if _queue_or_fail([job for jobs in groups for job in jobs]):
        return [JobError("the job queue is unavailable; retry later", status=503)] * len(groups)
    return [None] * len(groups)


def _queue_or_fail(jobs: list[InferenceJob]) -> str:
    """Send the stored jobs' messages; when the broker cannot take them, fail the jobs (they must not wait
    forever in "queued") and return why."""
    try:
        queue_jobs(jobs)
    except Exception as exc:  # broker unreachable
        log.error("could not queue %d jobs: %s", len(jobs), exc)
        fail_unqueued(jobs, f"could not queue the job: {exc}")
        return str(exc)
    return ""


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


def _flush_grouped(groups: list[list[InferenceJob]]) -> list[BaseException | None]:
    close_old_connections()  # the grouper's own thread: no request start or end recycles its connection
    return store_groups(groups)


_submitter: frontdoor.Grouper[list[InferenceJob]] = frontdoor.Grouper(
    _flush_grouped, max_items=64, name="fsml-job-submitter"
)
_listener = frontdoor.FinishedListener(broker_redis)


def wait_for_job(job: InferenceJob, timeout: float) -> InferenceJob:
    """The job once it ended, or as it is after ``timeout`` seconds. Where the broker is Redis, the process's one
    listener to finished batches wakes it (no polling while Redis is up); else it reads the database every 50 ms.
    """

    def has_ended() -> bool:
        job.refresh_from_db()
        return job.status in ENDED

    if job.status in ENDED:
        return job
    if uses_redis():
        ids = [str(job.pk)]
        generation = _listener.generation
        event = _listener.expect(ids)
        try:
            frontdoor.wait_until(event, _listener, timeout, has_ended, generation)
        finally:
            _listener.forget(ids, event)
        state = _listener.ended(ids[0])
        if state is not None and apply_ended_state(job, state):  # its announcement carried the outcome
            return job
        return InferenceJob.objects.select_related("model_version").get(pk=job.pk)
    deadline = time.monotonic() + timeout
    while not has_ended() and time.monotonic() < deadline:
        time.sleep(0.05)
    return job
