"""Delivering a finished job to its callback URL: which hosts may be called, the signed POST, no redirects.

The bookkeeping of a delivery (``record_callback``, ``resend_callbacks``) is in ``serving.services``; the retries
are the ``deliver_callback`` task's.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from datastore.models import InferenceJob

TIMEOUT = 10  # seconds a callback receiver has to answer
REFUSED = "refused: "  # a callback this deployment may not call: not retried


def refusal(url: str, resolve: bool = True) -> str:
    """Why a callback URL may not be called, or "". Workers sit inside the deployment's network, so a callback
    to a loopback, private, link-local or otherwise non-public address (a database, a cloud metadata service)
    is refused unless its host is listed in ``FSML_CALLBACK_ALLOWED_HOSTS`` (comma-separated; ``*`` allows
    every host). With ``resolve``, host names are looked up (at delivery); without, only literal addresses and
    ``localhost`` are judged (at submit, where the workers' DNS may differ)."""
    host = (urlsplit(url).hostname or "").lower()
    allowed = {h.strip().lower() for h in os.environ.get("FSML_CALLBACK_ALLOWED_HOSTS", "").split(",") if h.strip()}
    if "*" in allowed or host in allowed:
        return ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            addresses = [ipaddress.ip_address("127.0.0.1")]
        elif not resolve:
            return ""
        else:
            try:
                infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
            except OSError as exc:
                return f"unreachable: {host} does not resolve ({exc})"
            addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    inner = [str(a) for a in addresses if not a.is_global]
    if inner:
        return (
            f"{REFUSED}callback host {host} is a non-public address ({inner[0]}); "
            "list it in FSML_CALLBACK_ALLOWED_HOSTS to allow it"
        )
    return ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is a failed delivery: a redirect could lead a worker to an address it must not call


def post(job: InferenceJob, body: bytes) -> str:
    """POST a finished job to its callback URL. Returns "" when the receiver took it (2xx), else the reason.
    Redirects are not followed, and hosts are checked by ``refusal`` first.

    With ``FSML_CALLBACK_SECRET`` set, ``X-Fsml-Timestamp: <unix seconds>`` and ``X-Fsml-Signature:
    sha256=<HMAC of "<timestamp>." + body>`` let the receiver check that the call came from here, and recently
    (refusing old timestamps stops a captured call from being replayed).
    """
    if why := refusal(job.callback_url):
        return why
    headers = {"Content-Type": "application/json", "User-Agent": "fsml-callback/1", "X-Fsml-Job": str(job.pk)}
    if secret := os.environ.get("FSML_CALLBACK_SECRET", ""):
        stamp = str(int(time.time()))
        digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers |= {"X-Fsml-Timestamp": stamp, "X-Fsml-Signature": f"sha256={digest}"}
    request = urllib.request.Request(job.callback_url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.build_opener(_NoRedirects).open(request, timeout=TIMEOUT) as response:
            return "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}" + (" (redirects are not followed)" if 300 <= exc.code < 400 else "")
    except (urllib.error.URLError, OSError) as exc:
        return f"unreachable: {getattr(exc, 'reason', exc)}"
