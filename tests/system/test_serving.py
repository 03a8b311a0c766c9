"""The job API with a real Celery worker process on the real Redis broker and MariaDB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers
from rest_framework.test import APIClient

from datastore.models import InferenceJob
from serving.jobs.callbacks import signing_key
from serving.web.api import JobSerializer
from serving.worker.delivery import CallbackRefused, post
from tests.processes import child_pids, wait_done
from tests.receivers import Receiver, receiving

Callback = InferenceJob.CallbackStatus


class GenericJobSerializer(JobSerializer):
    """JobSerializer's fields as DRF's ModelSerializer shows them, field by field: what its hand-built output must
    equal."""

    to_representation = serializers.ModelSerializer.to_representation  # type: ignore[assignment]  # DRF's own, on purpose


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
        assert job.result is not None
        assert job.result["label"] in ("negative", "neutral", "positive")
        # Eager execution would run the job in this process: the pid and the worker name catch it.
        assert job.worker_pid != os.getpid()
        assert job.worker_pid in workers  # a prefork child of the worker we started
        assert job.worker.startswith("test-")
        assert job.started_at is not None and job.finished_at is not None
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


def test_idempotency_keys_are_checked_for_length_and_reuse(live_env, clean_broker, registered_model, service_client):
    """Through the HTTP API: at most 100 characters for a single submit, 94 for a batch (its jobs carry
    ``KEY#i``), and a key used again for another request is refused, not mistaken for a retry. No worker runs."""

    def post(path: str, inputs: object, key: str) -> tuple[int, dict]:
        res = service_client.post(
            path, {"model": "sentiment-test", "inputs": inputs}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        return res.status_code, res.json()

    one, batch = {"text": "great"}, [{"text": "great"}, {"text": "awful"}]
    too_long = {"detail": "Idempotency-Key must be 1 to {} characters", "field": "Idempotency-Key"}
    assert post("/api/jobs/", one, "k" * 101) == (400, too_long | {"detail": too_long["detail"].format(100)})
    assert post("/api/jobs/batch/", batch, "b" * 95) == (400, too_long | {"detail": too_long["detail"].format(94)})
    assert InferenceJob.objects.count() == 0, "nothing was stored for a refused key"
    status, single = post("/api/jobs/", one, "k" * 100)
    assert status == 202 and single["idempotency_key"] == "k" * 100, single
    status, body = post("/api/jobs/batch/", batch, "b" * 94)
    assert status == 202 and [j["idempotency_key"] for j in body["jobs"]] == ["b" * 94 + "#0", "b" * 94 + "#1"]

    reused = (422, {"detail": "Idempotency-Key was already used for a different request", "field": "Idempotency-Key"})
    assert post("/api/jobs/", {"text": "not great"}, "k" * 100) == reused
    assert post("/api/jobs/batch/", [{"text": "great"}, {"text": "fine"}], "b" * 94) == reused
    assert post("/api/jobs/batch/", [*batch, {"text": "one more"}], "b" * 94) == reused, "a longer batch is another"
    assert post("/api/jobs/", one, "k" * 100) == (200, single), "the same request again is a retry"
    assert InferenceJob.objects.count() == 3


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"model": "sentiment-test", "inputs": {"text": ""}}, 400, "non-empty string"),
        ({"model": "sentiment-test", "inputs": {"text": 42}}, 400, "non-empty string"),
        ({"model": "sentiment-test", "inputs": "hello"}, 400, "expected an object, got str"),
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


def test_an_expired_token_is_refused_with_the_reason(live_env, settings) -> None:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=get_user_model().objects.create(username="old-service"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    settings.TOKEN_MAX_AGE_DAYS = 30
    assert client.get("/api/jobs/").status_code == 200, "a fresh token works"
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(days=31))
    settings.TOKEN_CACHE_SECONDS = 0  # read the token again, as another process would after its cache time
    res = client.get("/api/jobs/")
    assert res.status_code == 401 and "token expired: tokens last 30 days" in res.json()["detail"]
    settings.TOKEN_MAX_AGE_DAYS = 0
    assert client.get("/api/jobs/").status_code == 200, "0 means tokens never expire"


