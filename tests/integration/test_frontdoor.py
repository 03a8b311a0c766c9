"""Grouped submits and the finished-job listener of a web process (serving.web.frontdoor), on the real MariaDB and
Redis."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import IntegrityError

from datastore.models import InferenceJob
from serving.jobs.announcements import FINISHED_CHANNEL, MAX_CARRIED_STATE, announcement
from serving.jobs.messages import broker_redis
from serving.web import frontdoor, submit
from serving.web.checks import JobError


def test_requests_arriving_while_a_group_is_stored_go_together_and_an_error_reaches_only_its_own() -> None:
    groups: list[list[int]] = []
    first_started, release = threading.Event(), threading.Event()

    def flush(items: list[int]) -> list[BaseException | None]:
        if not groups:
            first_started.set()
            release.wait(10)
        groups.append(items)
        return [ValueError(f"item {i} refused") if i == 3 else None for i in items]

    grouper: frontdoor.Grouper[int] = frontdoor.Grouper(flush, max_items=64, name="test-grouper")
    outcomes: dict[int, str] = {}

    def put(i: int) -> None:
        try:
            grouper.put(i)
            outcomes[i] = "stored"
        except ValueError as exc:
            outcomes[i] = str(exc)

    threads = [threading.Thread(target=put, args=(0,))]
    threads[0].start()
    assert first_started.wait(10)
    threads += [threading.Thread(target=put, args=(i,)) for i in range(1, 6)]
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 10
    while grouper.waiting() < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    assert groups[0] == [0] and sorted(groups[1]) == [1, 2, 3, 4, 5], "a lone request is not held back; the rest wait"
    assert outcomes == {0: "stored", 1: "stored", 2: "stored", 3: "item 3 refused", 4: "stored", 5: "stored"}


def _jobs(user, model, n: int, key: str | None = None) -> list[InferenceJob]:
    return [
        InferenceJob(
            model_version=model, model_ref=model.name, submitted_by=user, inputs={"text": f"t{i}"}, idempotency_key=key
        )
        for i in range(n)
    ]


def test_a_group_with_a_reused_idempotency_key_stores_every_other_request(
    live_env, clean_broker, registered_model
) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(username="svc")
    (taken,) = _jobs(user, registered_model, 1, key="k-1")
    assert submit.store_groups([[taken]]) == [None]
    clash, fine, more = (
        _jobs(user, registered_model, 1, key="k-1"),
        _jobs(user, registered_model, 2),
        _jobs(user, registered_model, 1, key="k-2"),
    )
    errors = submit.store_groups([fine, clash, more])
    assert errors[0] is None and isinstance(errors[1], IntegrityError) and errors[2] is None
    assert set(InferenceJob.objects.values_list("pk", flat=True)) == {j.pk for j in [taken, *fine, *more]}
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    assert broker.llen("inference") == 3, "one message per stored request here (each stored alone after the clash)"


def ids(*job_ids: str) -> str:
    """An announcement that carries only the jobs' ids (as for states too large to carry)."""
    return announcement({"id": job_id} for job_id in job_ids)


def test_one_listener_wakes_waiters_even_for_a_job_that_ended_before_they_waited(live_env) -> None:
    listener = frontdoor.FinishedListener(broker_redis)
    waiting = listener.expect(["c", "d"])  # starts the thread and waits for the subscription
    assert listener.healthy and not waiting.is_set()
    broker_redis().publish(FINISHED_CHANNEL, ids("a", "b"))
    deadline = time.monotonic() + 5
    while not listener.expect(["a"]).is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert listener.expect(["b"]).is_set(), "announced before anyone waited: remembered for a while"
    assert not waiting.is_set()
    broker_redis().publish(FINISHED_CHANNEL, ids("x", "d"))
    assert waiting.wait(5), "a waiter on several jobs wakes when one of them ends"
    assert listener.ended("d") is None, "an id alone carries no state"
    generation = listener.generation
    for malformed in (b"[not json", b'[1, {"x": 2}, {"id": 7}]', b"a,b", b'{"id": "e"}'):
        broker_redis().publish(FINISHED_CHANNEL, malformed)
    awaited = listener.expect(["e", "f"])
    big: dict[str, Any] = {"id": "f", "status": "succeeded", "result": {"text": "x" * MAX_CARRIED_STATE}}
    small: list[dict[str, Any]] = [
        {"id": "e", "status": "succeeded", "result": {"label": "positive"}},
        {"id": "g", "status": "failed"},
    ]
    broker_redis().publish(FINISHED_CHANNEL, announcement([*small, big]))
    assert awaited.wait(5) and listener.healthy and listener.generation == generation, "bad messages are skipped"
    assert listener.ended("f") is None, "too large to carry: read back instead"
    assert listener.ended("e") == {"id": "e", "status": "succeeded", "result": {"label": "positive"}}
    assert listener.expect(["g"]).is_set() and listener.ended("g") is None, "no one waited here: the id alone"
    assert not listener.expect(["a,b"]).is_set(), "ids separated by commas are no announcement"


