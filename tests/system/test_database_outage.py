"""A database outage as callers meet it: gunicorn whose DATABASE_URL points at a port where nothing listens answers
API callers with a JSON 503 and Retry-After, people with the 503 page, and /readyz with the reason; never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from deploy.processes import Service, free_port, wait_http, web_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """gunicorn with the test settings and no database behind DATABASE_URL; its base URL and log."""
    dead = free_port()  # bound and released: nothing listens there
    port = free_port()
    log = tmp_path_factory.mktemp("outage") / "web.log"
    env = {"DATABASE_URL": f"mysql://root@127.0.0.1:{dead}/fsml_gone", "DJANGO_SETTINGS_MODULE": "fsml.settings.test"}
    with Service("web", web_command("127.0.0.1", port, workers=1), log, env=env) as web:
        base = f"http://127.0.0.1:{port}"
        wait_http(web, f"{base}/healthz")
        yield base, log


def assert_json_503(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert "database unavailable" in response.json()["detail"]
    assert int(response.headers["Retry-After"]) > 0


def test_api_callers_get_a_json_503_with_retry_after(outage: tuple[str, Path]) -> None:
    base, _ = outage
    token = {"Authorization": "Token " + "a" * 40}
    assert_json_503(requests.get(f"{base}/api/jobs/", headers=token, timeout=30))
    assert_json_503(
        requests.post(f"{base}/api/jobs/", json={"model": "m", "input": {"text": "x"}}, headers=token, timeout=30)
    )
    assert_json_503(requests.get(f"{base}/api/projects/", cookies={"sessionid": "x" * 32}, timeout=30))
    # A page asked for as JSON is an API call too.
    assert_json_503(
        requests.get(f"{base}/", cookies={"sessionid": "x" * 32}, headers={"Accept": "application/json"}, timeout=30)
    )


def test_people_get_the_friendly_page(outage: tuple[str, Path]) -> None:
    base, _ = outage
    page = requests.get(f"{base}/", cookies={"sessionid": "x" * 32}, headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html")
    assert "fsml is briefly unavailable" in page.text and "cannot reach its database" in page.text
    assert int(page.headers["Retry-After"]) > 0
    # Signing in reads the database too (the lockout's attempts, then the user).
    http = requests.Session()
    form = http.get(f"{base}/accounts/login/", timeout=30)
    assert form.status_code == 200  # the form itself needs no database
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert csrf is not None
    sign_in = http.post(
        f"{base}/accounts/login/",
        data={"csrfmiddlewaretoken": csrf.group(1), "username": "ann", "password": "pw"},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=30,
    )
    assert sign_in.status_code == 503 and "fsml is briefly unavailable" in sign_in.text


def test_readyz_says_why(outage: tuple[str, Path]) -> None:
    base, log = outage
    ready = requests.get(f"{base}/readyz", timeout=30)
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable" and body["database"] == "unreachable"
    assert body["reason"].startswith("cannot connect to the database server") and "(error 200" in body["reason"]
    assert "127.0.0.1" not in body["reason"]  # where the database lives stays in the log
    access = log.read_text()  # gunicorn's access log: requests ended in 503, none in a server error
    assert '" 503 ' in access and '" 500 ' not in access
