"""The broker's visibility timeout against the task time limits: set from ``FSML_BROKER_VISIBILITY_TIMEOUT`` for a
Redis broker, and refused by production at or under the longest task time limit, where Redis would hand a task
still running to a second worker."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.unit.test_settings import settings_of

PRODUCTION = {"SECRET_KEY": "x" * 50, "FSML_METRICS_TOKEN": "m" * 32, "CELERY_BROKER_URL": "redis://redis:6379/0"}
REFUSED = "FSML_BROKER_VISIBILITY_TIMEOUT must be over the longest task time limit"


def test_the_visibility_timeout_is_over_every_task_time_limit_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    production = settings_of("fsml.settings.production", monkeypatch, **PRODUCTION)
    longest = max(
        production["INFERENCE_TASK_TIME_LIMIT"],
        production["CALLBACK_TASK_TIME_LIMIT"],
        production["PROJECT_JOB_TIME_LIMIT"],
    )
    assert production["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"] == 7200 > longest


@pytest.mark.parametrize(
    ("env", "limit"),
    [
        ({"FSML_BROKER_VISIBILITY_TIMEOUT": "3600"}, "3600"),  # the project jobs' default time limit
        ({"FSML_BROKER_VISIBILITY_TIMEOUT": "7200", "FSML_PROJECT_JOB_TIME_LIMIT": "9000"}, "9000"),
        ({"FSML_BROKER_VISIBILITY_TIMEOUT": "61", "FSML_PROJECT_JOB_TIME_LIMIT": "60"}, None),  # over 60 s: starts
    ],
)
def test_production_refuses_a_visibility_timeout_a_task_can_outlast(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], limit: str | None
) -> None:
    if limit is None:
        production = settings_of("fsml.settings.production", monkeypatch, **(PRODUCTION | env))
        assert production["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"] == 61
        return
    with pytest.raises(ImproperlyConfigured, match=f"{REFUSED} \\({limit} s"):
        settings_of("fsml.settings.production", monkeypatch, **(PRODUCTION | env))


def test_a_malformed_visibility_timeout_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImproperlyConfigured, match="FSML_BROKER_VISIBILITY_TIMEOUT='soon'"):
        settings_of(
            "fsml.settings.local",
            monkeypatch,
            CELERY_BROKER_URL="redis://r:6379/0",
            **{"FSML_BROKER_VISIBILITY_TIMEOUT": "soon"},
        )
