"""Which callback URLs may be called, and the key a calling service's callbacks are signed with. The web side
checks a URL at submit; the worker side (``serving.worker.delivery``) checks the resolved address again where it
connects, and signs what it sends."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.utils.encoding import iri_to_uri
from rest_framework.authtoken.models import Token


def normalised(url: str) -> str:
    """The callback URL as it goes on the wire: non-ASCII characters of its path and query percent-encoded
    (``iri_to_uri``), so its delivery never fails on encoding.

    Raises:
        ValueError: a host name with non-ASCII characters (it is to be given in its ``xn--`` IDNA form).
    """
    if not (urlsplit(url).hostname or "").isascii():
        raise ValueError("callback_url: give an internationalised host name in its xn-- (IDNA) form")
    return iri_to_uri(url)


def allowed(host: str) -> bool:
    """The host is listed in ``FSML_CALLBACK_ALLOWED_HOSTS`` (lower-cased there; "*": every host)."""
    hosts = settings.FSML_CALLBACK_ALLOWED_HOSTS
    return "*" in hosts or host.lower() in hosts


def refusal(url: str) -> str:
    """Why a callback URL is refused at submit, or "": its host is a literal non-public address or ``localhost``
    and not allowed (``FSML_CALLBACK_ALLOWED_HOSTS``). Names are judged again, resolved, when a worker connects:
    the workers' DNS may differ, and may change between the two."""
    host = unquote(urlsplit(url).hostname or "").lower()
    if allowed(host):
        return ""
    if host == "localhost" or host.endswith(".localhost"):
        return non_public(host, ["127.0.0.1"])
    try:
        return non_public(host, [host])
    except ValueError:  # a name, not an address
        return ""


def non_public(host: str, addresses: list[str]) -> str:
    """Why a host with these addresses may not be called when one of them is not public (loopback, private,
    link-local, reserved...: workers sit inside the deployment's network, beside its database and the cloud's
    metadata service), or "".

    Raises:
        ValueError: one of ``addresses`` is not an IP address.
    """
    inner = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
    if inner:
        return (
            f"callback host {host} is a non-public address ({inner[0]}); "
            "list it in FSML_CALLBACK_ALLOWED_HOSTS to allow it"
        )
    return ""


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
    token = Token.objects.filter(user_id=user_id).values_list("key", flat=True).first() or ""
    return hmac.new(secret.encode(), f"fsml-callback-key:{user_id}:{token}".encode(), hashlib.sha256).hexdigest()
