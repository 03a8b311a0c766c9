"""Settings parsing, in this process: numbers, booleans and lists from the environment, the database URL, and what
the local and production settings refuse at start (each read afresh under the environment a test gives)."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from fsml.settings.base import database_config, env_bool, env_list, env_number, require_secret_key


def settings_of(module: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """The names settings ``module`` defines when read under ``env``, with SECRET_KEY and DEBUG unset unless given.

    The base settings, which read the environment, are read again too; the modules this process started with are
    left as they were.
    """
    for name in ("SECRET_KEY", "DEBUG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.find_spec("fsml.settings.base")
    assert spec is not None and spec.loader is not None
    base = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(base)
    monkeypatch.setitem(sys.modules, "fsml.settings.base", base)  # what `from fsml.settings.base import` reads
    return runpy.run_module(module)


def test_a_number_is_read_or_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FSML_TEST_NUMBER", raising=False)
    assert env_number("FSML_TEST_NUMBER", 32, minimum=1) == 32
    for raw, value in (("8", 8.0), (" 2.5 ", 2.5), ("", 32)):
        monkeypatch.setenv("FSML_TEST_NUMBER", raw)
        assert env_number("FSML_TEST_NUMBER", 32, minimum=1) == value, raw
    for raw in ("lots", "0", "nan", "-1", "inf-ish"):
        monkeypatch.setenv("FSML_TEST_NUMBER", raw)
        with pytest.raises(ImproperlyConfigured, match=f"FSML_TEST_NUMBER={raw!r}: expected a number of at least 1"):
            env_number("FSML_TEST_NUMBER", 32, minimum=1)


def test_booleans_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, value in (("1", True), ("yes", True), (" On ", True), ("0", False), ("off", False), ("", True)):
        monkeypatch.setenv("FSML_TEST_FLAG", raw)
        assert env_bool("FSML_TEST_FLAG", True) is value, raw
    monkeypatch.setenv("FSML_TEST_LIST", " a, b ,,c ")
    assert env_list("FSML_TEST_LIST", "") == ["a", "b", "c"]
    monkeypatch.delenv("FSML_TEST_LIST")
    assert env_list("FSML_TEST_LIST", "localhost,127.0.0.1") == ["localhost", "127.0.0.1"]


def test_a_secret_key_is_required_whenever_debug_is_off() -> None:
    for key in ("", "short"):
        with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
            require_secret_key(False, key)
    require_secret_key(False, "x" * 32)
    require_secret_key(True, "")  # DEBUG on: the local settings give a development key


def test_database_url_selects_engine_and_options() -> None:
    sqlite = database_config("sqlite:////tmp/x.sqlite3")
    assert sqlite["ENGINE"].endswith("sqlite3")
    assert "journal_mode=WAL" in sqlite["OPTIONS"]["init_command"]
    mysql = database_config("mysql://u:p@db.example:3307/fsml")
    assert mysql["ENGINE"].endswith("mysql")
    assert (mysql["HOST"], mysql["PORT"], mysql["NAME"]) == ("db.example", 3307, "fsml")
    assert mysql["OPTIONS"]["charset"] == "utf8mb4"


def test_production_refuses_a_missing_or_short_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ({}, {"SECRET_KEY": "short"}):
        with monkeypatch.context() as patch, pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
            settings_of("fsml.settings.production", patch, **env)


def test_production_refuses_debug_and_a_lease_the_task_can_outlast(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "x" * 50
    debug = "DEBUG must be off with fsml.settings.production"
    with monkeypatch.context() as patch, pytest.raises(ImproperlyConfigured, match=debug):
        settings_of("fsml.settings.production", patch, SECRET_KEY=key, DEBUG="1")
    limit = "FSML_JOB_LEASE_SECONDS must be over the inference task's time limit \\(60 s\\)"
    with monkeypatch.context() as patch, pytest.raises(ImproperlyConfigured, match=limit):
        settings_of("fsml.settings.production", patch, SECRET_KEY=key, FSML_JOB_LEASE_SECONDS="60")


def test_production_starts_with_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = {"FSML_METRICS_TOKEN": "m" * 32}  # production also needs one (tests/unit/test_metrics_settings.py)
    production = settings_of("fsml.settings.production", monkeypatch, SECRET_KEY="x" * 50, **metrics)
    assert production["DEBUG"] is False and production["SECRET_KEY"] == "x" * 50
    assert production["SESSION_COOKIE_SECURE"] and production["CSRF_COOKIE_SECURE"]


def test_local_settings_refuse_debug_off_without_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch, pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
        settings_of("fsml.settings.local", patch, DEBUG="0")
    local = settings_of("fsml.settings.local", monkeypatch)
    assert local["DEBUG"] is True and local["SECRET_KEY"], "DEBUG on: a development key"


def test_a_malformed_serving_number_is_refused_at_start_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("FSML_BATCH_MAX", "lots"), ("FSML_BATCH_MAX", "0"), ("FSML_JOB_LEASE_SECONDS", "nan")):
        refusal = f"{name}={value!r}: expected a number of at least 1"
        with monkeypatch.context() as patch, pytest.raises(ImproperlyConfigured, match=refusal):
            settings_of("fsml.settings.local", patch, **{name: value})
    assert settings_of("fsml.settings.local", monkeypatch, FSML_BATCH_MAX="8")["FSML_BATCH_MAX"] == 8
