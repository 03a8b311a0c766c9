"""Callbacks are never lost: jobs with callback URLs to a receiver on 127.0.0.1, served by real Celery workers on a
Redis of the test's own (append-only file on), while the worker is SIGKILLed twice mid-batch and Redis is killed
-9 and restarted once. Every finished job's callback arrives at least once, its repeats under the one delivery id;
none arrives for a job that never ran.

``FSML_CALLBACK_FAULT_JOBS`` sets the number of jobs: 500 by default, to keep the test command bounded; the issue's
figure is 2,000 (``FSML_CALLBACK_FAULT_JOBS=2000 pytest tests/system/test_callback_faults.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis as redis_lib
from celery import Celery
from django.contrib.auth import get_user_model
from django.utils import timezone

from datastore.models import InferenceJob
from deploy.processes import Service, free_port, wait_log, worker_command
from fsml.celery import app as fsml_celery
from serving.jobs.messages import queue_jobs
from tests.processes import MODEL, TEXTS
from tests.receivers import receiving

JOBS = int(os.environ.get("FSML_CALLBACK_FAULT_JOBS", "500"))
NEVER_RUN = 10  # queued jobs no message names and no requeue picks up in the test's time: no callback is owed
Callback = InferenceJob.CallbackStatus


class RedisServer:
    """A redis-server of the test's own on a free port, persisting to an append-only file in ``folder``, fsynced on
    every write; ``kill`` stops it with SIGKILL (nothing saved on the way down), ``start`` brings it back."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen(["redis-server", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis_lib.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _start_worker(folder: Path, name: str, env: dict[str, str]) -> Service:
    """A worker on the inference and callback queues with two pool processes, so that a callback can be in flight
    while a batch runs: killed then, it leaves a delivery the receiver got and the job never recorded."""
    command = worker_command(concurrency=2, queues="inference,callbacks", name=f"{name}-{os.getpid()}@%h")
    worker = Service(name, command, folder / f"{name}.log", env=env).start()
    wait_log(worker, "ready.", timeout=90)
    return worker


def _ended(ids: list[str]) -> int:
    return InferenceJob.objects.filter(pk__in=ids, status__in=["succeeded", "failed"]).count()


def _kill_mid_batch(worker: Service, ids: list[str], after: int, timeout: float = 120) -> None:
    """SIGKILL the whole worker (main process and pool) once ``after`` jobs have ended, while it holds a batch:
    frozen (SIGSTOP) the moment it is seen running one, and killed if it still is, else let go and tried again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        busy = InferenceJob.objects.filter(pk__in=ids, status="running", worker__startswith=worker.name)
        if _ended(ids) >= after and busy.exists():
            os.killpg(worker.pid, signal.SIGSTOP)
            if busy.exists():
                break
            os.killpg(worker.pid, signal.SIGCONT)
        time.sleep(0.01)
    else:
        raise AssertionError(f"{worker.name} never held a batch after {after} jobs ended")
    os.killpg(worker.pid, signal.SIGKILL)  # no warm shutdown: the batch in hand and the messages it took are gone
    assert worker.proc is not None
    worker.proc.wait(10)


def _wait_for(ids: list[str], after: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _ended(ids) < after:
        assert time.monotonic() < deadline, f"{_ended(ids)} of {after} jobs ended"
        time.sleep(0.1)


@pytest.mark.slow
def test_no_callback_is_lost_when_workers_are_killed_and_redis_restarts(
    live_env, registered_model, own_redis, tmp_path, monkeypatch, settings
) -> None:
    began = time.monotonic()
    monkeypatch.setenv("CELERY_BROKER_URL", own_redis.url)  # the workers', and Celery reads it before any argument
    fast = {
        "FSML_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
        "FSML_REQUEUE_SECONDS": "1",
        "FSML_REQUEUE_QUEUED_SECONDS": "5",  # a message lost with a killed worker or Redis is replaced after this
        "FSML_JOB_LEASE_SECONDS": "15",  # a dead worker's batch, or the callback it was sending, lapses after this
    }
    user = get_user_model().objects.create(username="svc")
    with receiving(delay=0.01) as receiver:
        now = timezone.now()
        jobs = InferenceJob.objects.bulk_create(
            InferenceJob(
                model_version=registered_model,
                model_ref=MODEL if n < JOBS else f"{MODEL}:1",  # another reference: no batch takes them along
                submitted_by=user,
                inputs={"text": f"{TEXTS[n % len(TEXTS)]} ({n})"},
                callback_url=receiver.url,
                callback_status=Callback.PENDING,
                # Queued with their message sent, as a submit leaves them; the last few with no message for a day.
                lease_until=now + timedelta(seconds=20 if n < JOBS else 86400),
            )
            for n in range(JOBS + NEVER_RUN)
        )
        served, never = jobs[:JOBS], jobs[JOBS:]
        ids = [str(j.pk) for j in served]
        sender = Celery("sender", broker=own_redis.url, set_as_current=False)
        sender.set_current()
        try:
            queue_jobs(served)  # what a submit sends: a message per FSML_BATCH_MAX jobs
        finally:
            fsml_celery.set_current()

        workers = [_start_worker(tmp_path, "first", fast)]
        try:
            _kill_mid_batch(workers[0], ids, after=JOBS // 5)
            marks = [("first killed", time.monotonic() - began)]
            workers.append(_start_worker(tmp_path, "second", fast))
            _wait_for(ids, after=JOBS * 2 // 5)
            own_redis.kill()  # messages waiting, taken and unacknowledged: only the append-only file keeps them
            own_redis.start()
            marks.append(("redis restarted", time.monotonic() - began))
            _kill_mid_batch(workers[1], ids, after=JOBS * 3 // 5)
            marks.append(("second killed", time.monotonic() - began))
            workers.append(_start_worker(tmp_path, "third", fast))
            deadline = time.monotonic() + 240
            while True:
                owed = InferenceJob.objects.filter(pk__in=ids).exclude(callback_status=Callback.DELIVERED)
                if not owed.exists():
                    break
                if not InferenceJob.objects.filter(pk__in=ids).exclude(status="succeeded").exists() and len(marks) < 4:
                    marks.append(("all jobs ended", time.monotonic() - began))
                assert time.monotonic() < deadline, [(j.status, j.callback_status) for j in owed[:5]]
                workers[2].check_alive()
                time.sleep(0.2)
        finally:
            for worker in workers:
                worker.stop()
        calls = list(receiver.calls)

    by_job: dict[str, list[str]] = defaultdict(list)
    for call in calls:
        by_job[call.headers["X-Fsml-Job"]].append(call.headers["X-Fsml-Delivery"])
    done = {str(pk): job for pk, job in InferenceJob.objects.in_bulk(ids).items()}
    assert all(j.status == "succeeded" for j in done.values()), "every served job finished"
    for job_id, job in done.items():
        assert by_job.get(job_id), f"no callback for finished job {job_id}"
        assert set(by_job[job_id]) == {str(job.callback_delivery)}, "repeats carry the one delivery id"
    assert len({str(j.callback_delivery) for j in done.values()}) == JOBS, "one delivery id per job"
    for job in never:
        job.refresh_from_db()
        assert job.status == "queued" and str(job.pk) not in by_job, "no callback for a job that did not finish"
    repeats = len(calls) - len(by_job)
    print(
        f"\n{JOBS} jobs, {len(calls)} callbacks received, {repeats} repeats (same delivery id), "
        f"{max(j.callback_attempts for j in done.values())} attempts at most, {time.monotonic() - began:.1f} s; "
        + ", ".join(f"{what} at {when:.1f} s" for what, when in marks)
    )
