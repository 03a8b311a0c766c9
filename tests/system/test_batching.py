"""Micro-batching workers on the real Redis broker and MariaDB: batch submits, a model's own queue consumed by
two workers, a poison input in a batch, a worker SIGKILLed mid-batch, a Redis restart with persistence on, and
submits while Redis is down. Every job must end exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis as redis_lib

from datastore import services as data_services
from datastore.models import InferenceJob
from deploy.processes import Service, free_port
from modelpack.runtime import load_runtime
from tests.processes import MODEL, TEXTS, start_worker, wait_done


def assert_answers_match(jobs: list[InferenceJob], model: Any) -> None:
    """Each job holds the model's own answer for its input, as a batch of one would give it."""
    runtime = load_runtime(data_services.unpacked_model(model))
    for job in jobs:
        assert job.status == InferenceJob.Status.SUCCEEDED, job.error
        alone = runtime.predict([job.inputs["text"]])[0]
        assert job.result is not None
        assert job.result["label"] == alone.label
        got = [job.result["scores"][k] for k in sorted(alone.scores)]
        np.testing.assert_allclose(got, [alone.scores[k] for k in sorted(alone.scores)], atol=2e-5)


def batch_size(job: InferenceJob) -> int:
    """The size of the batch that ran ``job``; fails the test for a job that no batch ran."""
    assert job.batch_size is not None, f"job {job.pk} ran in no batch"
    return job.batch_size


