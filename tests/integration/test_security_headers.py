"""Security headers on pages and API answers: Content-Security-Policy without inline script, nosniff,
Referrer-Policy, and HSTS under the production settings; no template has an inline script or event handler."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
APPS = ["annotation", "serving", "evaluation", "crawler", "datastore", "deploy", "fsml"]


def directives(header: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def assert_headers(response: object) -> dict[str, list[str]]:
    assert response["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]
    assert response["Referrer-Policy"] == "same-origin"  # type: ignore[index]
    policy = directives(response["Content-Security-Policy"])  # type: ignore[index]
    script = policy["script-src"]
    assert "'self'" in script and "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    return policy


def test_an_html_page_and_an_api_answer_carry_the_headers() -> None:
    client = Client()
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert_headers(page)
    user = get_user_model().objects.create(username="svc")
    api = client.get("/api/jobs/", HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert api["Content-Type"] == "application/json"
    assert_headers(api)
    assert_headers(client.get("/api/jobs/"))  # a 401 too
    assert "Strict-Transport-Security" not in page  # HSTS only in production, only over HTTPS


def test_the_api_docs_init_script_runs_by_nonce() -> None:
    client = Client()
    client.force_login(get_user_model().objects.create(username="ann"))
    for path in ("/api/docs/", "/api/redoc/"):
        response = client.get(path)
        policy = assert_headers(response)
        nonces = [v for v in policy["script-src"] if v.startswith("'nonce-")]
        assert len(nonces) == 1, policy
        body = response.content.decode()
        inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", body)
        assert inline and all(f'nonce="{nonces[0][7:-1]}"' in attrs for attrs in inline), (path, inline)
    other = client.get("/api/docs/")  # a new nonce for every response
    assert directives(other["Content-Security-Policy"])["script-src"] != policy["script-src"]


def production_settings(**env: str) -> dict[str, str]:
    """HSTS settings as a production process reads them (a new interpreter, so the module is read afresh)."""
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
        "s.SECURE_CONTENT_TYPE_NOSNIFF, s.SECURE_REFERRER_POLICY)"
    )
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fsml.settings.production",
        "SECRET_KEY": "k" * 40,
        "FSML_METRICS_OPEN": "1",
        **env,
    }
    environ.pop("DEBUG", None)
    proc = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return dict(zip(["seconds", "subdomains", "preload", "nosniff", "referrer"], proc.stdout.split(), strict=True))


def test_production_sends_hsts_for_a_year_and_reads_its_settings() -> None:
    assert production_settings() == {
        "seconds": "31536000", "subdomains": "False", "preload": "False", "nosniff": "True", "referrer": "same-origin",
    }  # fmt: skip
    tuned = production_settings(FSML_HSTS_SECONDS="600", FSML_HSTS_INCLUDE_SUBDOMAINS="1")
    assert tuned["seconds"] == "600" and tuned["subdomains"] == "True"


@override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True)
def test_hsts_goes_out_over_https_with_the_production_values() -> None:
    client = Client()
    assert client.get("/accounts/login/", secure=True)["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains"
    )
    assert "Strict-Transport-Security" not in client.get("/accounts/login/")  # never over plain HTTP


def test_no_template_has_an_inline_script_or_event_handler() -> None:
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.html"):
            if "node_modules" in path.parts:
                continue
            text = path.read_text()
            for match in re.finditer(r"<script\b([^>]*)>", text):
                attrs = match.group(1)
                if "src=" not in attrs and "nonce=" not in attrs and "application/json" not in attrs:
                    found.append(f"{path.relative_to(ROOT)}: <script{attrs}>")
            for match in re.finditer(r"<[a-zA-Z][^>]*\s(on[a-z]+)\s*=", text):
                found.append(f"{path.relative_to(ROOT)}: {match.group(1)}=")
            if "javascript:" in text:
                found.append(f"{path.relative_to(ROOT)}: javascript: URL")
    assert found == []
