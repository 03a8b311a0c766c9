"""A database error raised outside any view (by a middleware, before or after the view) is answered as the outage
it is, a 503 with Retry-After, through ``handler500``; other errors there still get the 500 page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.test import Client

pytestmark = pytest.mark.django_db


class FailingMiddleware:
    """Stands for a middleware whose own database read fails (the session store, the lockout check)."""

    error: Exception = OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1' (111)")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raise self.error


@pytest.fixture
def failing(settings: Any) -> type[FailingMiddleware]:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.FailingMiddleware"]
    return FailingMiddleware


def test_a_database_error_in_a_middleware_is_a_503(failing: type[FailingMiddleware]) -> None:
    client = Client(raise_request_exception=False)
    api = client.get("/api/projects/")
    assert api.status_code == 503 and api["Retry-After"] == "30"
    assert api.json()["detail"].startswith("database unavailable")
    page = client.get("/", HTTP_ACCEPT="text/html")
    assert page.status_code == 503 and "fsml is briefly unavailable" in page.content.decode()


def test_another_error_in_a_middleware_is_still_a_500(
    failing: type[FailingMiddleware], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failing, "error", RuntimeError("a bug"))
    page = Client(raise_request_exception=False).get("/", HTTP_ACCEPT="text/html")
    assert page.status_code == 500 and "Something went wrong on the server" in page.content.decode()
