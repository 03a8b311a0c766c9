"""Production: refuses to start with unsafe settings."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from fsml.settings.base import *  # noqa: F403 -- settings modules extend the base namespace
from fsml.settings.base import (
    CALLBACK_TASK_TIME_LIMIT,
    CELERY_BROKER_TRANSPORT_OPTIONS,
    FSML_JOB_LEASE_SECONDS,
    FSML_METRICS_OPEN,
    FSML_METRICS_TOKEN,
    INFERENCE_TASK_TIME_LIMIT,
    PROJECT_JOB_TIME_LIMIT,
    SECRET_KEY,
    env_bool,
    env_number,
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
# HSTS on every HTTPS response (SecurityMiddleware sends it only over HTTPS): a year by default, 0 turns it off.
SECURE_HSTS_SECONDS = int(env_number("FSML_HSTS_SECONDS", 365 * 24 * 3600))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("FSML_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("FSML_HSTS_PRELOAD", False)
if FSML_JOB_LEASE_SECONDS <= INFERENCE_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"FSML_JOB_LEASE_SECONDS must be over the inference task's time limit ({INFERENCE_TASK_TIME_LIMIT} s), or "
        "the jobs of a worker still running them are put back and run twice"
    )
_LONGEST_TASK = max(INFERENCE_TASK_TIME_LIMIT, CALLBACK_TASK_TIME_LIMIT, PROJECT_JOB_TIME_LIMIT)
if CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", _LONGEST_TASK + 1) <= _LONGEST_TASK:
    raise ImproperlyConfigured(
        f"FSML_BROKER_VISIBILITY_TIMEOUT must be over the longest task time limit ({_LONGEST_TASK:g} s: "
        "FSML_PROJECT_JOB_TIME_LIMIT, or the inference task's), or Redis hands a task still running to a second worker"
    )
if (FSML_METRICS_OPEN and FSML_METRICS_TOKEN) or not (FSML_METRICS_OPEN or len(FSML_METRICS_TOKEN) >= 24):
    raise ImproperlyConfigured(
        "set FSML_METRICS_TOKEN to a random string of at least 24 characters (Prometheus sends it as a bearer "
        "token to /metrics), or FSML_METRICS_OPEN=1 without a token where the metrics ports are guarded elsewhere"
    )
