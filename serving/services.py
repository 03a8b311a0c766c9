"""Every write of the job workflow: submitting inference jobs and recording their outcome."""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.db import IntegrityError, close_old_connections, connections, transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from datastore import registry
from datastore.models import InferenceJob, ModelAlias, ModelVersion
from datastore.runtime import MAX_IMAGE_BYTES, MAX_TEXT_CHARS, InputError, check_text
from serving import callbacks, frontdoor

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
MAX_IDEMPOTENCY_KEY = 100
MAX_BATCH_SUBMIT = 256  # inputs per batch submit
CALLBACK_QUEUE = "callbacks"


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
    ttl = float(os.environ.get("FSML_MODEL_REF_CACHE_SECONDS", "1"))
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
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise JobError(f"{where}: not a readable image ({exc})", field=where) from None


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
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY - (0 if single else 6):
        limit = MAX_IDEMPOTENCY_KEY - (0 if single else 6)
        raise JobError(f"Idempotency-Key must be 1 to {limit} characters", field="Idempotency-Key")
    if not isinstance(inputs, list) or not inputs:
        raise JobError("inputs: expected a non-empty list", field="inputs")
    if len(inputs) > MAX_BATCH_SUBMIT:
        raise JobError(f"inputs: at most {MAX_BATCH_SUBMIT} per request, got {len(inputs)}", 413, "inputs")
    if callback_url and (refusal := callbacks.refusal(callback_url, resolve=False)):
        raise JobError(refusal, field="callback_url")
    model = resolve_for_submit(model_ref)
    clean = [validate_inputs(model, x, None if single else i) for i, x in enumerate(inputs)]
    keys = [None] * len(clean)
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
    return os.environ.get("FSML_GROUP_SUBMITS", "1") != "0"


def store_jobs(jobs: list[InferenceJob]) -> None:
    """Insert the jobs and queue them, with the jobs of concurrent requests in this process (one insert, one
    commit, one message per model and ``batch_max()`` jobs: ``frontdoor.Grouper``). A caller inside a
    transaction, or with ``FSML_GROUP_SUBMITS=0``, stores them itself.

    Raises:
        IntegrityError: an idempotency key already taken (only this request's jobs are refused).
        JobError: the broker is down (503; the jobs are stored as failed, never left queued).
    """
    if transaction.get_connection().in_atomic_block or not grouped_submits():
        if error := _store_groups([jobs])[0]:
            raise error
        return
    _submitter.put(jobs)


def _store_groups(groups: list[list[InferenceJob]]) -> list[BaseException | None]:
    """Store and queue the jobs of several requests at once; the error each request gets, or None."""
    close_old_connections()  # this may run on the grouper's own thread, whose connection no request recycles
    try:
        with transaction.atomic():
            InferenceJob.objects.bulk_create([job for jobs in groups for job in jobs], batch_size=500)
    except IntegrityError as exc:  # one request's idempotency key: store each request alone, so only it fails
        return [exc] if len(groups) == 1 else [_store_groups([jobs])[0] for jobs in groups]
    try:
        queue_jobs([job for jobs in groups for job in jobs])
    except Exception as exc:  # broker unreachable: the jobs must not wait forever in "queued"
        log.error("could not queue %d jobs: %s", sum(map(len, groups)), exc)
        for jobs in groups:
            for job in jobs:
                finish_job(job, error=f"could not queue the job: {exc}")
        return [JobError("the job queue is unavailable; retry later", status=503)] * len(groups)
    return [None] * len(groups)


