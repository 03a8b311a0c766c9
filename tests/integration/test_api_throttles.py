"""API throttles against MariaDB and the Redis cache: failed token look-ups per address end in 429 with
Retry-After, valid tokens are never throttled at the default settings, and anonymous calls are throttled."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from deploy.processes import free_port
from fsml.auth import TokenFailureThrottle

pytestmark = pytest.mark.django_db

ADDRESSES = ["127.0.0.1", "10.1.2.3", "10.1.2.4"]


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    """Throttle counts of the addresses these tests use, cleared before and after (the cache is shared Redis)."""
    keys = [f"throttle_{scope}_{ip}" for scope in ("token_failure", "anon") for ip in ADDRESSES]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


def failure_limit() -> int:
    count, _, _ = str(api_settings.DEFAULT_THROTTLE_RATES["token_failure"]).partition("/")
    return int(count)


def test_the_cache_is_redis_so_every_web_process_counts_together() -> None:
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


def test_two_hundred_random_tokens_end_in_429_with_retry_after() -> None:
    client = APIClient()
    codes = []
    for _ in range(200):
        client.credentials(HTTP_AUTHORIZATION=f"Token {secrets.token_hex(20)}")
        response = client.get("/api/jobs/")
        codes.append(response.status_code)
    limit = failure_limit()
    assert codes[:limit] == [401] * limit
    assert set(codes[limit:]) == {429}
    assert 0 < int(response["Retry-After"]) <= 60
    assert "too many failed token look-ups" in response.json()["detail"]
    # Over the limit a valid token that is not cached yet is refused too: a guess that hits learns nothing.
    user = get_user_model().objects.create(username="svc")
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/jobs/").status_code == 429
    # Other addresses are not affected.
    other = APIClient(REMOTE_ADDR="10.1.2.3")
    other.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=user).key}")
    assert other.get("/api/jobs/").status_code != 429


def test_a_forged_forwarded_for_header_does_not_escape_the_count() -> None:
    client = APIClient()
    for i in range(failure_limit() + 5):
        client.credentials(HTTP_AUTHORIZATION=f"Token {secrets.token_hex(20)}", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
        last = client.get("/api/jobs/")
    assert last.status_code == 429


def test_valid_token_traffic_is_never_throttled_at_the_default_settings() -> None:
    user = get_user_model().objects.create(username="svc")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    codes = {client.get("/api/jobs/00000000-0000-0000-0000-000000000000/").status_code for _ in range(400)}
    assert 429 not in codes and codes == {404}
    # Failures from the same address after that leave the cached token working.
    bad = APIClient()
    for _ in range(failure_limit() + 3):
        bad.credentials(HTTP_AUTHORIZATION=f"Token {secrets.token_hex(20)}")
        bad.get("/api/jobs/")
    assert client.get("/api/jobs/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_the_throttle_costs_a_cached_token_no_cache_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    user = get_user_model().objects.create(username="svc")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.get("/api/jobs/00000000-0000-0000-0000-000000000000/")  # the token is now cached
    built: list[object] = []
    original = TokenFailureThrottle.__init__

    def counting(self: TokenFailureThrottle, request: object) -> None:
        built.append(request)
        original(self, request)  # type: ignore[arg-type]

    monkeypatch.setattr(TokenFailureThrottle, "__init__", counting)
    for _ in range(50):
        client.get("/api/jobs/00000000-0000-0000-0000-000000000000/")
    assert built == []


class Open(APIView):
    """An endpoint anyone may call, with the default throttles."""

    permission_classes = [AllowAny]

    def get(self, request: object) -> Response:
        return Response({"ok": True})


def test_anonymous_calls_are_throttled_per_address() -> None:
    count = int(str(api_settings.DEFAULT_THROTTLE_RATES["anon"]).partition("/")[0])
    view = Open.as_view()
    factory = APIRequestFactory()
    codes = [view(factory.get("/api/open/", REMOTE_ADDR="10.1.2.4")).status_code for _ in range(count + 5)]
    assert codes[:count] == [200] * count and set(codes[count:]) == {429}


def test_with_the_cache_down_failed_tokens_still_get_401_not_500() -> None:
    dead = free_port()  # nothing listens there
    down = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{dead}/0"}
    }
    with override_settings(CACHES=down):
        client = APIClient()
        for _ in range(failure_limit() + 5):
            client.credentials(HTTP_AUTHORIZATION=f"Token {secrets.token_hex(20)}")
            assert client.get("/api/jobs/").status_code == 401
