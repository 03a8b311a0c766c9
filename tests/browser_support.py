"""Helpers of the browser tests: accounts, logins, stored items, screenshots. The ``server`` and ``browser``
fixtures are in conftest.py."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token

from datastore import services as datastore_services
from datastore.models import CrawlJob, Item

ARTIFACTS = Path(__file__).parent / "artifacts"
BUILT_APP = Path(__file__).resolve().parents[1] / "annotation" / "static" / "annotation" / "app" / "app.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "browser-test-pw"


@contextmanager
def screenshot_on_failure(page: Any, request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep a full-page screenshot in tests/artifacts/<test name>.png when the body fails."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        raise


def snapshot(page: Any, name: str) -> None:
    """Save a screenshot for a person to look at, when FSML_BROWSER_SCREENSHOTS is set."""
    if os.environ.get("FSML_BROWSER_SCREENSHOTS"):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def user(name: str) -> Any:
    account = get_user_model().objects.create(username=name)
    account.set_password(PASSWORD)
    account.save()
    return account


def login(browser: Any, base: str, username: str, path: str) -> Any:
    """A new browser context logged in as ``username``, on ``path``."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/accounts/login/?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")
    return page


def store(rows: list[dict[str, Any]]) -> list[Item]:
    """Store items through the crawler's storage service; returns them in the given order."""
    source = datastore_services.get_or_create_source("browser", "http://example.test/")
    job = CrawlJob.objects.create(source=source, spider="site")
    now = timezone.now()
    for i, row in enumerate(rows):  # one at a time: a batch is stored in URL-hash order, not given order
        url = f"http://example.test/{job.pk}/{i}"
        result = datastore_services.store_items(job, [{"url": url, "canonical_url": url, "fetched_at": now, **row}])
        assert not result.failed, result.failed
    return list(Item.objects.filter(crawl_job=job).order_by("id"))


def texts(*values: str) -> list[Item]:
    return store([{"text": t} for t in values])


def images(folder: Path, colours: dict[str, tuple[int, int, int]]) -> list[Item]:
    """One stored 64x48 PNG item of each colour, without text, in the given order."""
    from PIL import Image

    rows = []
    for name, colour in colours.items():
        path = folder / f"{name}.png"
        Image.new("RGB", (64, 48), colour).save(path)
        rows.append({"text": "", "image": str(path), "content_hash": hashlib.sha256(path.read_bytes()).hexdigest()})
    return store(rows)


def api_session(account: Any) -> requests.Session:
    """A REST client authenticated with a token of ``account``."""
    http = requests.Session()
    http.headers["Authorization"] = f"Token {Token.objects.get_or_create(user=account)[0].key}"
    return http


def annotate_by_api(base: str, project_id: int, answers: dict[Any, list[Any]]) -> None:
    """Each account takes its next tasks in turn and answers them with its values, through the REST API."""
    for account, values in answers.items():
        with api_session(account) as http:
            for value in values:
                task = http.post(f"{base}/api/projects/{project_id}/next/", timeout=30).json()
                res = http.post(f"{base}/api/tasks/{task['id']}/annotations/", json={"value": value}, timeout=30)
                assert res.status_code == 201, res.text


def expect_task(page: Any, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("task-text")).to_have_text(text)


def invite(manager: Any, server: str, username: str, role: str = "annotator") -> str:
    """On the team page the manager is on: create ``username``'s account with ``role``; returns the invitation
    (set-password) link the page shows."""
    from playwright.sync_api import expect

    manager.fill("#id_username", username)
    manager.fill("#id_email", f"{username}@example.test")
    manager.select_option("#id_role", role)
    manager.click("[data-testid=create-account-form] button[type=submit]")
    expect(manager.get_by_test_id("messages")).to_contain_text(f"Created {username} ({role})")
    link: str = manager.get_by_test_id("invite-url").input_value()
    assert re.fullmatch(rf"{server}/accounts/reset/[\w-]+/[\w-]+/", link), link
    return link


def set_password(page: Any, password: str) -> None:
    """On an invitation link's page: set ``password`` (twice) and see it accepted."""
    from playwright.sync_api import expect

    page.fill("#id_new_password1", password)
    page.fill("#id_new_password2", password)
    page.click("[data-testid=set-password-form] button[type=submit]")
    expect(page.get_by_test_id("password-set")).to_be_visible()


def sign_in_from_password_set(page: Any, server: str, username: str, password: str) -> None:
    """From the "password set" page: follow its sign-in link and sign in; lands on the home page."""
    page.get_by_role("link", name="Sign in").click()
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
