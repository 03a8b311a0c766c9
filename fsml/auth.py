"""Who may sign in and call the API: token authentication with a short-lived in-process cache, a throttle on
failed token look-ups, and the sign-in lockout's backend and page (django-axes). Its own module: DRF imports
authentication classes while ``rest_framework.views`` is still loading."""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

log = logging.getLogger(__name__)

MAX_CACHED_TOKENS = 10_000


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with each token's user kept in memory for ``TOKEN_CACHE_SECONDS``.

    Annotators and services send a request every second or so; without the cache every request pays a
    database round trip (and the ORM's query building) before the view runs. The price: in a process other
    than the one that revoked it, a deleted token or a deactivated user keeps working for at most that many
    seconds (the revoking process forgets it at once). ``FSML_TOKEN_CACHE_SECONDS=0`` turns the cache off.
    Tokens older than ``FSML_TOKEN_MAX_AGE_DAYS`` (0, the default: never) are refused as expired.
    """

    _cache: dict[str, tuple[float, Any, Any]] = {}

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        """A token from the cache costs nothing more; any other is looked up only while the caller's address has
        fewer than ``token_failure`` failed look-ups in the window, and a failure counts against it: past the
        limit every uncached token (valid or not, so guessing learns nothing) gets 429 with Retry-After."""
        self._request = request  # DRF makes an authenticator per request; the throttle is built only on a miss
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            TokenFailureThrottle(request).record()
            raise

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        user, token = self._credentials(key)
        max_age = settings.TOKEN_MAX_AGE_DAYS
        if max_age > 0 and token.created < timezone.now() - timedelta(days=max_age):
            raise AuthenticationFailed(
                f"token expired: tokens last {max_age:g} days and this one was made on {token.created:%Y-%m-%d}; "
                "ask for a new one"
            )
        return user, token

    def _credentials(self, key: str) -> tuple[Any, Any]:
        ttl = settings.TOKEN_CACHE_SECONDS
        if ttl <= 0:
            TokenFailureThrottle(self._request).refuse_when_over()
            return super().authenticate_credentials(key)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        TokenFailureThrottle(self._request).refuse_when_over()
        user, token = super().authenticate_credentials(key)  # refuses unknown tokens and inactive users
        if len(self._cache) >= MAX_CACHED_TOKENS:
            self._cache.clear()
        self._cache[key] = (now + ttl, user, token)
        return user, token

    @classmethod
    def forget_user(cls, user_id: int) -> None:
        for key, (_, user, _) in list(cls._cache.items()):
            if user.pk == user_id:
                cls._cache.pop(key, None)


class TokenFailureThrottle(SimpleRateThrottle):
    """Failed token look-ups per client address, in the default cache (shared by the web processes: Redis in
    production), at the rate ``DEFAULT_THROTTLE_RATES["token_failure"]`` (``FSML_TOKEN_FAILURE_RATE``).

    Unlike DRF's throttles it is not a view's: the authenticator asks it before a look-up and tells it of each
    failure, so valid tokens never count.
    """

    scope = "token_failure"
    num_requests: int  # set by SimpleRateThrottle from the rate (the stubs leave them out)
    duration: int

    def __init__(self, request: Request) -> None:
        super().__init__()
        self.request = request
        self.key = self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.key

    def _history(self) -> list[float]:
        self.now = self.timer()
        return [moment for moment in self.cache.get(self.key, []) if moment > self.now - self.duration]

    def refuse_when_over(self) -> None:
        """Raise Throttled (429, Retry-After) while this address is over its failures."""
        if self.rate is None:
            return
        try:
            self.history = self._history()
        except RedisError as exc:  # tokens are 160 random bits: the throttle is a second line, so the API stays up
            log.warning("token failure counts unavailable, not throttling: %s", exc)
            return
        if len(self.history) >= self.num_requests:
            raise Throttled(wait=self.wait(), detail="too many failed token look-ups from your address")

    def record(self) -> None:
        """Count one failed look-up (the request itself still gets its 401)."""
        if self.rate is None:
            return
        try:
            history = self._history()
            history.insert(0, self.now)
            self.cache.set(self.key, history, self.duration)
        except RedisError as exc:
            log.warning("cannot count a failed token look-up: %s", exc)


def client_ip(request: HttpRequest) -> str:
    """The address sign-in lockouts count by: DRF's, so lockouts and throttles agree (``FSML_NUM_PROXIES``)."""
    return BaseThrottle().get_ident(request)  # type: ignore[arg-type]  # reads only request.META


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' check, skipped for ``authenticate()`` calls that have no request (Django's test client and
    scripts: there is no address to count by). Every sign-in form passes the request."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: Any) -> HttpResponse:
    """The sign-in page again (the site's or the admin's), status 429, saying when signing in works again."""
    cool_off = get_cool_off(request) or timedelta(0)
    until = timezone.now() + cool_off
    minutes = math.ceil(cool_off.total_seconds() / 60)
    message = (
        f"Too many failed sign-ins for this username from your address. Try again after {until:%H:%M} UTC "
        f"(in {minutes} minute{'s' if minutes != 1 else ''}), or ask a staff member to unlock your account."
    )
    context = {**(getattr(original_response, "context_data", None) or {}), "lockout": message}
    form = context.get("form")
    if isinstance(original_response, TemplateResponse) and isinstance(form, Form):
        form.errors.pop("__all__", None)  # "enter a correct username and password" would mislead now
        form.add_error(None, message)
        response: HttpResponse = TemplateResponse(
            request, original_response.template_name or [], context, status=429
        ).render()
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response


def _forget_token(sender: Any, instance: Token, **kwargs: Any) -> None:
    CachedTokenAuthentication._cache.pop(instance.key, None)


def _forget_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    CachedTokenAuthentication.forget_user(instance.pk)


post_delete.connect(_forget_token, sender=Token, dispatch_uid="fsml-forget-token")
post_save.connect(_forget_user, sender=get_user_model(), dispatch_uid="fsml-forget-user")
