"""Every write of the job workflow: submitting inference jobs and recording their outcome."""

from __future__ import annotations

import base64
import binascii
import io
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from datastore import registry
from datastore.models import InferenceJob, ModelVersion
from datastore.runtime import MAX_IMAGE_BYTES, MAX_TEXT_CHARS, InputError, check_text

MAX_ATTEMPTS = 3
MAX_IDEMPOTENCY_KEY = 100
MAX_BATCH_SUBMIT = 256  # inputs per batch submit
CALLBACK_QUEUE = "callbacks"
CALLBACK_TIMEOUT = 10  # seconds a callback receiver has to answer


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
    model = resolve_model(model_ref)
    clean = [validate_inputs(model, x, None if single else i) for i, x in enumerate(inputs)]
    keys = [None] * len(clean)
    if idempotency_key:
        keys = [idempotency_key] if single else [f"{idempotency_key}#{i}" for i in range(len(clean))]
        existing = _same_submit(user, model, model_ref, clean, keys)
        if existing is not None:
            return existing, False
    recheck = timezone.now() + timedelta(seconds=requeue_queued_seconds())
    try:
        with transaction.atomic():
            jobs = InferenceJob.objects.bulk_create(
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
            )
    except IntegrityError:  # a concurrent retry with the same key won the race: its jobs, if it was this request
        earlier = _same_submit(user, model, model_ref, clean, keys)
        if earlier is None:
            raise
        return earlier, False
    try:
        for job in jobs:
            run_inference_later(job)
    except Exception as exc:  # broker unreachable: the jobs must not wait forever in "queued"
        for job in jobs:
            finish_job(job, error=f"could not queue the job: {exc}")
        raise JobError("the job queue is unavailable; retry later", status=503) from exc
    return jobs, True


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
    """Send the job's message: to its model's own queue when ``FSML_MODEL_QUEUES`` names the model."""
    from serving.tasks import run_inference

    run_inference.apply_async((str(job.pk),), queue=queue_for(job.model_version.name), countdown=countdown or None)


def queue_for(model_name: str) -> str:
    """``model.NAME`` for the models listed in ``FSML_MODEL_QUEUES`` (workers started with ``--queues``), else
    the shared ``inference`` queue."""
    dedicated = {n.strip() for n in os.environ.get("FSML_MODEL_QUEUES", "").split(",") if n.strip()}
    return f"model.{model_name}" if model_name in dedicated else "inference"


def requeue_queued_seconds() -> float:
    """A job still queued this long after its message was sent gets its message sent again (a lost message:
    its worker died holding it, or the broker lost it); a duplicate message is harmless."""
    return float(os.environ.get("FSML_REQUEUE_QUEUED_SECONDS", "600"))


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


def claim_batch(job_id: str, worker: str, pid: int) -> Batch | None:
    """Claim a job and, as its batch, up to ``batch_max() - 1`` other queued jobs of the same model reference.

    Returns None when the message has nothing to do: the job ended, or another live worker holds it (a batch
    took it; if that worker dies, its lease lapses and ``requeue_lapsed`` queues the job again). A job that has
    failed before runs alone, so a poison input cannot take innocent batch-mates down with it, and after
    MAX_ATTEMPTS it is failed instead of run again.
    """
    now = timezone.now()
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED):
            return None
        held = job.status == InferenceJob.Status.RUNNING and job.lease_until and job.lease_until > now
        if held and not _holder_is_dead(job, worker):
            return None
        if job.attempts >= MAX_ATTEMPTS:
            finish_job(job, error=_gave_up(job))
            return None
        jobs = [job]
        if job.attempts == 0:
            jobs += _queued_batch_mates(job, batch_max() - 1)
        if len(jobs) < batch_max() and job.attempts == 0 and batch_wait():
            time.sleep(batch_wait())  # dynamic batching: a few milliseconds for more of the same model's jobs
            jobs += _queued_batch_mates(job, batch_max() - len(jobs), exclude=[j.pk for j in jobs])
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


