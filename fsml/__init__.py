"""The one Django project of fsml: settings, URLs, WSGI and the Celery app."""

from __future__ import annotations

from fsml.celery import app as celery_app

__all__ = ["celery_app"]
