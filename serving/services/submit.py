"""Submitting inference jobs: checks before anything is queued, idempotency, grouped storing, and waiting for a
result."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from datastore.models import InferenceJob, ModelAlias, ModelVersion
from datastore.services import registry
from modelpack.inputs import MAX_IMAGE_BYTES, MAX_TEXT_CHARS, InputError, check_text
from serving import callbacks, frontdoor
from serving.services.messages import (
    apply_ended_state,
    broker_redis,
    fail_unqueued,
    queue_jobs,
    requeue_queued_seconds,
    uses_redis,
)

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 100
MAX_BATCH_SUBMIT = 256  # inputs per batch submit


class JobError(Exception):
    """A job request refused before anything was queued; ``status`` is the HTTP status it maps to."""

    def __init__(self, reason: str, status: int = 400, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.field = reason, status, field


def resolve_model(ref: str) -> ModelVersion:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``; a JobError on the ``model`` field otherwise."""
    try:
        return registry.resolve(ref)
    except registry.RegistryError as exc:
        raise JobError(exc.reason, status=exc.status, field="model") from None


_resolved: dict[str, tuple[float, ModelVersion]] = {}


def resolve_for_submit(ref: str) -> ModelVersion:
    """``resolve_model``, remembered for ``FSML_MODEL_REF_CACHE_SECONDS`` (1) in this process: a submit's
    reference is resolved on every request, and it rarely changes. A registration or an alias move made in this
    process is seen at once, one made elsewhere within that time; workers resolve ``NAME@ALIAS`` again for each
    batch, uncached, so the version that serves a job is always the alias's current one."""
    ttl = float(settings.FSML_MODEL_REF_CACHE_SECONDS)
    hit = _resolved.get(ref)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    model = resolve_model(ref)
    if ttl > 0:
        if len(_resolved) > 1000:
            _resolved.clear()
        _resolved[ref] = (time.monotonic() + ttl, model)
    return model


def forget_resolved(**_: Any) -> None:
    _resolved.clear()


for _sender in (ModelVersion, ModelAlias):
    post_save.connect(forget_resolved, sender=_sender, dispatch_uid=f"fsml-forget-resolved-{_sender.__name__}")
    post_delete.connect(forget_resolved, sender=_sender, dispatch_uid=f"fsml-forget-resolved-del-{_sender.__name__}")


TEXT_TASKS = ("text_classification", "multi_label", "spans")


def validate_inputs(model: ModelVersion, inputs: Any, index: int | None = None) -> dict[str, Any]:
    """One job's inputs, checked before anything is queued; ``index`` places it in a batch submit.

    Text models (classification, multi-label, spans) take ``{"text": "..."}``; image models take
    ``{"image": "<base64 of a PNG, JPEG, ... file>"}``, decoded and opened here so a bad file is a 4xx.
    """
    prefix = "inputs" if index is None else f"inputs[{index}]"
    if not isinstance(inputs, dict):
        raise JobError(f"{prefix}: expected an object, got {type(inputs).__name__}", field=prefix)
    if model.task_type in TEXT_TASKS:
        text = inputs.get("text")
        try:
            check_text(text)
        except InputError as exc:
            status = 413 if isinstance(text, str) and len(text) > MAX_TEXT_CHARS else 400
            raise JobError(f"{prefix}.text: {exc.reason}", status=status, field=f"{prefix}.text") from exc
        return {"text": text}
    if model.task_type == "image_classification":
        where = f"{prefix}.image"
        encoded = inputs.get("image")
        if not isinstance(encoded, str) or not encoded:
            raise JobError(f"{where}: expected a base64-encoded image file", field=where)
        if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            raise JobError(f"{where}: image larger than {MAX_IMAGE_BYTES} bytes", status=413, field=where)
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise JobError(f"{where}: not valid base64", field=where) from None
        _check_image(data, where)
        return {"image": encoded}
    raise JobError(f"model task type {model.task_type} is not served", status=501)


def _check_image(data: bytes, where: str) -> None:
    """Decode the whole image now, as an import does (``datastore.services.check_image``: a known format, at most
    ``MAX_IMAGE_PIXELS``), so a broken or oversized file is a 400 here, not a failed job or a worker out of memory."""
    from datastore.services import ItemError, check_image

    try:
        check_image(where, data)
    except ItemError as exc:
        raise JobError(f"{where}: {exc.reason}", field=where) from None


def job_input(job: InferenceJob) -> Any:
    """What the runtime takes for a job: its text, or its image file's bytes."""
    return base64.b64decode(job.inputs["image"]) if "image" in job.inputs else job.inputs["text"]


