"""Settings come from the environment; production refuses unsafe ones; Celery is never eager."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

from fsml.settings.base import database_config


def _import_settings(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    full_env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    full_env.update(DJANGO_SETTINGS_MODULE=module, **env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=60)


def test_production_refuses_to_start_without_secret_key() -> None:
    proc = _import_settings("fsml.settings.production")
    assert proc.returncode != 0
    assert "SECRET_KEY must be set" in proc.stderr


def test_production_refuses_a_short_secret_key() -> None:
    proc = _import_settings("fsml.settings.production", SECRET_KEY="short")
    assert proc.returncode != 0
    assert "SECRET_KEY must be set" in proc.stderr


def test_local_settings_refuse_debug_off_without_secret_key() -> None:
    proc = _import_settings("fsml.settings.local", DEBUG="0")
    assert proc.returncode != 0
    assert "SECRET_KEY must be set" in proc.stderr
    assert _import_settings("fsml.settings.local").returncode == 0  # DEBUG on: a development key


def test_production_refuses_debug_and_a_lease_the_task_can_outlast() -> None:
    debug = _import_settings("fsml.settings.production", SECRET_KEY="x" * 50, DEBUG="1")
    assert debug.returncode != 0 and "DEBUG must be off with fsml.settings.production" in debug.stderr
    short = _import_settings("fsml.settings.production", SECRET_KEY="x" * 50, FSML_JOB_LEASE_SECONDS="60")
    assert short.returncode != 0
    assert "FSML_JOB_LEASE_SECONDS must be over the inference task's time limit (60 s)" in short.stderr


def test_a_malformed_serving_number_is_refused_at_start_by_name() -> None:
    for name, value in (("FSML_BATCH_MAX", "lots"), ("FSML_BATCH_MAX", "0"), ("FSML_JOB_LEASE_SECONDS", "nan")):
        proc = _import_settings("fsml.settings.local", **{name: value})
        assert proc.returncode != 0, (name, value)
        assert f"{name}={value!r}: expected a number of at least 1" in proc.stderr, proc.stderr[-500:]
    assert _import_settings("fsml.settings.local", FSML_BATCH_MAX="8").returncode == 0


def test_production_starts_with_a_secret_key() -> None:
    proc = _import_settings("fsml.settings.production", SECRET_KEY="x" * 50)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_database_url_selects_engine_and_options() -> None:
    sqlite = database_config("sqlite:////tmp/x.sqlite3")
    assert sqlite["ENGINE"].endswith("sqlite3")
    assert "journal_mode=WAL" in sqlite["OPTIONS"]["init_command"]
    mysql = database_config("mysql://u:p@db.example:3307/fsml")
    assert mysql["ENGINE"].endswith("mysql")
    assert (mysql["HOST"], mysql["PORT"], mysql["NAME"]) == ("db.example", 3307, "fsml")
    assert mysql["OPTIONS"]["charset"] == "utf8mb4"


def test_the_suite_runs_on_mysql_and_redis_with_real_workers() -> None:
    # The integration tests claim the real services: fail loudly if the suite was pointed elsewhere.
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.mysql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    from fsml.celery import app

    assert app.conf.task_always_eager is False
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
