"""WSGI entry point for gunicorn: ``gunicorn fsml.wsgi``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fsml.settings.local")
application = get_wsgi_application()
