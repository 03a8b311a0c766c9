"""Who may scrape ``/metrics``: the web's (``serving.web.health``) and each worker's (``serving.worker.health``).

Metrics name models, queues and job counts, so they are for Prometheus only:

- with ``FSML_METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <token>`` (401 otherwise);
- without it, only clients on the loopback interface are answered (403 to others), unless
  ``FSML_METRICS_OPEN`` says the port is guarded some other way (a firewall, a private network).

Production refuses to start with neither (``fsml.settings.production``).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

REALM = 'Bearer realm="metrics"'


@dataclass(frozen=True)
class Refusal:
    """Why a scrape is refused: its HTTP status, the reason (the response body) and its extra headers."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def scrape_refusal(authorization: str, remote_addr: str) -> Refusal | None:
    """None when a request with this ``Authorization`` header from ``remote_addr`` may read the metrics."""
    token = settings.FSML_METRICS_TOKEN
    if token:
        scheme, _, sent = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
            return None
        reason = "wrong metrics token" if authorization else "metrics need Authorization: Bearer FSML_METRICS_TOKEN"
        return Refusal(401, reason, (("WWW-Authenticate", REALM),))
    if settings.FSML_METRICS_OPEN or _is_loopback(remote_addr):
        return None
    return Refusal(403, "metrics are served to loopback clients only: set FSML_METRICS_TOKEN to scrape from afar")


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:  # no address (a Unix socket) or a name: not known to be local
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return (mapped or ip).is_loopback


def prometheus_only(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Wrap a Django view of metrics: refused requests get the status and reason of ``scrape_refusal``."""

    @wraps(view)
    def guarded(request: HttpRequest) -> HttpResponse:
        refusal = scrape_refusal(request.headers.get("Authorization", ""), request.META.get("REMOTE_ADDR", ""))
        if refusal is None:
            return view(request)
        response = HttpResponse(refusal.reason + "\n", status=refusal.status, content_type="text/plain")
        for name, value in refusal.headers:
            response[name] = value
        return response

    return guarded