def test_the_sync_endpoint_waits_for_the_result_or_answers_202(celery_worker, registered_model, service_client):
    # A first request waits for this process's listener to subscribe, and reads its job back; the next ones do not.
    first = service_client.post(
        "/api/jobs/sync/", {"model": "sentiment-test", "inputs": {"text": "hi"}, "timeout": 0}, format="json"
    )
    assert first.status_code in (200, 202), first.content  # ended within the wait for the subscription, or not
    body = {"model": "sentiment-test", "inputs": {"text": "great crew"}, "timeout": 30}
    with CaptureQueriesContext(connection) as queries:
        res = service_client.post("/api/jobs/sync/", body, format="json")
    assert res.status_code == 200, res.content
    read_back = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and "inferencejob" in q["sql"]]
    assert not read_back, "the wake-up carried the outcome: the job is not read back"
    assert res.json()["status"] == "succeeded" and res.json()["result"]["label"] in ("negative", "neutral", "positive")
    job = InferenceJob.objects.get(pk=res.json()["id"])
    assert JobSerializer(job).data == GenericJobSerializer(job).data == res.json(), "the hand-built fields are DRF's"
    assert (res.json()["callback_status"], res.json()["callback_error"]) == ("", ""), "no callback was asked for"
    for body, needle in (({"timeout": 31}, "less than or equal to 30"), ({"inputs": {"text": ""}}, "non-empty")):
        bad = service_client.post(
            "/api/jobs/sync/", {"model": "sentiment-test", "inputs": {"text": "x"}} | body, format="json"
        )
        assert bad.status_code == 400 and needle in str(bad.json())


def database_connections_of(pids: set[int]) -> dict[int, set[int]]:
    """The connections to the test database that processes ``pids`` hold: {pid: PROCESSLIST ids}. A connection
    is matched to its process by its client port (read from /proc), so other clients of the server, this test
    process included, never count."""
    server_port = int(connection.settings_dict["PORT"] or 3306)
    owner = {}  # socket inode -> pid
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # the process is gone
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owner[target[len("socket:[") : -1]] = pid
    port_owner = {}  # local port of a socket connected to the database server's port -> pid
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in owner and int(remote.rsplit(":", 1)[1], 16) == server_port:
                port_owner[int(local.rsplit(":", 1)[1], 16)] = owner[inode]
    held: dict[int, set[int]] = {pid: set() for pid in pids}
    with connection.cursor() as cursor:
        cursor.execute("SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE DB = DATABASE()")
        for conn_id, host in cursor.fetchall():
            port = int(host.rsplit(":", 1)[1]) if ":" in host else None
            if port in port_owner:
                held[port_owner[port]].add(int(conn_id))
    return held


def test_a_worker_keeps_its_database_connection_across_tasks_and_replaces_a_lost_one(
    celery_worker, registered_model, service_client
) -> None:
    if connection.vendor != "mysql" or connection.settings_dict["HOST"] in ("", "localhost"):
        pytest.skip("finds the worker's connections by their TCP ports on the MariaDB server")

    def served(text: str) -> int:
        """The pid of the pool process that served a job with ``text``."""
        res = service_client.post(
            "/api/jobs/sync/", {"model": "sentiment-test", "inputs": {"text": text}, "timeout": 30}, format="json"
        )
        assert res.status_code == 200 and res.json()["status"] == "succeeded", res.content
        return int(res.json()["worker_pid"])

    pool = served("warm up")
    before = database_connections_of({pool})[pool]
    assert len(before) == 1, f"the pool process holds one connection between tasks: {before}"
    for i in range(6):
        assert served(f"text {i}") == pool
    after = database_connections_of({pool})[pool]
    assert after == before, "the same connection served every task (Celery's default closes it after each)"

    worker = {celery_worker.pid, *child_pids(celery_worker.pid)}
    lost = set().union(*database_connections_of(worker).values())
    assert after <= lost, "the pool process's connection is among those killed"
    with connection.cursor() as cursor:  # the server drops the worker's connections (and only those)
        for conn_id in lost:
            cursor.execute(f"KILL {int(conn_id)}")
    assert served("after the connections were lost") == pool, "the same pool process served it"
    replaced = database_connections_of({pool})[pool]
    assert replaced and not replaced & lost, f"a new connection replaced the killed one: {replaced}, {lost}"


