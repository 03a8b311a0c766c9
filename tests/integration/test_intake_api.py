"""The intake's REST API: projects from a crawl, items by filter with a dry run, feeds, sources (real MariaDB)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.services import set_role, start_project
from datastore import services as store
from datastore.models import Project, SourceFeed, Task
from tests.integration.test_intake import crawl, image, page


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def boss(db) -> Any:
    return get_user_model().objects.create(username="boss", is_staff=True)


@pytest.fixture
def crawled(db) -> None:
    crawl("api-site", [page(1), page(2, lang="de"), page(3, path="blog"), image(1, 1)])


def test_create_a_project_from_a_crawl_and_add_more_with_a_dry_run_first(boss, crawled) -> None:
    api = client_for(boss)
    made = api.post(
        "/api/projects/",
        {
            "name": "from-api",
            "task_type": "text_classification",
            "labels": ["x", "y"],
            "items": {"sources": ["api-site"], "kind": "text", "languages": ["en"]},
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["role"] == "manager" and body["items"] == {
        "matching": 2,
        "skipped": 0,
        "created": 2,
        "dry_run": False,
        "job": None,
    }
    pid = body["id"]
    assert any(p["id"] == pid for p in api.get("/api/projects/").json()), "GET still lists projects"

    url = f"/api/projects/{pid}/items/"
    dry = api.post(url + "?dry_run=1", {"filter": {"sources": ["api-site"], "kind": "text"}}, format="json")
    assert dry.status_code == 200
    assert dry.json() | {"kinds": None} == {
        "matching": 3,
        "in_project": 2,
        "wrong_kind": 0,
        "new": 1,
        "kinds": None,
        "dry_run": True,
    }
    same = api.post(url, {"filter": {"sources": ["api-site"], "kind": "text"}, "preview": True}, format="json")
    assert same.status_code == 200 and same.json()["new"] == 1
    assert Task.objects.filter(project_id=pid).count() == 2, "previews write nothing"
    added = api.post(url, {"filter": {"sources": ["api-site"], "kind": "text"}}, format="json")
    assert added.status_code == 201 and (added.json()["created"], added.json()["skipped"]) == (1, 2)


def test_bad_input_is_refused_with_the_reason_and_nothing_written(boss, crawled) -> None:
    api = client_for(boss)
    project = start_project(boss, "strict", "text_classification", ["x", "y"])
    url = f"/api/projects/{project.pk}/items/"
    for body, said in (
        ({"filter": {"url_pattern": "(["}}, "url_pattern: not a regular expression"),
        ({"filter": {"url_pattern": "/nothing-here/"}}, "no item matches the filter"),
        ({"filter": {"sources": ["api-site"]}}, "1 of the 4 matching items are not text items"),
        ({"filter": {"sources": ["nowhere"]}}, "no source named 'nowhere'"),
        ({"filter": ["not", "an", "object"]}, "the filter must be a JSON object"),
    ):
        answer = api.post(url, body, format="json")
        assert answer.status_code == 400, (body, answer.content)
        assert said in answer.json()["detail"]
    refused = api.post(
        "/api/projects/",
        {"name": "wrong", "task_type": "image_classification", "labels": ["a"], "items": {"sources": ["api-site"]}},
        format="json",
    )
    assert refused.status_code == 400 and "3 of the 4 matching items are not image items" in refused.json()["detail"]
    assert not Project.objects.filter(name="wrong").exists() and not Task.objects.exists()


def test_members_who_are_not_managers_are_refused(boss, crawled) -> None:
    project = start_project(boss, "closed", "text_classification", ["x", "y"])
    annotator, stranger = (get_user_model().objects.create(username=n) for n in ("ann", "stranger"))
    set_role(project, annotator, "annotator")
    body = {"filter": {"kind": "text"}}
    assert client_for(annotator).post(f"/api/projects/{project.pk}/items/", body, format="json").status_code == 403
    assert client_for(stranger).post(f"/api/projects/{project.pk}/items/", body, format="json").status_code == 404
    feed = {"source": "api-site"}
    assert client_for(annotator).post(f"/api/projects/{project.pk}/feeds/", feed, format="json").status_code == 403
    assert client_for(annotator).get("/api/sources/").status_code == 403
    made = client_for(annotator).post(
        "/api/projects/", {"name": "mine", "task_type": "text_classification", "labels": ["a"]}, format="json"
    )
    assert made.status_code == 403
    assert not Task.objects.exists() and not SourceFeed.objects.exists() and not Project.objects.filter(name="mine")


def test_feeds_are_listed_followed_and_stopped(boss, crawled) -> None:
    api = client_for(boss)
    project = start_project(boss, "feedy", "text_classification", ["x", "y"])
    url = f"/api/projects/{project.pk}/feeds/"
    made = api.post(url, {"source": "api-site", "filter": {"url_pattern": "/blog/"}}, format="json")
    assert made.status_code == 201 and made.json()["filter"] == {"url_pattern": "/blog/", "kind": "text"}
    crawl("api-site", [page(8, path="blog"), page(9)])
    listed = api.get(url).json()
    assert [(f["source"], f["items_added"], f["active"]) for f in listed] == [("api-site", 1, True)]
    stopped = api.delete(url + "?source=api-site")
    assert stopped.status_code == 200 and stopped.json()["active"] is False
    assert api.delete(url + "?source=api-site").status_code == 404


def test_sources_list_their_item_counts_and_crawl_jobs(boss, crawled) -> None:
    store.get_or_create_source("empty-source", "http://empty.test/")
    rows = {row["name"]: row for row in client_for(boss).get("/api/sources/").json()}
    site = rows["api-site"]
    assert site["items"] == 4 and site["kinds"] == {"text": 3, "image": 1}
    assert [job["items_stored"] for job in site["crawl_jobs"]] == [4]
    assert rows["empty-source"]["items"] == 0 and rows["empty-source"]["crawl_jobs"] == []


def test_the_schema_documents_the_intake_endpoints(boss) -> None:
    schema = client_for(boss).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"] if schema["content-type"].startswith("application/json") else None
    if paths is None:
        import yaml

        paths = yaml.safe_load(schema.content)["paths"]
    for path in ("/api/projects/", "/api/projects/{project_id}/items/", "/api/projects/{project_id}/feeds/"):
        assert path in paths
    assert "post" in paths["/api/projects/"] and "get" in paths["/api/projects/"]
    assert "/api/sources/" in paths
