"""Delivering a finished job to its callback URL: the signed POST, to a checked address, without redirects, under
the delivery id that every attempt repeats; each attempt recorded on the job (``callback_status``,
``callback_error``). What is owed, when, and who sends it is the outbox's (``serving.worker.outbox``).

"""

from __future__ import annotations

import contextlib
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

from datastore.models import InferenceJob
from serving.jobs.callbacks import allowed, non_public, signing_key
from serving.jobs.messages import queue_callback
from serving.jobs.states import job_fields
from serving.worker import outbox

TIMEOUT = 10  # seconds a callback receiver has to answer
# Seconds one callback task goes on sending other due callbacks; with one last POST's TIMEOUT, well inside the
# task's time limit (CALLBACK_TASK_TIME_LIMIT).
DRAIN_SECONDS = 10
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

    ``X-Fsml-Delivery`` is the callback's delivery id, the same on every attempt: a receiver that has seen it drops
    the call as a repeat (delivery is at least once). With ``FSML_CALLBACK_SECRET`` set, ``X-Fsml-Timestamp: <unix
    seconds>`` and ``X-Fsml-Signature: sha256=<HMAC of "<timestamp>." + body>`` under the submitting service's
    ``signing_key`` let the receiver check that the call came from here, and recently (refusing old timestamps
    stops a captured call from being replayed).

    Raises:
        CallbackRefused: the host, resolved, has a non-public address this deployment does not allow.
    """
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "fsml-callback/1",
        "X-Fsml-Job": str(job.pk),
        "X-Fsml-Delivery": str(job.callback_delivery),
    }
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


def deliver(job_id: Any) -> bool:
    """Send the job's callback once, if it is due and no other worker holds it (``outbox.claim``), and record the
    attempt (``send``). Returns whether an attempt was made."""
    job = outbox.claim(job_id)
    if job is not None:
        send(job)
    return job is not None


def deliver_due(job_id: Any, seconds: float = DRAIN_SECONDS) -> int:
    """Send the job's callback if it is due (``deliver``), then, for up to ``seconds``, the other due callbacks that
    no worker holds, longest due first: a prompt that arrives late, behind a backlog of others, has work to do, and
    the prompts behind it find their callbacks sent. Returns the number of attempts made."""
    began = time.monotonic()
    made = int(deliver(job_id))
    while time.monotonic() - began < seconds and (job := outbox.claim_next()) is not None:
        send(job)
        made += 1
    return made


def send(job: InferenceJob) -> None:
    """POST the claimed callback of ``job`` and record the attempt: delivered, refused (never retried), or failed
    with the reason, the next attempt due after a backoff, or given up after ``outbox.MAX_ATTEMPTS``. A retry's
    prompt is sent for when it is due (the requeue loop prompts it later if that message is lost)."""
    try:
        failure = post(job, callback_body(job))
    except CallbackRefused as exc:
        outbox.record(job, Callback.REFUSED, exc.reason)
        return
    if not failure:
        outbox.record(job, Callback.DELIVERED)
    elif outbox.record(job, Callback.RETRYING, failure):
        with contextlib.suppress(Exception):  # broker down: the requeue loop prompts it once it is due
            queue_callback(job.pk, countdown=outbox.backoff(job.callback_attempts))
