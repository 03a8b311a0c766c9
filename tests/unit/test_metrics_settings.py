"""Who may scrape /metrics, as the settings say: production refuses to start with neither a metrics token nor
the explicit FSML_METRICS_OPEN, or with both; development serves loopback clients without one."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.unit.test_settings import settings_of

KEY = "x" * 50
REFUSED = "set FSML_METRICS_TOKEN to a random string of at least 24 characters"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"FSML_METRICS_TOKEN": "short"},
        {"FSML_METRICS_TOKEN": "   "},
        {"FSML_METRICS_OPEN": "0"},
        {"FSML_METRICS_TOKEN": "t" * 32, "FSML_METRICS_OPEN": "1"},  # which one is meant? say so
    ],
)
def test_production_refuses_metrics_anyone_may_read(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("FSML_METRICS_TOKEN", "FSML_METRICS_OPEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ImproperlyConfigured, match=REFUSED):
        settings_of("fsml.settings.production", monkeypatch, SECRET_KEY=KEY, **env)


@pytest.mark.parametrize(
    ("env", "token", "open_"),
    [({"FSML_METRICS_TOKEN": " " + "t" * 32 + "\n"}, "t" * 32, False), ({"FSML_METRICS_OPEN": "1"}, "", True)],
)
def test_production_starts_with_a_token_or_the_explicit_opt_out(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], token: str, open_: bool
) -> None:
    for name in ("FSML_METRICS_TOKEN", "FSML_METRICS_OPEN"):
        monkeypatch.delenv(name, raising=False)
    production = settings_of("fsml.settings.production", monkeypatch, SECRET_KEY=KEY, **env)
    assert (production["FSML_METRICS_TOKEN"], production["FSML_METRICS_OPEN"]) == (token, open_)


def test_development_needs_neither(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FSML_METRICS_TOKEN", "FSML_METRICS_OPEN"):
        monkeypatch.delenv(name, raising=False)
    local = settings_of("fsml.settings.local", monkeypatch, DEBUG="1")
    assert (local["FSML_METRICS_TOKEN"], local["FSML_METRICS_OPEN"]) == ("", False)
