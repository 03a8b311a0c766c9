"""Delivering a finished job to its callback URL: which hosts may be called, the signed POST, no redirects.

The bookkeeping of a delivery (``record_callback``, ``resend_callbacks``) is in ``serving.services``; the retries
are the ``deliver_callback`` task's.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

if TYPE_CHECKING:
    from datastore.models import InferenceJob

TIMEOUT = 10  # seconds a callback receiver has to answer
REFUSED = "refused: "  # a callback this deployment may not call: not retried


def normalised(url: str) -> str:
    """The callback URL as it goes on the wire: non-ASCII characters of its path and query percent-encoded
    (``iri_to_uri``), so its delivery never fails on encoding.

    Raises:
        ValueError: a host name with non-ASCII characters (it is to be given in its ``xn--`` IDNA form).
    """
    from django.utils.encoding import iri_to_uri

    if not (urlsplit(url).hostname or "").isascii():
        raise ValueError("callback_url: give an internationalised host name in its xn-- (IDNA) form")
    return iri_to_uri(url)


def refusal(url: str) -> str:
    """Why a callback URL is refused at submit, or "": its host is a literal non-public address or ``localhost``
    and not allowed (``FSML_CALLBACK_ALLOWED_HOSTS``). Names are judged again, resolved, when a worker connects
    (``_checked_connection``): the workers' DNS may differ, and may change between the two."""
    host = unquote(urlsplit(url).hostname or "").lower()
    allowed = settings.FSML_CALLBACK_ALLOWED_HOSTS  # lower-cased; "*": every host
    if "*" in allowed or host in allowed:
        return ""
    if host == "localhost" or host.endswith(".localhost"):
        return _judge(host, ["127.0.0.1"])
    try:
        return _judge(host, [host])
    except ValueError:  # a name, not an address
        return ""


def _judge(host: str, addresses: list[str]) -> str:
    """The refusal for a host with these addresses when one of them is not public (loopback, private,
    link-local, reserved...: workers sit inside the deployment's network, beside its database and the cloud's
    metadata service), or "". Raises ValueError for something that is not an address."""
    inner = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
    if inner:
        return (
            f"{REFUSED}callback host {host} is a non-public address ({inner[0]}); "
            "list it in FSML_CALLBACK_ALLOWED_HOSTS to allow it"
        )
    return ""


class _Refused(OSError):
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
    allowed = settings.FSML_CALLBACK_ALLOWED_HOSTS
    if "*" in allowed or host.lower() in allowed:
        return socket.create_connection(address, timeout, source_address)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if why := _judge(host, [str(info[4][0]) for info in infos]):
        raise _Refused(why)
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


def signing_key(user_id: Any) -> str:
    """The key that signs the callbacks of one calling service (its user), or "" when ``FSML_CALLBACK_SECRET`` is
    unset: 64 hex characters, whose ASCII bytes are the HMAC key. Each service's key is derived (HMAC-SHA256) from
    that secret, the service's user id and its current API token, so a receiver holding its own key cannot sign
    calls another service would accept, and rotating a service's token (``fsml service NAME --rotate``) changes
    its key too. ``GET /api/callback-key/`` and ``fsml service NAME`` give a service its key; changing the secret
    changes every key."""
    secret = settings.FSML_CALLBACK_SECRET
    if not secret:
        return ""
    from rest_framework.authtoken.models import Token

    token = Token.objects.filter(user_id=user_id).values_list("key", flat=True).first() or ""
    return hmac.new(secret.encode(), f"fsml-callback-key:{user_id}:{token}".encode(), hashlib.sha256).hexdigest()


def post(job: InferenceJob, body: bytes) -> str:
    """POST a finished job to its callback URL. Returns "" when the receiver took it (2xx), else the reason.
    The host is checked where the connection is made (``_checked_connection``); no proxy from the environment is
    used and redirects are not followed.

    With ``FSML_CALLBACK_SECRET`` set, ``X-Fsml-Timestamp: <unix seconds>`` and ``X-Fsml-Signature:
    sha256=<HMAC of "<timestamp>." + body>`` under the submitting service's ``signing_key`` let the receiver check
    that the call came from here, and recently (refusing old timestamps stops a captured call from being replayed).
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
        return str(reason) if isinstance(reason, _Refused) else f"unreachable: {reason}"
    except (http.client.HTTPException, ValueError) as exc:  # a malformed answer or URL: recorded, retried
        return f"failed: {type(exc).__name__}: {exc}"
