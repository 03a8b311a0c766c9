"""The web's /metrics is Prometheus's: with FSML_METRICS_TOKEN set, only a request with that bearer token reads it;
without a token, only loopback clients do, unless FSML_METRICS_OPEN says the port is guarded elsewhere. Through
Django's full request stack on the real MariaDB (the metrics read the job table)."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

TOKEN = "prometheus-" + "s" * 32
FAMILY = b"# TYPE fsml_jobs gauge"


def scrape(remote: str = "127.0.0.1", authorization: str | None = None) -> tuple[int, bytes, str]:
    headers = {} if authorization is None else {"Authorization": authorization}
    res = Client(REMOTE_ADDR=remote).get("/metrics", headers=headers)
    return res.status_code, res.content, res.headers.get("WWW-Authenticate", "")


@override_settings(FSML_METRICS_TOKEN=TOKEN, FSML_METRICS_OPEN=False)
@pytest.mark.parametrize(
    "authorization", [None, "", f"Token {TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", "Bearer", "Basic abc"]
)
def test_with_a_token_set_every_scrape_without_it_is_401_even_from_loopback(db, authorization: str | None) -> None:
    status, body, challenge = scrape("127.0.0.1", authorization)
    assert status == 401, body
    assert FAMILY not in body and challenge == 'Bearer realm="metrics"'


@override_settings(FSML_METRICS_TOKEN=TOKEN, FSML_METRICS_OPEN=False)
@pytest.mark.parametrize("remote", ["127.0.0.1", "10.1.2.3", "2001:db8::1"])
def test_the_token_reads_the_metrics_from_anywhere(db, remote: str) -> None:
    for authorization in (f"Bearer {TOKEN}", f"bearer {TOKEN}"):
        status, body, _ = scrape(remote, authorization)
        assert status == 200 and FAMILY in body, body


@override_settings(FSML_METRICS_TOKEN="", FSML_METRICS_OPEN=False)
def test_without_a_token_only_loopback_clients_read_them(db) -> None:
    for remote in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        status, body, _ = scrape(remote)
        assert status == 200 and FAMILY in body, remote
    for remote in ("10.1.2.3", "172.17.0.1", "2001:db8::1", "::ffff:10.0.0.1", ""):
        status, body, _ = scrape(remote)
        assert status == 403 and b"set FSML_METRICS_TOKEN" in body, remote


@override_settings(FSML_METRICS_TOKEN="", FSML_METRICS_OPEN=True)
def test_the_explicit_opt_out_serves_anyone(db) -> None:
    status, body, _ = scrape("10.1.2.3")
    assert status == 200 and FAMILY in body


def test_health_endpoints_stay_open_to_probes(db) -> None:
    with override_settings(FSML_METRICS_TOKEN=TOKEN):
        for path in ("/healthz", "/readyz"):
            assert Client(REMOTE_ADDR="10.1.2.3").get(path).status_code == 200, path
