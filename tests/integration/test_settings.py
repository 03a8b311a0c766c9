"""The settings this suite runs under, and a production process that refuses to start without SECRET_KEY. How each
setting is read and refused is tested in this process in tests/unit/test_settings.py."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

from fsml.celery import app


def test_production_refuses_to_start_without_secret_key() -> None:
    """The refusal as an operator meets it: a new interpreter that sets up Django exits with the reason."""
    code = "import django; django.setup()"
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env["DJANGO_SETTINGS_MODULE"] = "fsml.settings.production"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "SECRET_KEY must be set" in proc.stderr


def test_the_suite_runs_on_mysql_and_redis_with_real_workers() -> None:
    # The integration tests claim the real services: fail loudly if the suite was pointed elsewhere.
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.mysql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    assert app.conf.task_always_eager is False
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1


def start_error(**env: str) -> str:
    """What a new interpreter that sets up Django under the suite's settings and ``env`` prints when it fails."""
    code = "import django; django.setup()"
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "fsml.settings.test", **env}
    proc = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    return proc.stderr


def test_a_bad_throttle_rate_or_cache_url_stops_the_process_with_its_name() -> None:
    assert "FSML_TOKEN_FAILURE_RATE='fast': expected a rate such as 20/minute" in start_error(
        FSML_TOKEN_FAILURE_RATE="fast"
    )
    assert "FSML_API_USER_RATE='0/minute'" in start_error(FSML_API_USER_RATE="0/minute")
    assert "FSML_CACHE_URL='memcached://x'" in start_error(FSML_CACHE_URL="memcached://x")
    assert "FSML_LOGIN_FAILURE_LIMIT='0'" in start_error(FSML_LOGIN_FAILURE_LIMIT="0")


def test_the_suite_counts_throttles_and_lockouts_where_every_process_sees_them() -> None:
    # Throttle counts in the broker's Redis (the gunicorn the system tests start shares them); lockouts in MariaDB.
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert settings.CACHES["default"]["LOCATION"] == settings.CELERY_BROKER_URL
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
