"""Fixtures for tests against the real MariaDB, Redis, Celery workers and Scrapy crawls."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings


def database_url_of(connection: Any) -> str:
    """DATABASE_URL of the test database pytest-django created, for child processes."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"mysql://{auth}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 3306}/{conf['NAME']}"


@pytest.fixture
def live_env(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Committed data plus an environment under which child processes use the test database."""
    from django.db import connection

    env = {
        "DATABASE_URL": database_url_of(connection),
        "DJANGO_SETTINGS_MODULE": "fsml.settings.test",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "FSML_HOME": str(settings.FSML_HOME),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


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


@pytest.fixture
def celery_worker(live_env: dict[str, str], clean_broker: None, tmp_path: Path) -> Iterator[Any]:
    """A real ``celery worker`` process (prefork) consuming the test broker."""
    from deploy.processes import Service, wait_log, worker_command

    worker = Service("worker", worker_command(concurrency=1, name=f"test-{os.getpid()}@%h"), tmp_path / "worker.log")
    with worker:
        wait_log(worker, "ready.", timeout=90)
        yield worker


def child_pids(pid: int) -> set[int]:
    """Direct children of a process, read from /proc."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.add(int(entry.name))
    return children


@pytest.fixture(scope="session")
def model_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """A small real model, trained, exported to ONNX and packaged once per session."""
    from tests.helpers import build_model_archive

    return build_model_archive(tmp_path_factory.mktemp("model"))


@pytest.fixture
def registered_model(db: None, model_archive: tuple[Path, str, dict]) -> Any:
    from datastore import services

    archive, sha, manifest = model_archive
    return services.register_model_version(
        "sentiment-test", "text_classification", str(archive), sha, manifest, None, version=1
    )


@pytest.fixture
def server(live_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """gunicorn on a free port, using the test database; yields its base URL."""
    from deploy.processes import Service, free_port, wait_http, web_command
    from tests.browser_support import BUILT_APP

    if not BUILT_APP.is_file():
        pytest.fail(f"{BUILT_APP} is missing: run `npm ci && npm run build` in annotation/frontend")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Service("web", web_command("127.0.0.1", port, workers=2), tmp_path / "web.log") as web:
        wait_http(web, f"{base}/readyz")
        # Playwright's sync API keeps an asyncio loop on this thread; the test's ORM calls are still sync.
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield base


@pytest.fixture
def browser(server: str) -> Iterator[Any]:
    """Headless Chromium (Debian's, driven by Playwright) for tests against ``server``."""
    from playwright.sync_api import sync_playwright

    from tests.browser_support import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