_submitter: frontdoor.Grouper[list[InferenceJob]] = frontdoor.Grouper(
    _store_groups, max_items=64, name="fsml-job-submitter"
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
            run_inference.apply_async((ids[start : start + size],), queue=queue, countdown=countdown or None)


def queue_for(model_name: str) -> str:
    """``model.NAME`` for the models listed in ``FSML_MODEL_QUEUES`` (workers started with ``--queues``), else
    the shared ``inference`` queue."""
    dedicated = {n.strip() for n in os.environ.get("FSML_MODEL_QUEUES", "").split(",") if n.strip()}
    return f"model.{model_name}" if model_name in dedicated else "inference"


def requeue_queued_seconds() -> float:
    """A job still queued this long after its message was sent gets its message sent again (a lost message:
    its worker died holding it, or the broker lost it); a duplicate message is harmless."""
    return float(os.environ.get("FSML_REQUEUE_QUEUED_SECONDS", "120"))


@dataclass
class Batch:
    """Jobs one worker claimed together: same model reference, one claim token, one lease."""

    jobs: list[InferenceJob]
    claim: uuid.UUID
    worker: str
    pid: int


def batch_max() -> int:
    return max(1, int(os.environ.get("FSML_BATCH_MAX", "32")))


def batch_wait() -> float:
    """Seconds a worker waits for more queued jobs when its first look finds fewer than ``batch_max``."""
    return max(0.0, float(os.environ.get("FSML_BATCH_WAIT_MS", "2")) / 1000)


def lease_seconds() -> float:
    """How long a claim lasts: above the task's time limit, so a live worker's job is never taken from it."""
    return float(os.environ.get("FSML_JOB_LEASE_SECONDS", "90"))


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
        jobs, tried = [], []
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
            transaction.on_commit(lambda job=job: run_inference_later(job))
        if not jobs:
            return None
        if len(jobs) > batch_max():  # the sender allowed larger batches than this worker: the rest go back
            jobs, overflow = jobs[: batch_max()], jobs[batch_max() :]
            transaction.on_commit(lambda: queue_jobs(overflow))
        fresh = jobs[0].attempts == 0
        if fresh:
            jobs += _queued_batch_mates(jobs[0], batch_max() - len(jobs), exclude=[j.pk for j in jobs])
        if fresh and len(jobs) < batch_max() and batch_wait():
            time.sleep(batch_wait())  # dynamic batching: a few milliseconds for more of the same model's jobs
            jobs += _queued_batch_mates(jobs[0], batch_max() - len(jobs), exclude=[j.pk for j in jobs])
        token = uuid.uuid4()
        InferenceJob.objects.filter(pk__in=[j.pk for j in jobs]).update(
            status=InferenceJob.Status.RUNNING,
            claim=token,
            lease_until=now + timedelta(seconds=lease_seconds()),
            started_at=timezone.now(),
            worker=worker,
            worker_pid=pid,
            attempts=F("attempts") + 1,
            batch_size=len(jobs),
        )
    for j in jobs:
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


def announce_finished(jobs: list[InferenceJob]) -> None:
    """After the results are committed: wake the synchronous requests waiting on these jobs (Redis pub/sub) and
    queue the callbacks they asked for."""
    from django.conf import settings

    from serving.tasks import deliver_callback

    for job in jobs:
        if job.callback_url:
            try:
                deliver_callback.apply_async((str(job.pk),), queue=CALLBACK_QUEUE)
            except Exception as exc:  # broker down: say so on the job; the others still go
                InferenceJob.objects.filter(pk=job.pk).update(callback_status=f"{NOT_QUEUED}{exc}"[:300])
    if jobs and settings.CELERY_BROKER_URL.startswith("redis://"):
        with contextlib.suppress(redis.RedisError):  # waiters read the database while their listener is down
            broker_redis().publish(frontdoor.FINISHED_CHANNEL, ",".join(str(job.pk) for job in jobs))


_redis: dict[str, redis.Redis] = {}


def broker_redis() -> redis.Redis:
    """A client of the broker's Redis with a connection pool, one per process (pub/sub of finished jobs)."""
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if url not in _redis:
        _redis[url] = redis.Redis.from_url(url, socket_timeout=40, health_check_interval=30)
    return _redis[url]


_listener = frontdoor.FinishedListener(broker_redis)


def wait_for_job(job: InferenceJob, timeout: float) -> InferenceJob:
    """The job once it ended, or as it is after ``timeout`` seconds. Where the broker is Redis, the process's one
    listener to finished batches wakes it (no polling while Redis is up); else it reads the database every 50 ms.
    """
    from django.conf import settings

    ended = (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED)

    def has_ended() -> bool:
        job.refresh_from_db()
        return job.status in ended

    if job.status in ended:
        return job
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        ids = [str(job.pk)]
        try:
            frontdoor.wait_until(_listener.expect(ids), _listener, timeout, has_ended)
        finally:
            _listener.forget(ids)
        return InferenceJob.objects.select_related("model_version").get(pk=job.pk)
    deadline = time.monotonic() + timeout
    while not has_ended() and time.monotonic() < deadline:
        time.sleep(0.05)
    return job


def record_callback(job_id: Any, outcome: str, gave_up: bool = False) -> None:
    status = "delivered" if not outcome else (f"gave up: {outcome}" if gave_up else outcome)
    InferenceJob.objects.filter(pk=job_id).update(
        callback_status=status[:300], callback_attempts=F("callback_attempts") + 1
    )


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
        transaction.on_commit(lambda: announce_finished(done))  # callbacks and sync waiters, once it is stored
    return done


_ENDED_FIELDS = ("result", "error", "status", "finished_at", "lease_until", "model_version")


def _write_ended(jobs: list[InferenceJob]) -> None:
    """Write the ended jobs' outcome fields: one prepared UPDATE sent with a row of parameters per job. The ORM's
    ``update`` or ``bulk_update`` (a CASE per field and job) spent more CPU building the query than the model
    spent on the batch."""
    if not jobs:
        return
    meta, conn = InferenceJob._meta, connections[InferenceJob.objects.db]
    quote = conn.ops.quote_name
    fields = [meta.get_field(name) for name in _ENDED_FIELDS]
    sets = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(meta.pk.column)} = %s"
    rows = [
        [f.get_db_prep_save(getattr(job, f.attname), conn) for f in fields] + [meta.pk.get_db_prep_value(job.pk, conn)]
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


NOT_QUEUED = "not queued: "


def resend_callbacks() -> int:
    """Queue again the callbacks that could not be queued when their job ended (the broker was down then).
    Every worker's requeue loop calls this; returns how many were sent."""
    from serving.tasks import deliver_callback

    sent = 0
    for job_id in InferenceJob.objects.filter(callback_status__startswith=NOT_QUEUED).values_list("pk", flat=True)[
        :500
    ]:
        deliver_callback.apply_async((str(job_id),), queue=CALLBACK_QUEUE)
        sent += InferenceJob.objects.filter(pk=job_id, callback_status__startswith=NOT_QUEUED).update(
            callback_status="queued again"
        )
    return sent


def finish_job(job: InferenceJob, result: dict[str, Any] | None = None, error: str = "") -> InferenceJob:
    """End a job outside any batch claim (it could not be queued, or it is out of attempts)."""
    job.result, job.error = result, error
    job.status = InferenceJob.Status.FAILED if error else InferenceJob.Status.SUCCEEDED
    job.finished_at, job.lease_until = timezone.now(), None
    job.save(update_fields=["result", "error", "status", "finished_at", "lease_until"])
    transaction.on_commit(lambda: announce_finished([job]))
    return job


def _gave_up(job: InferenceJob) -> str:
    """The error of a job out of attempts, with the last failure it met when there was one."""
    last = f"; last error: {job.error}" if job.error else " (the worker died or timed out)"
    return f"gave up after {job.attempts} attempts{last}"