def test_a_waiter_reads_the_database_while_the_listener_is_down() -> None:
    """Each read follows a wait for the event: an event set meanwhile ends the wait with no read, a read that
    finds the job ended ends it, and a short timeout allows one read, not a busy loop."""
    listener = frontdoor.FinishedListener(lambda: redis.Redis(port=1))  # never started: no subscription
    assert not listener.healthy
    event = threading.Event()
    events: list[str] = []

    def ended_at_second_read() -> bool:
        events.append("read")
        return len(events) == 2

    frontdoor.wait_until(event, listener, 30.0, ended_at_second_read, 0)
    assert events == ["read", "read"], "asked until it ended, then stopped"

    def woken_meanwhile() -> bool:
        events.append("read, and the job's announcement came")
        event.set()
        return False

    events.clear()
    frontdoor.wait_until(event, listener, 30.0, woken_meanwhile, 0)
    assert events == ["read, and the job's announcement came"], "the event ended the next wait: no second read"

    events.clear()

    def read() -> bool:
        events.append("read")
        return False

    frontdoor.wait_until(threading.Event(), listener, 0.3, read, 0)
    assert events == ["read"], "a read follows each wait for the event, never a loop of reads"


def test_a_waiter_reads_the_database_when_the_listener_subscribed_again_after_it_registered(live_env) -> None:
    listener = frontdoor.FinishedListener(broker_redis)
    listener.expect(["first"])  # subscribed
    generation = listener.generation
    event = listener.expect(["job"])
    listener.generation += 1  # the subscription was renewed since: the job's announcement may have been lost
    asked: list[int] = []

    def ask() -> bool:
        asked.append(1)
        return True

    frontdoor.wait_until(event, listener, 30.0, ask, generation)
    assert asked == [1] and not event.is_set(), "read the database instead of waiting out the timeout"
    asked.clear()
    frontdoor.wait_until(listener.expect(["other"]), listener, 0.3, ask, listener.generation)
    assert asked == [], "a healthy listener of the same generation is trusted: no read"


def test_a_submit_inside_a_transaction_is_stored_in_it_and_queued_when_it_commits(
    live_env, clean_broker, registered_model
) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    user = get_user_model().objects.create(username="svc")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with transaction.atomic():
        jobs, _ = submit.submit_batch(user, registered_model.name, [{"text": "a"}, {"text": "b"}])
        assert broker.llen("inference") == 0, "no message before the rows are visible to workers"
        assert InferenceJob.objects.filter(pk__in=[j.pk for j in jobs]).count() == 2
    assert broker.llen("inference") == 1, "queued, in one message, once committed"
    with transaction.atomic():
        submit.submit_job(user, registered_model.name, {"text": "c"}, "key-1")
        reused = "Idempotency-Key was already used for a different request"
        with pytest.raises(JobError, match=reused) as taken:
            submit.submit_job(user, registered_model.name, {"text": "other"}, "key-1")
        assert (taken.value.status, taken.value.field) == (422, "Idempotency-Key")
        assert InferenceJob.objects.count() == 3, "the caller's transaction survives a taken key"


def test_two_requests_waiting_on_one_job_are_both_woken(live_env) -> None:
    listener = frontdoor.FinishedListener(broker_redis)
    first, second = listener.expect(["j"]), listener.expect(["j"])
    listener.forget(["j"], first)  # the first request timed out: the second still waits
    broker_redis().publish(FINISHED_CHANNEL, ids("j"))
    assert second.wait(5) and not first.is_set()