def submit_job(
    user: Any, model_ref: str, inputs: Any, idempotency_key: str | None = None, callback_url: str = ""
) -> tuple[InferenceJob, bool]:
    """Create a job and queue it once the row is committed. Returns (job, created).

    A retried submit with the same idempotency key returns the first job instead of a second one.
    """
    jobs, created = submit_batch(user, model_ref, [inputs], idempotency_key, single=True, callback_url=callback_url)
    return jobs[0], created


def submit_batch(
    user: Any,
    model_ref: str,
    inputs: Any,
    idempotency_key: str | None = None,
    single: bool = False,
    callback_url: str = "",
) -> tuple[list[InferenceJob], bool]:
    """Create one job per input (all or none: every input is checked first) and queue them. Returns (jobs,
    created); a retried submit with the same idempotency key returns the first submit's jobs. With a
    ``callback_url``, each finished job is POSTed there (``deliver_callback``).

    A batch's jobs carry the key ``KEY#i``; ``single`` keeps a one-job submit's key as given.
    """
    limit = MAX_IDEMPOTENCY_KEY - (0 if single else 6)  # room for a batch's "#i" suffix
    if idempotency_key is not None and not 0 < len(idempotency_key) <= limit:
        raise JobError(f"Idempotency-Key must be 1 to {limit} characters", field="Idempotency-Key")
    if not isinstance(inputs, list) or not inputs:
        raise JobError("inputs: expected a non-empty list", field="inputs")
    if len(inputs) > MAX_BATCH_SUBMIT:
        raise JobError(f"inputs: at most {MAX_BATCH_SUBMIT} per request, got {len(inputs)}", 413, "inputs")
    if callback_url:
        try:
            callback_url = callbacks.normalised(callback_url)
        except ValueError as exc:
            raise JobError(str(exc), field="callback_url") from None
        if refusal := callbacks.refusal(callback_url):
            raise JobError(refusal, field="callback_url")
    model = resolve_for_submit(model_ref)
    clean = [validate_inputs(model, x, None if single else i) for i, x in enumerate(inputs)]
    keys: list[str | None] = [None] * len(clean)
    if idempotency_key:
        keys = [idempotency_key] if single else [f"{idempotency_key}#{i}" for i in range(len(clean))]
        existing = _same_submit(user, model, model_ref, clean, keys)
        if existing is not None:
            return existing, False
    recheck = timezone.now() + timedelta(seconds=requeue_queued_seconds())
    jobs = [
        InferenceJob(
            model_version=model,
            model_ref=model_ref,
            submitted_by=user,
            inputs=x,
            idempotency_key=key,
            lease_until=recheck,
            callback_url=callback_url,
        )
        for x, key in zip(clean, keys, strict=True)
    ]
    try:
        store_jobs(jobs)
    except IntegrityError:  # a concurrent retry with the same key won the race: its jobs, if it was this request
        earlier = _same_submit(user, model, model_ref, clean, keys)
        if earlier is None:
            raise
        return earlier, False
    return jobs, True


def grouped_submits() -> bool:
    return bool(settings.FSML_GROUP_SUBMITS)


def store_jobs(jobs: list[InferenceJob]) -> None:
    """Insert the jobs and queue them, with the jobs of concurrent requests in this process (one insert, one
    commit, one message per model and ``batch_max()`` jobs: ``frontdoor.Grouper``). A caller inside a
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
    if not grouped_submits():
        if error := _store_groups([jobs])[0]:
            raise error
        return
    _submitter.put(jobs)


def _store_groups(groups: list[list[InferenceJob]]) -> list[BaseException | None]:
    """Store and queue the jobs of several requests at once; the error each request gets, or None."""
    try:
        with transaction.atomic():
            InferenceJob.objects.bulk_create([job for jobs in groups for job in jobs], batch_size=500)
    except DatabaseError as exc:  # a taken idempotency key, a deadlock, a statement too large for the server...
        # ...is one request's problem: store each request alone, so only the failing one fails.
        return [exc] if len(groups) == 1 else [_store_groups([jobs])[0] for jobs in groups]
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


def _flush_grouped(groups: list[list[InferenceJob]]) -> list[BaseException | None]:
    close_old_connections()  # the grouper's own thread: no request start or end recycles its connection
    return _store_groups(groups)


_submitter: frontdoor.Grouper[list[InferenceJob]] = frontdoor.Grouper(
    _flush_grouped, max_items=64, name="fsml-job-submitter"
)


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


_listener = frontdoor.FinishedListener(broker_redis)


def wait_for_job(job: InferenceJob, timeout: float) -> InferenceJob:
    """The job once it ended, or as it is after ``timeout`` seconds. Where the broker is Redis, the process's one
    listener to finished batches wakes it (no polling while Redis is up); else it reads the database every 50 ms.
    """

    ended = (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED)

    def has_ended() -> bool:
        job.refresh_from_db()
        return job.status in ended

    if job.status in ended:
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
