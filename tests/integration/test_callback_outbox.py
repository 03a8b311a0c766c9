"""The callback outbox on the real MariaDB and Redis, with an HTTP receiver on 127.0.0.1: a job's callback is owed
from the transaction that ends it, whatever becomes of its message; the requeue loop prompts what is due and held
by no sender; a sender's claim keeps others off until it lapses; failures back off, then give up; every attempt
carries the same delivery id. No worker runs: the tests call what a worker calls."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any, cast

import redis
from django.contrib.auth import get_user_model
from django.utils import timezone

from datastore.models import InferenceJob
from serving.web.submit import submit_job
from serving.worker import outbox
from serving.worker.batches import finish_batch
from serving.worker.claims import claim_batch
from serving.worker.delivery import deliver, deliver_due
from tests.receivers import receiving

MODEL = "sentiment-test"
Callback = InferenceJob.CallbackStatus


def _queued_callbacks(url: str) -> list[str]:
    """The job ids of the deliver_callback messages waiting in the broker's ``callbacks`` queue (kombu's envelope:
    the task's ``[args, kwargs, embed]`` as base64 JSON)."""
    messages = cast(list[bytes], redis.Redis.from_url(url).lrange("callbacks", 0, -1))  # a sync client's answer
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[0][0] for m in messages]


def _ended(model: Any, user: Any, **fields: Any) -> InferenceJob:
    values = {"status": "succeeded", "callback_url": "http://127.0.0.1:9/h", "callback_status": Callback.PENDING}
    return InferenceJob.objects.create(
        model_version=model, model_ref=MODEL, submitted_by=user, inputs={"text": "x"}, **(values | fields)
    )


def test_a_job_that_ends_owes_its_callback_though_its_message_is_lost(
    live_env, clean_broker, registered_model, settings
) -> None:
    """The job ends succeeded; its prompt message is lost (the broker's queue is emptied, as a worker killed
    holding it or a Redis restart would). The callback is still due in the database, and the requeue loop prompts
    it once the message is overdue; the prompt's delivery reaches the receiver."""
    settings.FSML_CALLBACK_ALLOWED_HOSTS = {"127.0.0.1"}
    user = get_user_model().objects.create(username="svc")
    with receiving() as receiver:
        job = submit_job(user, MODEL, {"text": "hi"}, callback_url=receiver.url)[0]
        batch = claim_batch([str(job.pk)], worker="w@test", pid=1)
        assert batch is not None
        finish_batch(batch, {job.pk: ({"label": "positive"}, "")})
        job.refresh_from_db()
        assert job.status == "succeeded"
        assert job.callback_status == Callback.PENDING and job.callback_delivery is not None
        assert job.callback_due_at is not None and job.callback_due_at <= timezone.now(), "due from its end"
        assert _queued_callbacks(settings.CELERY_BROKER_URL) == [str(job.pk)], "prompted once committed"

        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # the prompt is lost
        assert outbox.prompt_due() == 0, "its message is not overdue yet"
        later = timezone.now() + timedelta(seconds=settings.FSML_REQUEUE_QUEUED_SECONDS + 1)
        assert outbox.prompt_due(later) == 1
        assert _queued_callbacks(settings.CELERY_BROKER_URL) == [str(job.pk)]
        assert deliver(job.pk) is True
        assert len(receiver.calls) == 1
    job.refresh_from_db()
    assert (job.callback_status, job.callback_attempts, job.callback_due_at) == (Callback.DELIVERED, 1, None)
    assert receiver.calls[0].headers["X-Fsml-Delivery"] == str(job.callback_delivery)


def test_a_job_failed_out_of_attempts_owes_its_callback_too(live_env, clean_broker, registered_model) -> None:
    user = get_user_model().objects.create(username="svc")
    job = _ended(registered_model, user, status="queued", attempts=3)
    assert claim_batch([str(job.pk)], worker="w@test", pid=1) is None, "out of attempts: failed, not run"
    job.refresh_from_db()
    assert job.status == "failed" and job.callback_status == Callback.PENDING
    assert job.callback_due_at is not None and job.callback_delivery is not None


