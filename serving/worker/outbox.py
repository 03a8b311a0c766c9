"""The callbacks a worker owes, kept on their jobs as an outbox: a callback becomes due in the very transaction that
ends its job (``owe``), and stays due until it is delivered, refused or given up, whatever becomes of the message
that prompts a worker to send it. A sender claims a due callback under a lease (``claim``), so two workers never
send it at once and a dead sender's claim lapses; each attempt is recorded with its backoff (``record``); each
worker's requeue loop prompts again the due callbacks whose message is lost or late (``prompt_due``).

Delivery is at least once: a sender killed after the receiver took the POST but before the record sends it again
under the same delivery id (``X-Fsml-Delivery``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from datastore.models import InferenceJob
from serving.jobs.messages import queue_callback
from serving.jobs.states import ENDED

Callback = InferenceJob.CallbackStatus
MAX_ATTEMPTS = 7  # attempts of a callback before it gives up: the first and 6 retries
BACKOFF_CAP = 64  # seconds: the longest wait between two attempts (2, 4, ... 64)
DUE = (Callback.PENDING, Callback.RETRYING, Callback.NOT_QUEUED)  # owed: a delivery is still to be made
PROMPTED_AT_ONCE = 500  # due callbacks one requeue round prompts


def owe(job: InferenceJob, now: datetime) -> list[str]:
    """Make ``job``'s callback due from ``now``, on the object, for the transaction that ends the job to write;
    its prompt message goes once that commits (``announce_finished``). Returns the fields to write (none for a job
    without a callback, or whose callback is no longer owed)."""
    if not job.callback_url or job.callback_status not in (*DUE, Callback.NONE):
        return []
    job.callback_status = Callback.PENDING
    job.callback_due_at = job.callback_queued_at = now
    job.callback_lease_until = None
    job.callback_delivery = job.callback_delivery or uuid.uuid4()
    return list(OWED_FIELDS)


OWED_FIELDS = ("callback_status", "callback_due_at", "callback_queued_at", "callback_lease_until", "callback_delivery")


def _due(now: datetime) -> QuerySet[InferenceJob]:
    """Callbacks owed and due at ``now`` that no live sender holds."""
    return InferenceJob.objects.filter(
        Q(callback_due_at__isnull=True) | Q(callback_due_at__lte=now),
        Q(callback_lease_until__isnull=True) | Q(callback_lease_until__lt=now),
        status__in=ENDED,
        callback_status__in=DUE,
    ).exclude(callback_url="")


def claim(job_id: Any, now: datetime | None = None) -> InferenceJob | None:
    """Take the job's callback to send it, when it is due and no other sender holds it: one conditional UPDATE,
    which MariaDB re-checks under the row lock, so of two senders only one gets it. The claim lasts
    ``FSML_JOB_LEASE_SECONDS`` (over the callback task's time limit): a sender that dies loses it then. Returns
    the job, or None when there is nothing to send."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.FSML_JOB_LEASE_SECONDS)
    if not _due(now).filter(pk=job_id).update(callback_lease_until=lease):
        return None
    # A job that ended without owe() (a submit failed by the web side, a row from before the outbox): its id now.
    InferenceJob.objects.filter(pk=job_id, callback_delivery__isnull=True).update(callback_delivery=uuid.uuid4())
    return InferenceJob.objects.select_related("model_version").get(pk=job_id)


def claim_next(now: datetime | None = None) -> InferenceJob | None:
    """Take the callback that has been due longest and that no sender holds, as ``claim`` does; None when there is
    none. Rows another sender is claiming are skipped, not waited for."""
    now = now or timezone.now()
    with transaction.atomic():
        due = _due(now).select_for_update(skip_locked=True).order_by("callback_due_at")
        job_id = due.values_list("pk", flat=True).first()
        return None if job_id is None else claim(job_id, now)


def backoff(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts: 2, 4, 8, ... up to ``BACKOFF_CAP``."""
    return float(min(2**attempts, BACKOFF_CAP))


def record(job: InferenceJob, status: InferenceJob.CallbackStatus, error: str = "") -> bool:
    """Record one attempt of the claimed callback of ``job`` and release its claim: delivered or refused (done), or
    failed, when its next attempt is due after ``backoff``, or it gives up after ``MAX_ATTEMPTS`` with the last
    error. Returns whether another attempt is due (its prompt is the caller's to send)."""
    attempts = job.callback_attempts + 1
    again = status == Callback.RETRYING and attempts < MAX_ATTEMPTS
    if status == Callback.RETRYING and not again:
        status = Callback.GAVE_UP
    now = timezone.now()
    due = now + timedelta(seconds=backoff(attempts)) if again else None
    InferenceJob.objects.filter(pk=job.pk).update(
        callback_status=status,
        callback_error=error,
        callback_attempts=F("callback_attempts") + 1,
        callback_due_at=due,
        callback_queued_at=now if again else None,
        callback_lease_until=None,
    )
    job.callback_status, job.callback_error, job.callback_attempts = status, error, attempts
    job.callback_due_at, job.callback_lease_until = due, None
    return again


def prompt_due(now: datetime | None = None) -> int:
    """Send a prompt for each callback that is due, held by no sender, and whose last prompt went out over
    ``FSML_REQUEUE_QUEUED_SECONDS`` ago or never (its message was lost with a killed worker or a broker restart, or
    could not be sent). Every worker's requeue loop calls this; returns how many were prompted.

    Rows another loop has locked are skipped, so two loops do not prompt the same callback; a duplicate prompt is
    harmless anyway (``claim`` decides). A broker error rolls the marks back: what was not sent goes next round.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.FSML_REQUEUE_QUEUED_SECONDS)
    with transaction.atomic():
        due = _due(now).filter(Q(callback_queued_at__isnull=True) | Q(callback_queued_at__lt=stale))
        due = due.select_for_update(skip_locked=True).order_by("callback_due_at")
        ids = list(due.values_list("pk", flat=True)[:PROMPTED_AT_ONCE])
        for job_id in ids:
            queue_callback(job_id)
        # Why it could not be queued at first stays in callback_error, for the record.
        InferenceJob.objects.filter(pk__in=ids, callback_status=Callback.NOT_QUEUED).update(
            callback_status=Callback.PENDING
        )
        InferenceJob.objects.filter(pk__in=ids).update(callback_queued_at=now)
    return len(ids)
