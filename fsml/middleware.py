"""A database outage answered as one: 503 with Retry-After, JSON for API callers and a page for people, instead of
the 500 page the error would otherwise reach."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
DETAIL = "database unavailable: the server cannot reach its database just now; try again in a moment"


def wants_json(request: HttpRequest) -> bool:
    """API callers: a path under /api/, or an Accept header that prefers JSON to HTML."""
    if request.path.startswith("/api/"):
        return True
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The 503 for a request that failed because the database could not be reached or was lost mid-request."""
    log.error("database unavailable for %s %s: %s", request.method, request.path, exc)
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse({"detail": DETAIL}, status=503)
    else:
        # Rendered without the request: context processors (the project switcher, the user) read the database.
        page = loader.get_template("503.html").render({"retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Turns OperationalError and InterfaceError from a view or its template (MariaDB down, restarting, the
    connection lost) into ``database_unavailable``'s 503. DRF re-raises them, so API views come here too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            return database_unavailable(request, exception)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: a database error raised outside any view (a middleware reading the session or saving it on
    the way out) is an outage too, answered with the same 503; any other error gets the 500 page."""
    exception = sys.exc_info()[1]
    if isinstance(exception, OperationalError | InterfaceError):
        return database_unavailable(request, exception)
    return defaults.server_error(request)