def test_the_loop_prompts_what_is_due_and_not_in_flight(live_env, clean_broker, registered_model, settings) -> None:
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.FSML_REQUEUE_QUEUED_SECONDS + 1)
    user = get_user_model().objects.create(username="svc")
    due = _ended(registered_model, user, callback_due_at=long_ago, callback_queued_at=long_ago)
    unprompted = _ended(registered_model, user, status="failed", callback_status=Callback.NOT_QUEUED)
    for fields in (
        {"callback_lease_until": now + timedelta(seconds=30)},  # a sender holds it
        {"callback_queued_at": now},  # its prompt went out a moment ago
        {"callback_due_at": now + timedelta(seconds=30), "callback_status": Callback.RETRYING},  # not yet due
        {"callback_status": Callback.DELIVERED},
        {"callback_status": Callback.GAVE_UP},
        {"status": "running"},  # not ended: nothing owed yet
        {"callback_url": "", "callback_status": Callback.NONE},
    ):
        _ended(registered_model, user, **({"callback_due_at": long_ago, "callback_queued_at": long_ago} | fields))
    assert outbox.prompt_due(now) == 2
    assert sorted(_queued_callbacks(settings.CELERY_BROKER_URL)) == sorted([str(due.pk), str(unprompted.pk)])
    unprompted.refresh_from_db()
    assert unprompted.callback_status == Callback.PENDING and unprompted.callback_queued_at == now
    assert outbox.prompt_due(now) == 0, "prompted once"


def test_a_senders_claim_keeps_others_off_until_it_lapses(live_env, registered_model, settings) -> None:
    user = get_user_model().objects.create(username="svc")
    job = _ended(registered_model, user)
    first = outbox.claim(job.pk)
    assert first is not None and first.callback_delivery is not None, "an id given on first claim"
    assert outbox.claim(job.pk) is None, "in flight: no second sender"
    lapsed = timezone.now() + timedelta(seconds=settings.FSML_JOB_LEASE_SECONDS + 1)
    again = outbox.claim(job.pk, now=lapsed)
    assert again is not None and again.callback_delivery == first.callback_delivery, "a dead sender's claim lapses"


def test_failures_back_off_to_a_cap_then_give_up_with_the_last_error(
    live_env, clean_broker, registered_model, settings
) -> None:
    settings.FSML_CALLBACK_ALLOWED_HOSTS = {"127.0.0.1"}
    user = get_user_model().objects.create(username="svc")
    waits = []
    with receiving(*[500] * (outbox.MAX_ATTEMPTS - 1), 503) as receiver:
        job = _ended(registered_model, user, callback_url=receiver.url)
        for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
            before = timezone.now()
            assert deliver(job.pk) is True
            assert deliver(job.pk) is False, "not due again before its backoff"
            job.refresh_from_db()
            assert job.callback_attempts == attempt and job.callback_lease_until is None
            if job.callback_due_at is not None:
                assert (job.callback_status, job.callback_error) == (Callback.RETRYING, "HTTP 500")
                waits.append(round((job.callback_due_at - before).total_seconds()))
                InferenceJob.objects.filter(pk=job.pk).update(callback_due_at=timezone.now())  # time passes
    assert waits == [2, 4, 8, 16, 32, 64]
    assert (job.callback_status, job.callback_error, job.callback_due_at) == (Callback.GAVE_UP, "HTTP 503", None)
    assert outbox.backoff(20) == outbox.BACKOFF_CAP
    assert len(receiver.calls) == outbox.MAX_ATTEMPTS
    ids = {call.headers["X-Fsml-Delivery"] for call in receiver.calls}
    assert ids == {str(job.callback_delivery)}, "one delivery id on every attempt"
    assert outbox.prompt_due(timezone.now() + timedelta(days=1)) == 0, "given up: owed no more"


def test_a_late_prompt_sends_the_other_due_callbacks_too(live_env, clean_broker, registered_model, settings) -> None:
    """A prompt that comes behind a backlog finds its own callback and the others due; the prompts behind it find
    theirs sent. One that another sender holds is left to it."""
    settings.FSML_CALLBACK_ALLOWED_HOSTS = {"127.0.0.1"}
    user = get_user_model().objects.create(username="svc")
    with receiving() as receiver:
        first, second, third = (_ended(registered_model, user, callback_url=receiver.url) for _ in range(3))
        held = _ended(registered_model, user, callback_url=receiver.url)
        assert outbox.claim(held.pk) is not None
        assert deliver_due(first.pk) == 3
        assert deliver_due(second.pk) == 0, "sent already"
    assert sorted(call.headers["X-Fsml-Job"] for call in receiver.calls) == sorted(
        str(j.pk) for j in (first, second, third)
    )
    held.refresh_from_db()
    assert held.callback_status == Callback.PENDING and held.callback_lease_until is not None