def _queued_batch_mates(job: InferenceJob, limit: int, exclude: list[Any] | None = None) -> list[InferenceJob]:
    if limit <= 0:
        return []
    # No select_related here: under FOR UPDATE, MariaDB would lock the joined model version row too, serialising
    # every worker's claims and every submit for that model behind it.
    mates = InferenceJob.objects.select_for_update(skip_locked=True)
    mates = mates.filter(status=InferenceJob.Status.QUEUED, model_ref=job.model_ref, attempts=0)
    if "@" not in job.model_ref:  # NAME and NAME:VERSION were fixed to a version at submit: keep to it
        mates = mates.filter(model_version=job.model_version_id)
    mates = mates.exclude(pk__in=[job.pk, *(exclude or [])]).order_by("queued_at")
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
        try:
            with broker_redis().pipeline(transaction=False) as pipe:
                for job in jobs:
                    pipe.publish(job_channel(job.pk), job.status)
                pipe.execute()
        except redis.RedisError:  # waiters fall back to reading the database when their time is up
            pass


_redis: dict[str, redis.Redis] = {}


def broker_redis() -> redis.Redis:
    """A client of the broker's Redis with a connection pool, one per process (pub/sub of finished jobs)."""
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if url not in _redis:
        _redis[url] = redis.Redis.from_url(url, socket_timeout=40, health_check_interval=30)
    return _redis[url]


def job_channel(job_id: Any) -> str:
    return f"fsml:job-finished:{job_id}"


def wait_for_job(job: InferenceJob, timeout: float) -> InferenceJob:
    """The job once it ended, or as it is after ``timeout`` seconds. Listens on the job's Redis channel where the
    broker is Redis (no polling), else reads the database every 50 ms."""
    from django.conf import settings

    ended = (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED)
    deadline = time.monotonic() + timeout
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        pubsub = broker_redis().pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(job_channel(job.pk))
            job.refresh_from_db()  # it may have ended before the subscription
            while job.status not in ended and (left := deadline - time.monotonic()) > 0:
                if pubsub.get_message(timeout=min(left, 1.0)) is not None:
                    job.refresh_from_db()
            job.refresh_from_db()
            return job
        except redis.RedisError:  # Redis went away while waiting: read the database for the time left
            pass
        finally:
            pubsub.close()  # its connection goes back to the pool
    job.refresh_from_db()
    while job.status not in ended and time.monotonic() < deadline:
        time.sleep(0.05)
        job.refresh_from_db()
    return job


def post_callback(job: InferenceJob, body: bytes) -> str:
    """POST a finished job to its callback URL. Returns "" when the receiver took it (2xx), else the reason.

    With ``FSML_CALLBACK_SECRET`` set, ``X-Fsml-Signature: sha256=<HMAC of the body>`` lets the receiver check
    that the call came from here.
    """
    import hashlib
    import hmac
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json", "User-Agent": "fsml-callback/1", "X-Fsml-Job": str(job.pk)}
    if secret := os.environ.get("FSML_CALLBACK_SECRET", ""):
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Fsml-Signature"] = f"sha256={digest}"
    request = urllib.request.Request(job.callback_url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT) as response:
            return "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"unreachable: {getattr(exc, 'reason', exc)}"


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
    done = []
    with transaction.atomic():
        for job in batch.jobs:
            result, error = outcomes[job.pk]
            fields: dict[str, Any] = {
                "result": result,
                "error": error,
                "status": InferenceJob.Status.FAILED if error else InferenceJob.Status.SUCCEEDED,
                "finished_at": now,
                "lease_until": None,
            }
            if model is not None:
                fields["model_version"] = model
            if InferenceJob.objects.filter(pk=job.pk, claim=batch.claim, status=InferenceJob.Status.RUNNING).update(
                **fields
            ):
                job.finished_at, job.status = now, fields["status"]
                done.append(job)
        transaction.on_commit(lambda: announce_finished(done))  # callbacks and sync waiters, once it is stored
    return done


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
    for job in requeue:
        run_inference_later(job)
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
