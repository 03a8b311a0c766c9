"""The job API with a real Celery worker process on the real Redis broker and MariaDB."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from datastore.models import InferenceJob
from tests.conftest import child_pids


def wait_done(ids: list[str], timeout: float = 60) -> list[InferenceJob]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = list(InferenceJob.objects.filter(pk__in=ids))
        if all(j.status in ("succeeded", "failed") for j in jobs):
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"jobs not finished: {[(j.pk, j.status) for j in jobs]}")


def test_jobs_are_served_by_the_worker_process_not_eagerly(celery_worker, registered_model, service_client) -> None:
    texts = ["I love this airline", "worst flight ever", "the car drives itself", "ok I guess"]
    ids = []
    for text in texts:
        res = service_client.post("/api/jobs/", {"model": "sentiment-test", "inputs": {"text": text}}, format="json")
        assert res.status_code == 202, res.content
        assert res.json()["status"] == "queued"
        ids.append(res.json()["id"])
    jobs = wait_done(ids)
    workers = child_pids(celery_worker.pid)
    for job in jobs:
        assert job.status == "succeeded", job.error
        assert job.result["label"] in ("negative", "neutral", "positive")
        # Eager execution would run the job in this process: the pid and the worker name catch it.
        assert job.worker_pid != os.getpid()
        assert job.worker_pid in workers  # a prefork child of the worker we started
        assert job.worker.startswith("test-")
        assert job.started_at >= job.queued_at and job.finished_at >= job.started_at
    detail = service_client.get(f"/api/jobs/{ids[0]}/").json()
    assert detail["status"] == "succeeded" and detail["model"] == "sentiment-test:1"


def test_idempotency_key_returns_the_first_job(celery_worker, registered_model, service_client) -> None:
    body = {"model": "sentiment-test", "inputs": {"text": "great"}}
    first = service_client.post("/api/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = service_client.post("/api/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert InferenceJob.objects.count() == 1
    wait_done([first.json()["id"]])


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"model": "sentiment-test", "inputs": {"text": ""}}, 400, "non-empty string"),
        ({"model": "sentiment-test", "inputs": {"text": 42}}, 400, "non-empty string"),
        ({"model": "sentiment-test", "inputs": "hello"}, 400, "non-empty string"),
        ({"model": "sentiment-test", "inputs": {"text": "x" * 20_001}}, 413, "longer than"),
        ({"model": "no-such-model", "inputs": {"text": "hi"}}, 404, "unknown model"),
        ({"model": "sentiment-test:x", "inputs": {"text": "hi"}}, 400, "not a number"),
        ({"inputs": {"text": "hi"}}, 400, "required"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_queued(
    registered_model, service_client, body, status, needle
) -> None:
    res = service_client.post("/api/jobs/", body, format="json")
    assert res.status_code == status
    assert needle in str(res.json())
    assert InferenceJob.objects.count() == 0


def test_job_api_needs_a_valid_token(live_env) -> None:
    client = APIClient()
    assert client.post("/api/jobs/", {}, format="json").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/jobs/").status_code == 401
