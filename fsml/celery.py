"""The Celery app. Workers run ``celery -A fsml worker``; configuration comes from Django settings."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fsml.settings.local")

app = Celery("fsml")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["serving", "annotation"])
