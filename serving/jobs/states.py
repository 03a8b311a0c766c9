"""A job as both sides show it: its fields in the job API (and in a callback's body), and the ended state a
finished batch announces, which a waiting request applies to its own copy of the job instead of reading it back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers

from datastore.models import InferenceJob

ENDED = (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED)

# The job API's fields, in the order it shows them.
JOB_FIELDS = (
    "id",
    "model",
    "status",
    "inputs",
    "result",
    "error",
    "attempts",
    "worker",
    "worker_pid",
    "idempotency_key",
    "batch_size",
    "callback_url",
    "callback_status",
    "callback_error",
    "callback_attempts",
    "queued_at",
    "started_at",
    "finished_at",
)
_TIMES = ("queued_at", "started_at", "finished_at")
_TIME = serializers.DateTimeField()  # the API's format of a time (ISO 8601, "Z" for UTC), as DRF writes it


def job_fields(job: InferenceJob) -> dict[str, Any]:
    """The job as ``GET /api/jobs/ID/`` shows it, built directly rather than by DRF field by field: on the
    serving path this runs for every job, and DRF's per-field machinery cost more than the rest of the request
    (``serving.web.api.JobSerializer`` returns this; tests compare it with DRF's generic output)."""
    out = {field: getattr(job, field) for field in JOB_FIELDS if field not in ("id", "model", *_TIMES)}
    out.update(id=str(job.pk), model=str(job.model_version))
    out.update(
        {field: None if (when := getattr(job, field)) is None else _TIME.to_representation(when) for field in _TIMES}
    )
    return {field: out[field] for field in JOB_FIELDS}


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
    "callback_error",
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
        ended = state["status"] in ENDED
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
