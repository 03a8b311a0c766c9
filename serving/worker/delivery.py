"""Delivering a finished job to its callback URL: the signed POST, to a checked address, without redirects; each
attempt recorded on the job (``callback_status``, ``callback_error``); callbacks that could not be queued sent
again. The retries are the ``deliver_callback`` task's (``serving.tasks``)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F

from datastore.models import InferenceJob
from serving.jobs.callbacks import allowed, non_public, signing_key
from serving.jobs.messages import queue_callback
from serving.jobs.states import job_fields

TIMEOUT = 10  # seconds a callback receiver has to answer
Callback = InferenceJob.CallbackStatus


class CallbackRefused(Exception):
    """A callback host this deployment may not call; ``reason`` says why. Not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Blocked(OSError):  # raised where the connection is made; urllib hands OSErrors on as URLError.reason
    pass


def _checked_connection(
    address: tuple[str, int],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]  # create_connection's own default
    source_address: Any = None,
) -> socket.socket:
    """``socket.create_connection`` for callbacks: resolve the host once, refuse it when any of its addresses is
    not public (unless allowed), and connect to the very address that was checked (no second lookup that DNS
    rebinding could answer differently)."""
    host, port = address
    if allowed(host):
        return socket.create_connection(address, timeout, source_address)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if why := non_public(host, [str(info[4][0]) for info in infos]):
        raise _Blocked(why)
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]  # as above
            sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect(sockaddr)
    except OSError:
        sock.close()
        raise
    return sock


class _CheckedHTTP(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _checked_connection


class _CheckedHTTPS(http.client.HTTPSConnection):  # TLS still verifies the certificate against the host name
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _checked_connection


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_CheckedHTTP, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_CheckedHTTPS, req, context=self._context)  # type: ignore[attr-defined]  # set in __init__


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is a failed delivery: a redirect could lead a worker to an address it must not call


def post(job: InferenceJob, body: bytes) -> str:
    """POST a finished job to its callback URL. Returns "" when the receiver took it (2xx), else the reason.
    The host is checked where the connection is made (``_checked_connection``); no proxy from the environment is
    used and redirects are not followed.

    With ``FSML_CALLBACK_SECRET`` set, ``X-Fsml-Timestamp: <unix seconds>`` and ``X-Fsml-Signature:
    sha256=<HMAC of "<timestamp>." + body>`` under the submitting service's ``signing_key`` let the receiver check
    that the call came from here, and recently (refusing old timestamps stops a captured call from being replayed).

    Raises:
        CallbackRefused: the host, resolved, has a non-public address this deployment does not allow.
    """
    headers = {"Content-Type": "application/json", "User-Agent": "fsml-callback/1", "X-Fsml-Job": str(job.pk)}
    if key := signing_key(job.submitted_by_id):
        stamp = str(int(time.time()))
        digest = hmac.new(key.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers |= {"X-Fsml-Timestamp": stamp, "X-Fsml-Signature": f"sha256={digest}"}
    request = urllib.request.Request(job.callback_url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), _CheckedHTTPHandler, _CheckedHTTPSHandler, _NoRedirects
    )
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            return "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}" + (" (redirects are not followed)" if 300 <= exc.code < 400 else "")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, _Blocked):
            raise CallbackRefused(str(reason)) from None
        return f"unreachable: {reason}"
    except (http.client.HTTPException, ValueError) as exc:  # a malformed answer or URL: recorded, retried
        return f"failed: {type(exc).__name__}: {exc}"


def callback_body(job: InferenceJob) -> bytes:
    """The job as ``GET /api/jobs/ID/`` shows it, without the delivery's own bookkeeping: every retry sends the
    same body."""
    fields = {k: v for k, v in job_fields(job).items() if not k.startswith("callback_")}
    return json.dumps(fields, cls=DjangoJSONEncoder).encode()


def deliver(job: InferenceJob, last_try: bool) -> bool:
    """POST ``job`` to its callback URL once and record the attempt: delivered, refused (never retried), or failed,
    with the reason; a failed ``last_try`` gives up. Returns whether to try again."""
    try:
        failure = post(job, callback_body(job))
    except CallbackRefused as exc:
        record_callback(job.pk, Callback.REFUSED, exc.reason)
        return False
    if not failure:
        record_callback(job.pk, Callback.DELIVERED)
        return False
    record_callback(job.pk, Callback.GAVE_UP if last_try else Callback.RETRYING, failure)
    return not last_try


def record_callback(job_id: Any, status: InferenceJob.CallbackStatus, error: str = "") -> None:
    """Record one delivery attempt on the job: where its callback stands now, and why when not delivered."""
    InferenceJob.objects.filter(pk=job_id).update(
        callback_status=status, callback_error=error, callback_attempts=F("callback_attempts") + 1
    )


def resend_callbacks() -> int:
    """Queue again the callbacks that could not be queued when their job ended (the broker was down then).
    Every worker's requeue loop calls this; returns how many were sent."""
    with transaction.atomic():
        # Locked rows are skipped: two workers' loops never send the same callback. A broker error rolls the
        # marks back, so what was not sent is tried next round (a message sent before the error may go twice:
        # receivers dedupe by X-Fsml-Job, and deliver_callback skips a job already delivered).
        pending = (
            InferenceJob.objects.select_for_update(skip_locked=True)
            .filter(callback_status=Callback.NOT_QUEUED)
            .values_list("pk", flat=True)
        )
        ids = list(pending[:500])
        for job_id in ids:
            queue_callback(job_id)
        # The reason it could not be queued stays in callback_error, for the record.
        return InferenceJob.objects.filter(pk__in=ids).update(callback_status=Callback.PENDING)
