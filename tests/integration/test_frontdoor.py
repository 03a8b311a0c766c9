"""Grouped submits and the finished-job listener of a web process (serving.frontdoor), on the real MariaDB and
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
from serving import frontdoor, services
from serving.services import submit


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
    while grouper._queue.qsize() < 5 and time.monotonic() < deadline:
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
    assert submit._store_groups([[taken]]) == [None]
    clash, fine, more = (
        _jobs(user, registered_model, 1, key="k-1"),
        _jobs(user, registered_model, 2),
        _jobs(user, registered_model, 1, key="k-2"),
    )
    errors = submit._store_groups([fine, clash, more])
    assert errors[0] is None and isinstance(errors[1], IntegrityError) and errors[2] is None
    assert set(InferenceJob.objects.values_list("pk", flat=True)) == {j.pk for j in [taken, *fine, *more]}
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    assert broker.llen("inference") == 3, "one message per stored request here (each stored alone after the clash)"


def test_one_listener_wakes_waiters_even_for_a_job_that_ended_before_they_waited(live_env) -> None:
    listener = frontdoor.FinishedListener(services.broker_redis)
    waiting = listener.expect(["c", "d"])  # starts the thread and waits for the subscription
    assert listener.healthy and not waiting.is_set()
    services.broker_redis().publish(frontdoor.FINISHED_CHANNEL, "a,b")
    deadline = time.monotonic() + 5
    while not listener.expect(["a"]).is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert listener.expect(["b"]).is_set(), "announced before anyone waited: remembered for a while"
    assert not waiting.is_set()
    services.broker_redis().publish(frontdoor.FINISHED_CHANNEL, "x,d")
    assert waiting.wait(5), "a waiter on several jobs wakes when one of them ends"
    assert listener.ended("d") is None, "ids alone (as earlier versions sent) carry no state"
    generation = listener.generation
    for malformed in (b"[not json", b'[1, {"x": 2}, {"id": 7}]'):
        services.broker_redis().publish(frontdoor.FINISHED_CHANNEL, malformed)
    awaited = listener.expect(["e", "f"])
    big: dict[str, Any] = {"id": "f", "status": "succeeded", "result": {"text": "x" * frontdoor.MAX_CARRIED_STATE}}
    small: list[dict[str, Any]] = [
        {"id": "e", "status": "succeeded", "result": {"label": "positive"}},
        {"id": "g", "status": "failed"},
    ]
    services.broker_redis().publish(frontdoor.FINISHED_CHANNEL, frontdoor.announcement([*small, big]))
    assert awaited.wait(5) and listener.healthy and listener.generation == generation, "bad messages are skipped"
    assert listener.ended("f") is None, "too large to carry: read back instead"
    assert listener.ended("e") == {"id": "e", "status": "succeeded", "result": {"label": "positive"}}
    assert listener.expect(["g"]).is_set() and listener.ended("g") is None, "no one waited here: the id alone"


def test_a_waiter_reads_the_database_while_the_listener_is_down() -> None:
    listener = frontdoor.FinishedListener(lambda: redis.Redis(port=1))  # never started: no subscription
    asked: list[float] = []

    def ask() -> bool:
        asked.append(time.monotonic())
        return len(asked) >= 2

    began = time.monotonic()
    frontdoor.wait_until(threading.Event(), listener, 5.0, ask, 0)
    took = time.monotonic() - began
    assert not listener.healthy and len(asked) == 2, "asked until it ended, then stopped"
    # Each read follows a one-second wait for the event: not at once, not in a busy loop, not the whole timeout.
    gaps = [asked[0] - began, asked[1] - asked[0]]
    assert all(0.95 <= gap < 1.9 for gap in gaps), gaps
    assert 1.95 <= took < 4.5, "asked once a second, and stopped when it ended"


def test_a_waiter_reads_the_database_when_the_listener_subscribed_again_after_it_registered(live_env) -> None:
    listener = frontdoor.FinishedListener(services.broker_redis)
    listener.expect(["first"])  # subscribed
    generation = listener.generation
    event = listener.expect(["job"])
    listener.generation += 1  # the subscription was renewed since: the job's announcement may have been lost
    asked: list[int] = []

    def ask() -> bool:
        asked.append(1)
        return True

    began = time.monotonic()
    frontdoor.wait_until(event, listener, 5.0, ask, generation)
    assert asked == [1] and time.monotonic() - began < 2, "read the database instead of waiting out the timeout"


def test_a_submit_inside_a_transaction_is_stored_in_it_and_queued_when_it_commits(
    live_env, clean_broker, registered_model
) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    user = get_user_model().objects.create(username="svc")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with transaction.atomic():
        jobs, _ = services.submit_batch(user, registered_model.name, [{"text": "a"}, {"text": "b"}])
        assert broker.llen("inference") == 0, "no message before the rows are visible to workers"
        assert InferenceJob.objects.filter(pk__in=[j.pk for j in jobs]).count() == 2
    assert broker.llen("inference") == 1, "queued, in one message, once committed"
    with transaction.atomic():
        services.submit_job(user, registered_model.name, {"text": "c"}, "key-1")
        reused = "Idempotency-Key was already used for a different request"
        with pytest.raises(services.JobError, match=reused) as taken:
            services.submit_job(user, registered_model.name, {"text": "other"}, "key-1")
        assert (taken.value.status, taken.value.field) == (422, "Idempotency-Key")
        assert InferenceJob.objects.count() == 3, "the caller's transaction survives a taken key"


def test_two_requests_waiting_on_one_job_are_both_woken(live_env) -> None:
    listener = frontdoor.FinishedListener(services.broker_redis)
    first, second = listener.expect(["j"]), listener.expect(["j"])
    listener.forget(["j"], first)  # the first request timed out: the second still waits
    services.broker_redis().publish(frontdoor.FINISHED_CHANNEL, "j")
    assert second.wait(5) and not first.is_set()
