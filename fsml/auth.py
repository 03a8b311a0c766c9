"""Token authentication with a short-lived in-process cache (its own module: DRF imports authentication
classes while ``rest_framework.views`` is still loading)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

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
            return super().authenticate_credentials(key)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
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


def _forget_token(sender: Any, instance: Token, **kwargs: Any) -> None:
    CachedTokenAuthentication._cache.pop(instance.key, None)


def _forget_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    CachedTokenAuthentication.forget_user(instance.pk)


post_delete.connect(_forget_token, sender=Token, dispatch_uid="fsml-forget-token")
post_save.connect(_forget_user, sender=get_user_model(), dispatch_uid="fsml-forget-user")
