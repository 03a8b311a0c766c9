"""Production: refuses to start with unsafe settings."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from fsml.settings.base import *  # noqa: F403 -- settings modules extend the base namespace
from fsml.settings.base import (
    FSML_JOB_LEASE_SECONDS,
    INFERENCE_TASK_TIME_LIMIT,
    SECRET_KEY,
    env_bool,
    require_secret_key,
)

if env_bool("DEBUG", False):
    raise ImproperlyConfigured(
        "DEBUG must be off with fsml.settings.production (it shows settings and code to anyone who gets an error "
        "page); debug with fsml.settings.local"
    )
DEBUG = False
require_secret_key(DEBUG, SECRET_KEY)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
if FSML_JOB_LEASE_SECONDS <= INFERENCE_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"FSML_JOB_LEASE_SECONDS must be over the inference task's time limit ({INFERENCE_TASK_TIME_LIMIT} s), or "
        "the jobs of a worker still running them are put back and run twice"
    )
