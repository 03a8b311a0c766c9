"""Every write of the job workflow: submitting inference jobs and recording their outcome."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from datastore import registry
from datastore.models import InferenceJob, ModelVersion
from datastore.runtime import MAX_TEXT_CHARS, InputError, check_text

MAX_ATTEMPTS = 3
MAX_IDEMPOTENCY_KEY = 100


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


def validate_inputs(model: ModelVersion, inputs: Any) -> dict[str, Any]:
    if model.task_type == "text_classification":
        text = inputs.get("text") if isinstance(inputs, dict) else None
        try:
            check_text(text)
        except InputError as exc:
            status = 413 if isinstance(text, str) and len(text) > MAX_TEXT_CHARS else 400
            raise JobError(f"inputs.text: {exc.reason}", status=status, field="inputs.text") from exc
        return {"text": text}
    raise JobError(f"model task type {model.task_type} is not served yet", status=501)


def submit_job(user: Any, model_ref: str, inputs: Any, idempotency_key: str | None = None) -> tuple[InferenceJob, bool]:
    """Create a job and queue it once the row is committed. Returns (job, created).

    A retried submit with the same idempotency key returns the first job instead of a second one.
    """
    from serving.tasks import run_inference

    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise JobError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters", field="Idempotency-Key")
    model = resolve_model(model_ref)
    clean = validate_inputs(model, inputs)
    if idempotency_key:
        existing = InferenceJob.objects.filter(submitted_by=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            # The same reference, not the same version: an alias may have moved since the first submit.
            same_model = (
                existing.model_ref == model_ref if existing.model_ref else existing.model_version_id == model.pk
            )
            if not same_model or existing.inputs != clean:
                raise JobError(
                    "Idempotency-Key was already used for a different request", status=422, field="Idempotency-Key"
                )
            return existing, False
    try:
        with transaction.atomic():
            job = InferenceJob.objects.create(
                model_version=model,
                model_ref=model_ref,
                submitted_by=user,
                inputs=clean,
                idempotency_key=idempotency_key or None,
            )
    except IntegrityError:  # a concurrent retry with the same key won the race
        return InferenceJob.objects.get(submitted_by=user, idempotency_key=idempotency_key), False
    try:
        run_inference.delay(str(job.pk))
    except Exception as exc:  # broker unreachable: the job must not wait forever in "queued"
        finish_job(job, error=f"could not queue the job: {exc}")
        raise JobError("the job queue is unavailable; retry later", status=503) from exc
    return job, True


def start_job(job_id: str, worker: str, pid: int) -> InferenceJob | None:
    """Mark a job running; None when it already ended (a redelivered message) or has used its attempts.

    A message redelivered after its worker died (OOM, SIGKILL, time limit) comes back here; after
    MAX_ATTEMPTS the job is failed instead of run again, so a poison job cannot loop forever.
    """
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().select_related("model_version").get(pk=job_id)
        if job.status in (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED):
            return None
        if job.attempts >= MAX_ATTEMPTS:
            finish_job(job, error=f"gave up after {job.attempts} attempts (the worker died or timed out)")
            return None
        job.status, job.started_at = InferenceJob.Status.RUNNING, timezone.now()
        job.worker, job.worker_pid, job.attempts = worker, pid, job.attempts + 1
        job.save(update_fields=["status", "started_at", "worker", "worker_pid", "attempts"])
    return job


def run_job(job: InferenceJob) -> InferenceJob:
    """Run the job's model on its inputs and record the result or the error."""
    from serving.runtimes import get_runtime

    if "@" in job.model_ref:  # NAME@ALIAS: the version the alias names now, read once, for this whole job
        job.model_version = resolve_model(job.model_ref)
    try:
        runtime = get_runtime(job.model_version)  # fully loaded before use: never half a model
        prediction = runtime.predict([job.inputs["text"]])[0]
    except InputError as exc:
        return finish_job(job, error=str(exc))
    return finish_job(job, result=prediction.as_dict())


def finish_job(job: InferenceJob, result: dict[str, Any] | None = None, error: str = "") -> InferenceJob:
    job.result, job.error = result, error
    job.status = InferenceJob.Status.FAILED if error else InferenceJob.Status.SUCCEEDED
    job.finished_at = timezone.now()
    job.save(update_fields=["result", "error", "status", "finished_at", "model_version"])
    return job
