"""Faults around the queue that need no worker: a submit whose messages could not all be sent, callbacks sent
again by several workers' loops at once, inputs that would crash or swamp a worker, odd model references."""

from __future__ import annotations

import base64
import io
import struct
import threading
import zlib
from typing import Any

import pytest
import redis as redis_lib
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from PIL import Image

from datastore import services as data_services
from datastore.models import InferenceJob
from serving.web.checks import JobError
from serving.web.submit import fail_unqueued, submit_job
from serving.worker.outbox import prompt_due

MODEL = "sentiment-test"


def _job(model: Any, user: Any, **fields: Any) -> InferenceJob:
    return InferenceJob.objects.create(model_version=model, model_ref=MODEL, submitted_by=user, **fields)


def test_a_submit_that_could_not_be_queued_fails_only_the_jobs_no_worker_took(live_env, registered_model) -> None:
    user = get_user_model().objects.create(username="svc")
    waiting = _job(registered_model, user, inputs={"text": "a"}, idempotency_key="k#0")
    taken = _job(registered_model, user, inputs={"text": "b"}, idempotency_key="k#1", status="running")
    ended = fail_unqueued([waiting, taken], "could not queue the job: broker down")
    assert [j.pk for j in ended] == [waiting.pk]
    waiting.refresh_from_db()
    taken.refresh_from_db()
    assert (waiting.status, waiting.error, waiting.idempotency_key) == (
        "failed",
        "could not queue the job: broker down",
        None,
    )
    assert waiting.finished_at is not None
    assert (taken.status, taken.error, taken.idempotency_key) == ("running", "", "k#1"), "a claimed job runs on"


def test_two_loops_never_send_the_same_callback(live_env, clean_broker, registered_model) -> None:
    """A row another worker's loop holds (locked) is skipped; what it prompts is not prompted again here."""
    from django.conf import settings

    user = get_user_model().objects.create(username="svc")
    held, free = (
        _job(
            registered_model,
            user,
            inputs={"text": t},
            status="succeeded",
            callback_url="http://127.0.0.1:9/h",
            callback_status=InferenceJob.CallbackStatus.NOT_QUEUED,
            callback_error="Error 111 connecting to 127.0.0.1:6379. Connection refused.",
        )
        for t in ("held", "free")
    )
    locked, release = threading.Event(), threading.Event()

    def other_loop() -> None:
        try:
            with transaction.atomic():
                InferenceJob.objects.select_for_update().filter(pk=held.pk).first()
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_loop)
    thread.start()
    try:
        assert locked.wait(30)
        assert prompt_due() == 1
    finally:
        release.set()
        thread.join(30)
    sent, left = InferenceJob.objects.get(pk=free.pk), InferenceJob.objects.get(pk=held.pk)
    assert sent.callback_status == InferenceJob.CallbackStatus.PENDING, "queued again"
    assert "Connection refused" in sent.callback_error, "why it was not queued at first stays on record"
    assert left.callback_status == InferenceJob.CallbackStatus.NOT_QUEUED, "left to its holder"
    assert redis_lib.Redis.from_url(settings.CELERY_BROKER_URL).llen("callbacks") == 1


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, format="PNG")
    return out.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (what a decompression bomb looks like)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_image_inputs_that_would_crash_or_swamp_a_worker_are_refused_at_submit(live_env) -> None:
    user = get_user_model().objects.create(username="svc")
    data_services.register_model_version(
        "digits", "image_classification", "/nowhere.tar.gz", "0" * 64, {"labels": ["0", "1"]}, None, version=1
    )
    broken = bytearray(_png(28, 28))
    broken[-20] ^= 0xFF  # a byte of the image data: Pillow's verify() raised SyntaxError, a 500
    bomb = _png_claiming(20_000, 20_000)  # 400 million pixels once decoded: Pillow refuses to open it
    for data, reason in (
        (bytes(broken), "inputs.image: not a readable image"),
        (bomb, "inputs.image: not a readable image"),
        (_png_claiming(8_000, 7_000), "inputs.image: 8000x7000 is over 50,000,000 pixels"),
    ):
        with pytest.raises(JobError, match=reason) as refused:
            submit_job(user, "digits", {"image": base64.b64encode(data).decode()})
        assert refused.value.status == 400
    assert not InferenceJob.objects.exists(), "nothing stored"


def test_callback_urls_are_sent_as_ascii(live_env, clean_broker, registered_model) -> None:
    user = get_user_model().objects.create(username="svc")
    job = submit_job(user, MODEL, {"text": "hi"}, callback_url="https://hook.example/cb?city=zürich")[0]
    assert job.callback_url == "https://hook.example/cb?city=z%C3%BCrich"
    with pytest.raises(JobError, match="xn-- \\(IDNA\\) form"):
        submit_job(user, MODEL, {"text": "hi"}, callback_url="https://bücher.example/cb")


@pytest.mark.parametrize("ref", ["sentiment-test:²", "sentiment-test:1.0", "sentiment-test:-1"])
def test_a_model_version_that_is_not_a_plain_number_is_a_400(live_env, registered_model, ref) -> None:
    user = get_user_model().objects.create(username="svc")
    with pytest.raises(JobError, match="is not a number") as refused:
        submit_job(user, ref, {"text": "hi"})
    assert refused.value.status == 400
