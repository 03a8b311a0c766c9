"""Test settings: the real MariaDB and Redis by default (override with DATABASE_URL / CELERY_BROKER_URL)."""

from __future__ import annotations

import os
import re
import tempfile

# Child processes (crawler, web, worker) inherit these through the environment.
os.environ.setdefault("FSML_HOME", tempfile.mkdtemp(prefix="fsml-test-"))
os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/fsml")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("FSML_CRAWL_REDIS_URL", "redis://127.0.0.1:6379/14")

# pytest-xdist's workers (gw0, gw1, ...) inherit the controller's environment: each gets a home and two Redis
# databases of its own (gw0 the ones above, gw1 the two below them, ...); pytest-django names their databases.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER and os.environ.get("FSML_TEST_WORKER") != _WORKER:
    _N = int(_WORKER.removeprefix("gw"))
    os.environ["FSML_TEST_WORKER"] = _WORKER  # once per worker, not again in its child processes
    os.environ["FSML_HOME"] = tempfile.mkdtemp(prefix=f"fsml-test-{_WORKER}-")
    for _KEY in ("CELERY_BROKER_URL", "FSML_CRAWL_REDIS_URL"):
        os.environ[_KEY] = re.sub(r"/(\d+)$", lambda m: f"/{int(m.group(1)) - 2 * _N}", os.environ[_KEY])

from fsml.settings.base import *  # noqa: E402,F403 -- settings modules extend the base namespace

DEBUG = False
SECRET_KEY = "fsml-test-only"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