def test_batch_submits_are_batched_and_shared_by_two_workers_on_the_models_queue(
    live_env, clean_broker, registered_model, service_client, tmp_path, settings
) -> None:
    settings.FSML_MODEL_QUEUES = [MODEL]  # the submitting process routes to model.sentiment-test
    workers = [
        start_worker(tmp_path, f"w{i}", queues=f"model.{MODEL}", FSML_BATCH_MAX="8", FSML_MODEL_QUEUES=MODEL)
        for i in (1, 2)
    ]
    try:
        body = {"model": MODEL, "inputs": [{"text": t} for t in TEXTS]}
        first = service_client.post("/api/jobs/batch/", body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
        assert first.status_code == 202, first.content
        again = service_client.post("/api/jobs/batch/", body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
        assert again.status_code == 200
        ids = [j["id"] for j in first.json()["jobs"]]
        assert [j["id"] for j in again.json()["jobs"]] == ids and len(set(ids)) == len(TEXTS)
        assert [j["inputs"]["text"] for j in first.json()["jobs"]] == TEXTS, "jobs come back in input order"
        jobs = wait_done(ids)
    finally:
        for worker in workers:
            worker.stop()
    assert InferenceJob.objects.count() == len(TEXTS), "the retried submit made no second set"
    assert_answers_match(jobs, registered_model)
    sizes = [batch_size(j) for j in jobs]
    assert max(sizes) > 1 and max(sizes) <= 8, sizes
    assert {j.worker.split("-")[0] for j in jobs} == {"w1", "w2"}, "both workers on the one queue served jobs"
    assert all(j.attempts == 1 for j in jobs)


def test_bad_batch_submits_are_refused_whole(registered_model, service_client) -> None:
    good = {"text": "fine"}
    for inputs, status, needle in (
        ([good, {"text": ""}], 400, "inputs[1].text"),
        ([good, {"text": "x" * 20_001}], 413, "inputs[1].text"),
        ([good] * 257, 413, "at most 256"),
        ([], 400, "empty"),
        ("hello", 400, "list"),
    ):
        res = service_client.post("/api/jobs/batch/", {"model": MODEL, "inputs": inputs}, format="json")
        assert res.status_code == status, (inputs[:2], res.content)
        assert needle in str(res.json())
    res = service_client.post("/api/jobs/batch/", {"model": "nope", "inputs": [good]}, format="json")
    assert res.status_code == 404
    assert InferenceJob.objects.count() == 0, "nothing was queued"


def test_a_poison_input_fails_its_own_job_and_not_its_batch(live_env, clean_broker, registered_model, tmp_path) -> None:
    """An input that reaches the worker and is refused there (written past the API) fails alone; its batch-mates
    run again without it, and the worker keeps serving."""
    from django.contrib.auth import get_user_model

    from serving.jobs.messages import queue_jobs
    from serving.web.submit import submit_batch

    user = get_user_model().objects.create(username="svc")
    poison = InferenceJob.objects.create(
        model_version=registered_model, model_ref=MODEL, submitted_by=user, inputs={"text": "   "}
    )
    jobs, _ = submit_batch(user, MODEL, [{"text": t} for t in TEXTS[:6]])
    queue_jobs([poison])
    worker = start_worker(tmp_path, "w", FSML_BATCH_MAX="16", FSML_BATCH_WAIT_MS="200")
    try:
        done = wait_done([str(j.pk) for j in [poison, *jobs]])
        later = wait_done([str(submit_batch(user, MODEL, [{"text": "still serving?"}])[0][0].pk)])
    finally:
        worker.stop()
    by_id = {j.pk: j for j in done}
    assert by_id[poison.pk].status == InferenceJob.Status.FAILED and "empty text" in by_id[poison.pk].error
    assert_answers_match([by_id[j.pk] for j in jobs], registered_model)
    assert max(batch_size(j) for j in done) > 1, "the poison job was batched with the others"
    assert later[0].status == InferenceJob.Status.SUCCEEDED


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_no_job_and_none_ends_twice(
    live_env, clean_broker, registered_model, service_client, tmp_path, monkeypatch, settings
) -> None:
    """SIGKILL the whole worker (main process and pool) while it holds a claimed batch: a second worker puts the
    lapsed jobs back (lease 4 s) and finishes every job exactly once. The message the dead worker had taken but
    not started is re-sent too (its jobs stayed queued past FSML_REQUEUE_QUEUED_SECONDS, 5 s here)."""
    settings.FSML_REQUEUE_QUEUED_SECONDS = 5  # here, where the jobs are submitted,
    monkeypatch.setenv("FSML_REQUEUE_QUEUED_SECONDS", "5")  # and in the workers started below
    texts = [f"{t} ({n})" for n in range(4) for t in TEXTS]  # 256 jobs: 16 batches to catch one in flight
    fast = {"FSML_BATCH_MAX": "16", "FSML_JOB_LEASE_SECONDS": "4", "FSML_REQUEUE_SECONDS": "1"}
    doomed = start_worker(tmp_path, "doomed", **fast)
    held: list[InferenceJob] = []
    try:
        res = service_client.post(
            "/api/jobs/batch/", {"model": MODEL, "inputs": [{"text": t} for t in texts]}, format="json"
        )
        assert res.status_code == 202, res.content
        ids = [j["id"] for j in res.json()["jobs"]]
        deadline = time.monotonic() + 60
        while not held and time.monotonic() < deadline:
            if InferenceJob.objects.filter(pk__in=ids, status="running", worker__startswith="doomed").exists():
                os.killpg(doomed.pid, signal.SIGSTOP)  # frozen mid-batch, unless it finished a moment ago
                held = list(InferenceJob.objects.filter(pk__in=ids, status="running", worker__startswith="doomed"))
                if not held:
                    os.killpg(doomed.pid, signal.SIGCONT)
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)  # no warm shutdown: the batch in hand is simply gone
        assert doomed.proc is not None  # started (doomed.pid checks the same)
        doomed.proc.wait(10)
    assert held, "the worker was killed while holding a batch"
    assert len({j.claim for j in held}) == 1, "one batch in flight"

    # The rescuer's own claims get a long lease: its first batch also loads the model, and must not lapse.
    rescuer = start_worker(tmp_path, "rescuer", **(fast | {"FSML_JOB_LEASE_SECONDS": "60"}))
    try:
        jobs = wait_done(ids, timeout=120)
    finally:
        rescuer.stop()
    by_id = {j.pk: j for j in jobs}
    assert_answers_match(jobs, registered_model)
    for job in held:
        rescued = by_id[job.pk]
        assert rescued.worker.startswith("rescuer") and rescued.attempts == 2, (rescued.worker, rescued.attempts)
    assert all(j.attempts <= 2 for j in jobs)
    assert "requeued or failed" in (tmp_path / "rescuer.log").read_text()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A Redis of this test's own, with the append-only file on, that the test may restart."""
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis_lib.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                return proc
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    state = {"proc": start()}

    def restart() -> None:
        state["proc"].send_signal(signal.SIGKILL)  # no save on the way down: only the append-only file remains
        state["proc"].wait(10)
        state["proc"] = start()

    try:
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        state["proc"].kill()
        state["proc"].wait(10)


@pytest.mark.slow
def test_queued_jobs_survive_a_redis_restart_with_persistence_on(
    live_env, registered_model, private_redis, tmp_path, monkeypatch
) -> None:
    """Messages waiting in Redis when it is killed (no save on the way down) are read back from the append-only
    file, and a worker started afterwards serves every job (docker-compose runs Redis with appendonly yes)."""
    from celery import Celery
    from django.contrib.auth import get_user_model

    from serving.jobs.messages import RUN_INFERENCE

    url, restart = private_redis
    user = get_user_model().objects.create(username="svc")
    jobs = [
        InferenceJob.objects.create(
            model_version=registered_model, model_ref=MODEL, submitted_by=user, inputs={"text": t}
        )
        for t in TEXTS[:10]
    ]
    monkeypatch.setenv("CELERY_BROKER_URL", url)  # Celery reads it before any broker argument
    sender = Celery(broker=url, set_as_current=False)  # what queue_jobs sends, to this test's own Redis; no worker yet
    for job in jobs:
        sender.send_task(RUN_INFERENCE, args=[str(job.pk)], queue="inference")
    assert redis_lib.Redis.from_url(url).llen("inference") == 10
    restart()
    assert redis_lib.Redis.from_url(url).llen("inference") == 10, "the queue came back from the append-only file"
    worker = start_worker(tmp_path, "after-restart")
    try:
        done = wait_done([str(j.pk) for j in jobs])
    finally:
        worker.stop()
    assert_answers_match(done, registered_model)
    assert {j.worker.split("-")[0] for j in done} == {"after"}


def test_a_submit_while_the_broker_is_down_is_refused_and_its_jobs_fail(
    live_env, registered_model, private_redis, tmp_path
) -> None:
    """A web process whose Redis broker is stopped answers 503 to a submit, and the jobs it stored end failed
    with the reason instead of waiting forever in "queued"."""
    import requests

    from deploy.processes import wait_http, web_command
    from serving.web.accounts import service_token

    url, _ = private_redis
    broker = redis_lib.Redis.from_url(url)
    headers = {"Authorization": f"Token {service_token('backend')[0].key}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Service(
        "web", web_command("127.0.0.1", port, workers=1), tmp_path / "web.log", env={"CELERY_BROKER_URL": url}
    ) as web:
        wait_http(web, f"{base}/readyz")
        up = requests.post(
            f"{base}/api/jobs/", json={"model": MODEL, "inputs": {"text": "sent"}}, headers=headers, timeout=60
        )
        assert up.status_code == 202, up.content
        assert broker.llen("inference") == 1, "the web process queues on this test's own Redis"
        broker.shutdown(nosave=True)  # the broker stops, for real
        with pytest.raises(redis_lib.ConnectionError):
            broker.ping()
        one = requests.post(
            f"{base}/api/jobs/",
            json={"model": MODEL, "inputs": {"text": "lost"}},
            headers={**headers, "Idempotency-Key": "retry-me"},
            timeout=60,
        )
        many = requests.post(
            f"{base}/api/jobs/batch/",
            json={"model": MODEL, "inputs": [{"text": "lost 1"}, {"text": "lost 2"}]},
            headers=headers,
            timeout=60,
        )
    unavailable = {"detail": "the job queue is unavailable; retry later", "field": None}
    assert (one.status_code, one.json()) == (503, unavailable), one.content
    assert (many.status_code, many.json()) == (503, unavailable), many.content
    assert InferenceJob.objects.get(pk=up.json()["id"]).status == InferenceJob.Status.QUEUED
    failed = list(InferenceJob.objects.exclude(pk=up.json()["id"]))
    assert sorted(j.inputs["text"] for j in failed) == ["lost", "lost 1", "lost 2"], "the refused jobs were stored"
    for job in failed:
        assert job.status == InferenceJob.Status.FAILED and job.finished_at is not None, (job.status, job.error)
        assert job.error.startswith("could not queue the job: "), job.error
        assert job.idempotency_key is None, "the key is free again: a retry stores the job anew"


def test_prometheus_metrics_of_the_web_and_of_a_worker(
    live_env, clean_broker, registered_model, service_client, tmp_path, monkeypatch
) -> None:
    """The web's /metrics shows the jobs waiting; the worker's shows what its pool processes did: jobs finished,
    latencies and batch sizes, summed over processes."""
    import urllib.request

    from django.test import Client

    body = {"model": MODEL, "inputs": [{"text": t} for t in TEXTS[:20]]}
    ids = [j["id"] for j in service_client.post("/api/jobs/batch/", body, format="json").json()["jobs"]]
    scraped = Client().get("/metrics").content.decode()
    assert f'fsml_jobs{{model="{MODEL}",status="queued"}} 20.0' in scraped, scraped
    assert 'fsml_queue_messages{queue="inference"} 1.0' in scraped, "one message carries a submit's 20 jobs"

    port = free_port()
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    worker = start_worker(
        tmp_path,
        "metered",
        FSML_WORKER_METRICS_PORT=str(port),
        FSML_WORKER_METRICS_HOST="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        FSML_BATCH_MAX="8",
    )
    try:
        wait_done(ids)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as res:
            text = res.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as res:
            assert json.load(res) == {"status": "ok", "database": "ok", "broker": "ok", "requeue": "ok"}
    finally:
        worker.stop()
    assert f'fsml_jobs_finished_total{{model="{MODEL}",status="succeeded"}} 20.0' in text, text
    assert f'fsml_job_latency_seconds_count{{model="{MODEL}"}} 20.0' in text
    batches = [line for line in text.splitlines() if line.startswith(f'fsml_batch_size_sum{{model="{MODEL}"}}')]
    assert batches == [f'fsml_batch_size_sum{{model="{MODEL}"}} 20.0'], "batch sizes add up to the jobs"
    assert "fsml_jobs{" not in Client().get("/metrics").content.decode(), "nothing waits any more"


def test_a_worker_without_its_database_is_alive_but_not_ready(live_env, clean_broker, tmp_path) -> None:
    """``celery inspect ping`` would pass; the worker's /readyz says what is wrong."""
    import urllib.error
    import urllib.request

    port = free_port()
    worker = start_worker(
        tmp_path,
        "cut-off",
        DATABASE_URL=f"mysql://root@127.0.0.1:{free_port()}/nothing",  # nothing listens there
        FSML_WORKER_METRICS_PORT=str(port),
        FSML_WORKER_METRICS_HOST="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as res:
            assert res.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10)
    finally:
        worker.stop()
    parts = json.load(refused.value)
    assert refused.value.code == 503 and parts["status"] == "unavailable", parts
    assert parts["database"].startswith("unreachable") and parts["broker"] == "ok", parts
    assert parts["requeue"] == "not run yet", "its requeue loop cannot run without the database"


def test_claims_leases_and_requeues_step_by_step(live_env, clean_broker, registered_model, settings) -> None:
    """The rules behind "every job ends once", without worker timing: a claim takes queued jobs of the same
    reference, a lapsed or superseded claim records nothing, a dead holder's job is taken over alone, lapsed
    jobs are queued again, and a job out of attempts fails with its last error."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from serving.web.submit import submit_batch
    from serving.worker.batches import finish_batch, release_batch, requeue_lapsed
    from serving.worker.claims import claim_batch

    user = get_user_model().objects.create(username="svc")
    jobs, _ = submit_batch(user, MODEL, [{"text": t} for t in TEXTS[:3]])
    dead_pid = 2**22 + 12345  # above pid_max on this kernel's default: no such process
    first = claim_batch(str(jobs[0].pk), "w1@host", dead_pid)
    assert first is not None and {j.pk for j in first.jobs} == {j.pk for j in jobs}
    assert claim_batch(str(jobs[1].pk), "w2@host", 1) is None, "another worker's live claim is left alone"

    # The holder died (same worker name, its process gone): the job's next message takes it over, alone.
    second = claim_batch(str(jobs[0].pk), "w1@host", 4242)
    assert second is not None and [j.pk for j in second.jobs] == [jobs[0].pk] and second.jobs[0].attempts == 2
    stale = finish_batch(first, {j.pk: ({"label": "x"}, "") for j in first.jobs})
    assert {j.pk for j in stale} == {jobs[1].pk, jobs[2].pk}, "the superseded claim finishes only what it still holds"
    assert finish_batch(second, {jobs[0].pk: ({"label": "y"}, "")})[0].pk == jobs[0].pk
    assert finish_batch(second, {jobs[0].pk: ({"label": "z"}, "")}) == [], "a job ends once"
    assert InferenceJob.objects.get(pk=jobs[0].pk).result == {"label": "y"}

    # A worker that died holding a job: after its lease, requeue_lapsed queues it again; out of attempts, it fails.
    more, _ = submit_batch(user, MODEL, [{"text": "late again"}])
    held = claim_batch(str(more[0].pk), "w3@host", 1)
    assert held is not None
    release_batch(held, "StoreError: bucket unreachable", 0)
    assert InferenceJob.objects.get(pk=more[0].pk).status == "queued"
    for attempt in (2, 3):
        claimed = claim_batch(str(more[0].pk), "w3@host", 1)
        assert claimed is not None and claimed.jobs[0].attempts == attempt
        later = timezone.now() + timedelta(seconds=settings.FSML_JOB_LEASE_SECONDS + 1)
        assert requeue_lapsed(later) == 1
    job = InferenceJob.objects.get(pk=more[0].pk)
    assert (
        job.status == "failed" and job.error == "gave up after 3 attempts; last error: StoreError: bucket unreachable"
    )


def test_callbacks_that_could_not_be_queued_are_sent_again(live_env, clean_broker, registered_model) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from serving.worker.outbox import prompt_due

    user = get_user_model().objects.create(username="svc")
    job = InferenceJob.objects.create(
        model_version=registered_model,
        model_ref=MODEL,
        submitted_by=user,
        inputs={"text": "hi"},
        status="succeeded",
        callback_url="http://127.0.0.1:9/hook",
        callback_status=InferenceJob.CallbackStatus.NOT_QUEUED,
        callback_error="broker down",
    )
    assert prompt_due() == 1
    assert InferenceJob.objects.get(pk=job.pk).callback_status == InferenceJob.CallbackStatus.PENDING
    assert redis_lib.Redis.from_url(settings.CELERY_BROKER_URL).llen("callbacks") == 1
    assert prompt_due() == 0, "sent once"


def test_a_claim_waits_for_batch_mates_holding_no_row_lock(live_env, clean_broker, registered_model, settings) -> None:
    """While a fresh batch waits ``FSML_BATCH_WAIT_MS`` for more jobs, its jobs are already claimed and their rows
    not locked (another connection locks them at once, NOWAIT), and a job submitted during the wait joins it."""
    import threading

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from serving.web.submit import submit_batch, submit_job
    from serving.worker.claims import Batch, claim_batch

    settings.FSML_BATCH_WAIT_SECONDS = 3.0  # long enough for this test to act while the claim waits
    user = get_user_model().objects.create(username="svc")
    jobs, _ = submit_batch(user, MODEL, [{"text": t} for t in TEXTS[:2]])
    ids = [j.pk for j in jobs]
    claimed: list[Batch | None] = []

    def claim() -> None:  # a worker's claim, on a connection of its own
        try:
            claimed.append(claim_batch([str(pk) for pk in ids], "w@host", 1))
        finally:
            connection.close()

    worker = threading.Thread(target=claim)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while InferenceJob.objects.filter(pk__in=ids, status="running").count() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with transaction.atomic():
            locked = list(InferenceJob.objects.select_for_update(nowait=True).filter(pk__in=ids))
        late = submit_job(user, MODEL, {"text": "submitted while the batch waits"})[0]
    finally:
        worker.join(60)
    assert worker.is_alive() is False and {j.status for j in locked} == {"running"}, "claimed, and not locked"
    batch = claimed[0]
    assert batch is not None and [j.pk for j in batch.jobs] == [*ids, late.pk], "the late job joined the batch"
    stored = InferenceJob.objects.filter(claim=batch.claim)
    assert [j.batch_size for j in stored] == [3, 3, 3], "every job of the batch records its final size"