def test_the_sync_endpoint_gives_back_the_job_when_its_time_is_up(registered_model, service_client) -> None:
    res = service_client.post(  # no worker runs: the job stays queued
        "/api/jobs/sync/", {"model": "sentiment-test", "inputs": {"text": "hello"}, "timeout": 0.3}, format="json"
    )
    assert res.status_code == 202 and res.json()["status"] == "queued"
    assert service_client.get(f"/api/jobs/{res.json()['id']}/").json()["status"] == "queued"


@pytest.fixture
def callback_receiver(monkeypatch, settings) -> Iterator[Receiver]:
    """A receiver that answers 500 to the first call and 200 afterwards; the workers started after it sign
    callbacks with a secret."""
    # Here, and in the environment of the workers started after it.
    settings.FSML_CALLBACK_SECRET, settings.FSML_CALLBACK_ALLOWED_HOSTS = "s3cret", {"127.0.0.1"}
    monkeypatch.setenv("FSML_CALLBACK_SECRET", "s3cret")
    monkeypatch.setenv("FSML_CALLBACK_ALLOWED_HOSTS", "127.0.0.1")  # the receiver is local, as no real one is
    with receiving(500) as receiver:
        yield receiver


def test_a_callback_is_retried_until_the_receiver_takes_it(
    callback_receiver, celery_worker, registered_model, service_client
) -> None:
    import hashlib
    import hmac
    import json
    import time

    url, calls = callback_receiver.url, callback_receiver.calls
    body = {"model": "sentiment-test", "inputs": {"text": "on time!"}, "callback_url": url}
    job_id = service_client.post("/api/jobs/", body, format="json").json()["id"]
    deadline = time.monotonic() + 60
    seen: list[tuple[str, str]] = []  # the callback's states, in the order this test saw them
    while time.monotonic() < deadline:
        job = InferenceJob.objects.get(pk=job_id)
        if not seen or seen[-1] != (job.callback_status, job.callback_error):
            seen.append((job.callback_status, job.callback_error))
        if job.callback_status == Callback.DELIVERED:
            break
        time.sleep(0.05)
    assert job.callback_status == Callback.DELIVERED and job.callback_attempts == 2, (seen, calls)
    assert (Callback.RETRYING, "HTTP 500") in seen and seen[-1] == (Callback.DELIVERED, ""), seen
    shown = service_client.get(f"/api/jobs/{job_id}/").json()
    assert (shown["callback_status"], shown["callback_error"], shown["callback_attempts"]) == ("delivered", "", 2)
    assert len(calls) == 2 and calls[0].body == calls[1].body, "the retry sent the same body"
    headers, sent = calls[1].headers, calls[1].body
    payload = json.loads(sent)
    assert payload["id"] == job_id and payload["status"] == "succeeded" and payload["result"] == job.result
    stamp = headers["X-Fsml-Timestamp"]
    assert abs(int(stamp) - time.time()) < 120, "signed with the time of sending"
    key = service_client.get("/api/callback-key/").json()["key"]  # this service's own key
    expected = hmac.new(key.encode(), stamp.encode() + b"." + sent, hashlib.sha256).hexdigest()
    assert headers["X-Fsml-Signature"] == f"sha256={expected}"
    shared = hmac.new(b"s3cret", stamp.encode() + b"." + sent, hashlib.sha256).hexdigest()
    assert shared != expected, "signed with the service's key, not the deployment's secret"
    bad = service_client.post("/api/jobs/", body | {"callback_url": "ftp://example.com/x"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "callback_url"


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3/hook", "http://localhost:8000/x", "http://[::1]/x", "http://169.254.169.254/"]
)
def test_callbacks_to_inner_addresses_are_refused_unless_allowed(url, registered_model, service_client, settings):
    body = {"model": "sentiment-test", "inputs": {"text": "hi"}, "callback_url": url}
    refused = service_client.post("/api/jobs/", body, format="json")
    assert refused.status_code == 400 and "FSML_CALLBACK_ALLOWED_HOSTS" in str(refused.json()), refused.content
    assert InferenceJob.objects.count() == 0
    settings.FSML_CALLBACK_ALLOWED_HOSTS = {"backend.internal", urlsplit(url).hostname}
    assert service_client.post("/api/jobs/", body, format="json").status_code == 202


def test_a_delivery_is_refused_for_inner_addresses_and_never_follows_a_redirect(live_env, settings) -> None:
    with receiving(307, 307, location="http://169.254.169.254/latest/meta-data/") as redirector:
        job = InferenceJob(callback_url=redirector.url.replace("127.0.0.1", "localhost"))
        with pytest.raises(CallbackRefused, match="^callback host localhost is a non-public address"):
            post(job, b"{}")
        assert redirector.calls == [], "refused before any connection"
        settings.FSML_CALLBACK_ALLOWED_HOSTS = {"localhost"}
        assert post(job, b"{}") == "HTTP 307 (redirects are not followed)"
        assert [call.path for call in redirector.calls] == ["/hook"]


def test_image_and_span_models_take_their_own_inputs_and_refuse_bad_ones(live_env, service_client) -> None:
    """Inputs are checked against the model's task type before anything is queued (no worker runs here)."""
    import base64
    import io

    from PIL import Image

    from datastore.models import ModelVersion
    from modelpack.inputs import MAX_IMAGE_BYTES

    for name, task in (("digits", "image_classification"), ("names", "spans")):
        ModelVersion.objects.create(name=name, version=1, task_type=task, archive_path="-", archive_sha256="-")
    png = io.BytesIO()
    Image.new("L", (28, 28), 128).save(png, format="PNG")
    good = base64.b64encode(png.getvalue()).decode()
    for inputs, status, needle in (
        ({"image": "not base64!"}, 400, "not valid base64"),
        ({"image": base64.b64encode(b"GIF89a broken").decode()}, 400, "not a readable image"),
        ({"image": "A" * (MAX_IMAGE_BYTES * 4 // 3 + 100)}, 413, "image larger than"),
        ({"image": "A" * (MAX_IMAGE_BYTES * 2)}, 413, "request body larger than"),
        ({"text": "an image model gets no text"}, 400, "base64-encoded image"),
    ):
        res = service_client.post("/api/jobs/", {"model": "digits", "inputs": inputs}, format="json")
        assert res.status_code == status and needle in str(res.json()), res.content
    assert InferenceJob.objects.count() == 0
    for model, inputs in (("digits", {"image": good}), ("names", {"text": "Ada Lovelace in London"})):
        res = service_client.post("/api/jobs/", {"model": model, "inputs": inputs}, format="json")
        assert res.status_code == 202, res.content
    assert InferenceJob.objects.get(model_version__name="digits").inputs == {"image": good}


def test_service_accounts_get_a_token_their_own_callback_key_and_a_new_token_on_rotation(
    live_env, settings, monkeypatch
) -> None:
    from serving.web.accounts import AccountError, service_token

    settings.TOKEN_CACHE_SECONDS = 0
    token, created = service_token("billing")
    assert created and not token.user.has_usable_password() and not token.user.is_staff
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    res = client.get("/api/callback-key/")
    assert res.status_code == 404 and "FSML_CALLBACK_SECRET" in res.json()["detail"]
    settings.FSML_CALLBACK_SECRET = "s3cret"
    key = client.get("/api/callback-key/").json()["key"]
    other, _ = service_token("shipping")
    assert len(key) == 64 and signing_key(other.user_id) != key, "each service has its own key"
    assert service_token("billing") == (token, False), "asked again: the same token"
    new, _ = service_token("billing", rotate=True)
    assert new.key != token.key and client.get("/api/callback-key/").status_code == 401, "the old token is refused"
    assert signing_key(new.user_id) != key, "rotating the token changes the callback key"
    with pytest.raises(AccountError, match="bad service name"):
        service_token("no spaces allowed")
    type(token.user).objects.filter(username="shipping").update(is_active=False)
    with pytest.raises(AccountError, match="deactivated"):
        service_token("shipping")
    type(token.user).objects.create(username="ops", is_staff=True)
    with pytest.raises(AccountError, match="is staff"):
        service_token("ops")
