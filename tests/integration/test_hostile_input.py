"""Hostile input gets a 4xx with a reason, never a 500: JSON nested too deep and lone UTF-16 surrogates on every
JSON endpoint (one parser, ``fsml.api.StrictJSONParser``), a job whose inputs the database refuses, and project
names that would break the export's Content-Disposition header."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from datastore.models import InferenceJob
from datastore.services import register_model_version
from fsml.parsers import MAX_JSON_DEPTH
from serving.web import submit
from serving.web.checks import JobError
from tests.annotation_helpers import client_for, make_project

DEEP = "[" * 100_000 + "]" * 100_000
SURROGATE = '{"value": "\\ud800", "text": "\\ud800", "reason": "\\ud800", "model": "m", "inputs": {"text": "\\ud800"}}'


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def service() -> APIClient:
    user = get_user_model().objects.create(username="backend")
    register_model_version("hostile", "text_classification", "/nonexistent/m.fsml", "0" * 64, {}, None)
    client = APIClient()
    client.force_authenticate(user)
    return client


def post_raw(client: APIClient, url: str, body: str) -> Any:
    return client.generic("POST", url, body, content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/jobs/", "/api/jobs/sync/", "/api/jobs/batch/"])
def test_the_job_endpoints_refuse_deep_json_and_lone_surrogates(service: APIClient, url: str) -> None:
    deep = post_raw(service, url, DEEP)
    assert deep.status_code == 400 and f"nested deeper than {MAX_JSON_DEPTH}" in deep.json()["detail"]
    body = '{"model": "hostile", "inputs": ' + ('[{"text": "\\ud800"}]' if "batch" in url else '{"text": "\\ud800"}')
    lone = post_raw(service, url, body + "}")
    assert lone.status_code == 400 and "lone UTF-16 surrogate" in lone.json()["detail"]
    assert not InferenceJob.objects.exists(), "nothing was stored"


@pytest.mark.django_db
def test_the_annotation_endpoints_refuse_deep_json_and_lone_surrogates() -> None:
    project = make_project(overlap=1, n=2)
    alice = client_for("alice")
    task = alice.post(f"/api/projects/{project.pk}/next/").json()["id"]
    for url in (
        f"/api/tasks/{task}/annotations/",
        f"/api/tasks/{task}/skip/",
        f"/api/projects/{project.pk}/questions/",
    ):
        deep = post_raw(alice, url, DEEP)
        assert deep.status_code == 400 and "nested deeper than" in deep.json()["detail"], url
        lone = post_raw(alice, url, SURROGATE)
        assert lone.status_code == 400 and "surrogate" in lone.json()["detail"], url
    assert not project.tasks.filter(annotations__isnull=False).exists()
    assert not project.questions.exists()


@pytest.mark.django_db
def test_the_depth_limit_is_exact_and_surrogate_pairs_are_text(service: APIClient) -> None:
    at_limit = {"model": "hostile", "inputs": {"text": "ok"}, "callback_url": ""}
    wrapped: Any = "x"
    for _ in range(MAX_JSON_DEPTH - 1):
        wrapped = [wrapped]
    at_limit["extra"] = wrapped  # depth MAX_JSON_DEPTH with the body itself: allowed (and ignored)
    assert post_raw(service, "/api/jobs/", json.dumps(at_limit)).status_code == 202
    over = post_raw(service, "/api/jobs/", json.dumps({**at_limit, "extra": [wrapped]}))
    assert over.status_code == 400
    # An escaped pair is one code point (U+1F600): text, stored as it was sent.
    pair = post_raw(service, "/api/jobs/", '{"model": "hostile", "inputs": {"text": "\\ud83d\\ude00"}}')
    assert pair.status_code == 202 and pair.json()["inputs"] == {"text": "\U0001f600"}
    assert post_raw(service, "/api/jobs/", nested(MAX_JSON_DEPTH + 1)).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_job_the_database_refuses_is_a_400_not_an_idempotency_race(settings: Any) -> None:
    """A submit from Python (no parser in between) whose inputs MariaDB refuses: the refusal is the input's, so
    it is a JobError naming it, even with an idempotency key (it used to be taken for a concurrent retry)."""
    settings.FSML_GROUP_SUBMITS = False
    user = get_user_model().objects.create(username="py")
    register_model_version("hostile", "text_classification", "/nonexistent/m.fsml", "0" * 64, {}, None)
    for key in (None, "k1"):
        with pytest.raises(JobError) as refused:
            submit.submit_job(user, "hostile", {"text": "bad \ud800"}, idempotency_key=key)
        assert refused.value.status == 400 and refused.value.field == "inputs"
    assert not InferenceJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # One quoted filename with the quote escaped: the browser sees no second parameter.
        ("x\"; filename*=UTF-8''pwn.html", 'attachment; filename="x\\"; filename*=UTF-8\'\'pwn.html.csv"'),
        ("two\r\nlines", "attachment; filename*=utf-8''two%0D%0Alines.csv"),
        ("Café crème", "attachment; filename*=utf-8''Caf%C3%A9%20cr%C3%A8me.csv"),
        ('say "hi"', 'attachment; filename="say \\"hi\\".csv"'),
    ],
)
def test_the_export_header_carries_any_project_name_safely(name: str, expected: str) -> None:
    project = make_project(n=2)
    project.name = name
    project.save(update_fields=["name"])
    res = client_for("mona").get(f"/api/projects/{project.pk}/export/?format=csv")
    assert res.status_code == 200
    assert res["Content-Disposition"] == expected
    assert "\r" not in res["Content-Disposition"] and "\n" not in res["Content-Disposition"]
