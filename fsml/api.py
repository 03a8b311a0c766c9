"""How the API turns domain errors into responses: one place instead of a try/except in every view."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotation.services import AnnotationError
from datastore.services.registry import RegistryError
from serving.web.checks import JobError


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for a URL no view matches (``handler404``): JSON under ``/api/``, where callers read JSON
    (a path parameter that is not a number, say), the site's page elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": "no such API resource"}, status=404)
    return defaults.page_not_found(request, exception)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Annotation, job and registry errors carry their HTTP status and reason; the rest is DRF's to handle."""
    if isinstance(exc, AnnotationError):
        body = {"detail": exc.reason, "task": exc.task_id} | ({"errors": exc.errors} if exc.errors else {})
        return Response(body, status=exc.status)
    if isinstance(exc, JobError):
        return Response({"detail": exc.reason, "field": exc.field}, status=exc.status)
    if isinstance(exc, RegistryError):
        return Response({"detail": exc.reason}, status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"detail": f"request body larger than {limit} bytes"}, status=413)
    return drf_exception_handler(exc, context)
