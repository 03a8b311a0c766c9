"""Test settings: the real MariaDB and Redis by default (override with DATABASE_URL / CELERY_BROKER_URL)."""

from __future__ import annotations

import os
import tempfile

# Child processes (crawler, web, worker) inherit these through the environment.
os.environ.setdefault("FSML_HOME", tempfile.mkdtemp(prefix="fsml-test-"))
os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/fsml")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("FSML_CRAWL_REDIS_URL", "redis://127.0.0.1:6379/14")

from fsml.settings.base import *  # noqa: E402,F403 -- settings modules extend the base namespace

DEBUG = False
SECRET_KEY = "fsml-test-only"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
