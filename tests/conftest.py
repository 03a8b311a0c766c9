"""Fixtures for tests against the real MariaDB, Redis, Celery workers, gunicorn and Chromium.

Processes that tests can share are started once: gunicorn once per session, Chromium once per module, and a
worker once for each run of consecutive tests that ask for one under the same environment. The data each test
commits (``live_env``) is still its own: it is deleted after the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from deploy.processes import Service, free_port, wait_http, web_command
from tests.browser_support import BUILT_APP, CHROMIUM, CHROMIUM_ARGS
from tests.processes import MODEL, SharedService, start_worker

WORKERS = pytest.StashKey[SharedService]()


def database_url_of(connection: Any) -> str:
    """DATABASE_URL of the test database pytest-django created, for child processes."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"mysql://{auth}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 3306}/{conf['NAME']}"


@pytest.fixture(scope="session")
def child_env(django_db_setup: None) -> dict[str, str]:
    """The environment under which child processes use the test database (named once pytest-django made it)."""
    return {
        "DATABASE_URL": database_url_of(connection),
        "DJANGO_SETTINGS_MODULE": "fsml.settings.test",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "FSML_HOME": str(settings.FSML_HOME),
    }


@pytest.fixture
def live_env(transactional_db: None, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Committed data, deleted after the test, and ``child_env`` in this process's environment, so the processes a
    test starts itself use the test database too."""
    for key, value in child_env.items():
        monkeypatch.setenv(key, value)
    return dict(child_env)


@pytest.fixture
def service_client(live_env: dict[str, str]) -> Any:
    """An API client with the token of a backend service's user."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = get_user_model().objects.create(username="backend")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def clean_broker() -> None:
    """Empty the test Redis database so no message from an earlier test is delivered."""
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture(scope="session")
def worker_pool(
    child_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[SharedService]:
    """The worker that ``celery_worker`` hands out; stopped before any test that does not ask for one."""

    def start(env: dict[str, str]) -> Service:
        return start_worker(tmp_path_factory.mktemp("worker"), "test", queues="inference,callbacks,projects", **env)

    pool = SharedService(start)
    pytestconfig.stash[WORKERS] = pool
    try:
        yield pool
    finally:
        pool.stop()
        del pytestconfig.stash[WORKERS]


@pytest.fixture
def celery_worker(worker_pool: SharedService, live_env: dict[str, str], clean_broker: None) -> Service:
    """A real ``celery worker`` process (prefork) consuming the test broker, named ``test-PID@host``.

    Consecutive tests share it while their environment is the same; a test that sets a variable first (as
    ``FSML_CALLBACK_SECRET``) gets a worker started under it.
    """
    return worker_pool.get(os.environ)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared worker before a test that does not ask for one: it would take that test's jobs."""
    pool = item.config.stash.get(WORKERS, None)
    if pool is not None and "celery_worker" not in getattr(nextitem, "fixturenames", ()):
        pool.stop()


@pytest.fixture(scope="session")
def model_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """A small real model, trained, exported to ONNX and packaged once per session."""
    from tests.helpers import build_model_archive  # imports torch and training: only for the tests that train

    return build_model_archive(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def second_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """A second real model, trained for one epoch: its scores differ from the session model's."""
    from tests.helpers import build_model_archive  # imports torch and training: only for the tests that train

    return build_model_archive(tmp_path_factory.mktemp("second"), epochs=1)


@pytest.fixture
def registered_model(db: None, model_archive: tuple[Path, str, dict]) -> Any:
    """The session's model registered as ``MODEL`` version 1."""
    from datastore import services

    archive, sha, manifest = model_archive
    return services.register_model_version(MODEL, "text_classification", str(archive), sha, manifest, None, version=1)


@pytest.fixture(scope="session")
def web_server(child_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    """gunicorn on a free port, using the test database, for the whole session; yields it and its base URL."""
    if not BUILT_APP.is_file():
        pytest.fail(f"{BUILT_APP} is missing: run `npm ci && npm run build` in annotation/frontend")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("web") / "web.log"
    with Service("web", web_command("127.0.0.1", port, workers=2), log, env=child_env) as web:
        wait_http(web, f"{base}/readyz")
        yield web, base


@pytest.fixture
def server(web_server: tuple[Service, str], live_env: dict[str, str]) -> str:
    """The session's gunicorn, serving this test's committed data; its base URL."""
    web, base = web_server
    web.check_alive()
    return base


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Chromium (Debian's, driven by Playwright), shared by the tests of a module."""
    from playwright.sync_api import sync_playwright  # only the browser tests need Playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as pw:
        # Playwright's sync API keeps an asyncio loop on this thread while it runs; the tests' ORM calls (and the
        # database flush after each test) are still sync.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser(chromium: Any, server: str) -> Iterator[Any]:
    """The module's Chromium for a test against ``server``; the contexts (logins) the test opened are closed after
    it, before its data is deleted."""
    yield chromium
    for context in chromium.contexts:
        context.close()
