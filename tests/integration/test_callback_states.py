"""A job's callback state (``callback_status``, a choice) and its reason (``callback_error``): set by submits,
deliveries and a broker that is down, shown by the job API, and converted from the free text stored before, on
the real MariaDB, Redis and an HTTP receiver on 127.0.0.1. No worker runs: the tests call what a worker calls."""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from datastore.models import InferenceJob
from fsml.celery import app as fsml_celery
from serving.jobs.messages import announce_finished
from serving.web.submit import submit_job
from serving.worker.delivery import deliver
from serving.worker.outbox import prompt_due
from tests.receivers import receiving

MODEL = "sentiment-test"
Callback = InferenceJob.CallbackStatus


def _state(job: InferenceJob) -> tuple[str, str, int]:
    job.refresh_from_db()
    return job.callback_status, job.callback_error, job.callback_attempts


def test_a_submit_marks_a_callback_pending_and_the_api_shows_its_state(
    live_env, clean_broker, registered_model, service_client
) -> None:
    with_hook = service_client.post(
        "/api/jobs/", {"model": MODEL, "inputs": {"text": "hi"}, "callback_url": "https://hook.example/cb"}, "json"
    ).json()
    without = service_client.post("/api/jobs/", {"model": MODEL, "inputs": {"text": "hi"}}, "json").json()
    assert (with_hook["callback_status"], with_hook["callback_error"]) == ("pending", "")
    assert (without["callback_status"], without["callback_error"]) == ("", "")


def test_each_delivery_records_its_state_and_reason(live_env, clean_broker, registered_model, settings) -> None:
    settings.FSML_CALLBACK_ALLOWED_HOSTS = {"127.0.0.1"}
    user = get_user_model().objects.create(username="svc")
    with receiving(500, 503) as receiver:  # then 200
        job = submit_job(user, MODEL, {"text": "hi"}, callback_url=receiver.url)[0]
        InferenceJob.objects.filter(pk=job.pk).update(status=InferenceJob.Status.SUCCEEDED)
        assert deliver(job.pk) is True
        assert _state(job) == (Callback.RETRYING, "HTTP 500", 1), "a failure with attempts left is tried again"
        InferenceJob.objects.filter(pk=job.pk).update(callback_due_at=None)  # its backoff has passed
        assert deliver(job.pk) is True
        assert _state(job) == (Callback.RETRYING, "HTTP 503", 2)
        InferenceJob.objects.filter(pk=job.pk).update(callback_due_at=None)
        assert deliver(job.pk) is True
        assert _state(job) == (Callback.DELIVERED, "", 3), "delivered: no reason left"
        assert deliver(job.pk) is False, "delivered: owed no more"
        assert len(receiver.calls) == 3

        # Accepted at submit, refused where the worker connects: the host now resolves to an inner address.
        refused = InferenceJob.objects.create(
            model_version=registered_model,
            submitted_by=user,
            inputs={},
            status=InferenceJob.Status.SUCCEEDED,
            callback_url=receiver.url.replace("127.0.0.1", "localhost"),
            callback_status=Callback.PENDING,
        )
        assert deliver(refused.pk) is True
        assert deliver(refused.pk) is False, "a host that may not be called is never retried"
        assert len(receiver.calls) == 3, "not called"
    status, error, attempts = _state(refused)
    assert (status, attempts) == (Callback.REFUSED, 1)
    assert error.startswith("callback host localhost is a non-public address"), error


def test_a_callback_the_broker_could_not_take_is_marked_and_sent_again(
    live_env, clean_broker, registered_model, settings, monkeypatch
) -> None:
    """The broker is down when the job ends (a Celery app whose broker nothing listens on is the current one):
    the job says so, with the broker's error; a worker's requeue loop prompts it once the broker is back."""
    user = get_user_model().objects.create(username="svc")
    job = submit_job(user, MODEL, {"text": "hi"}, callback_url="https://hook.example/cb")[0]
    job.status = InferenceJob.Status.SUCCEEDED
    job.save(update_fields=["status"])
    monkeypatch.delenv("CELERY_BROKER_URL")  # Celery would take it over the broker given here
    down = Celery("down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    down.set_current()
    try:
        announce_finished([job])
    finally:
        fsml_celery.set_current()
    status, error, attempts = _state(job)
    assert (status, attempts) == (Callback.NOT_QUEUED, 0) and error, error
    assert prompt_due() == 1
    assert _state(job)[0] == Callback.PENDING
    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("callbacks") == 1


OLD_TEXTS = [  # (callback_url, callback_status as stored before 0009) -> (status, error)
    (("", ""), ("", "")),
    (("https://h.example/cb", ""), ("pending", "")),
    (("https://h.example/cb", "delivered"), ("delivered", "")),
    (("https://h.example/cb", "queued again"), ("pending", "")),
    (("https://h.example/cb", "not queued: Error 111 connecting"), ("not queued", "Error 111 connecting")),
    (("https://h.example/cb", "HTTP 500"), ("retrying", "HTTP 500")),
    (("https://h.example/cb", "gave up: unreachable: timed out"), ("gave up", "unreachable: timed out")),
    (
        ("http://10.0.0.1/cb", "gave up: refused: callback host 10.0.0.1 is a non-public address (10.0.0.1)"),
        ("refused", "callback host 10.0.0.1 is a non-public address (10.0.0.1)"),
    ),
]


def test_the_migration_splits_the_old_text_into_state_and_error_and_back(live_env, registered_model) -> None:
    before, after = ("datastore", "0008_job_callbacks"), ("datastore", "0009_job_callback_status_and_error")
    user = get_user_model().objects.create(username="svc")
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([before])
        old = _historical_job(before)
        rows = [
            old.objects.create(
                model_version_id=registered_model.pk,
                submitted_by_id=user.pk,
                inputs={},
                callback_url=url,
                callback_status=text,
            ).pk
            for (url, text), _ in OLD_TEXTS
        ]
        _migrate([after])
        new = _historical_job(after).objects.in_bulk(rows)  # later migrations add columns this state lacks
        assert [(new[pk].callback_status, new[pk].callback_error) for pk in rows] == [want for _, want in OLD_TEXTS]
        _migrate([before])
        back = _historical_job(before).objects.in_bulk(rows)
        expected_back = [text if text != "queued again" else "" for (_, text), _ in OLD_TEXTS]
        assert [back[pk].callback_status for pk in rows] == expected_back, "back again, but for 'queued again'"
    finally:
        _migrate(leaves)


def _migrate(targets: list[Any]) -> None:
    executor = MigrationExecutor(connection)  # a fresh one each time: it reads which migrations are applied
    executor.migrate(targets)


def _historical_job(target: tuple[str, str]) -> Any:
    return MigrationExecutor(connection).loader.project_state([target]).apps.get_model("datastore", "InferenceJob")
