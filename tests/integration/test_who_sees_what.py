"""Who sees what, as a matrix of roles by URL: the crawl monitor (page and API) is staff's; the model registry
lists what may be called to every caller, and a version's record (dataset, archive checksum, metrics, alias
moves) to staff and the members of the project it was trained on; /metrics is Prometheus's (its token), or the
loopback's when no token is set. Real MariaDB; every answer through Django's full request stack."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from annotation.services import create_project, set_role
from datastore.models import AliasMove, DatasetVersion
from datastore.services import registry
from serving.web.accounts import service_token
from tests.eval_helpers import registered_version

ROLES = ("anonymous", "service", "outsider", "member", "staff")
SECRET_DATASET = "other-team-v1"  # the dataset of a version the member's project did not train

# URL -> the status each role gets, in ROLES order (302: sent to the login page; 401: no credentials).
MATRIX: dict[str, tuple[int, ...]] = {
    "/crawls/": (302, 302, 403, 403, 200),  # a token signs no one in to a page
    "/api/crawls/": (401, 403, 403, 403, 200),
    "/api/models/": (401, 200, 200, 200, 200),
    "/api/models/sentiment/": (401, 403, 403, 200, 200),
    "/api/models/nothing/": (401, 404, 404, 404, 404),
    "/models/": (302, 302, 200, 200, 200),
    "/models/sentiment/": (302, 302, 403, 200, 200),
}


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    """Model ``sentiment``: version 1 trained on project "reviews" (whose member is "member"), version 2 on
    another team's project; @production moved 1 -> 2."""
    users = get_user_model().objects
    member = users.create(username="member")
    reviews = create_project("reviews", "text_classification", ["neg", "pos"], [], members=[])
    set_role(reviews, member, "annotator")
    other = create_project("other-team", "text_classification", ["neg", "pos"], [], members=[])
    for version, project, dataset in ((1, reviews, "reviews-v1"), (2, other, SECRET_DATASET)):
        registered_version(
            version,
            DatasetVersion.objects.create(name=dataset, project=project, dvc_md5="-", git_rev="-", path=dataset),
            metrics={"test": {"accuracy": 0.5 + version / 10}},
        )
    registry.promote("sentiment", 1, "production", reason="first")
    registry.promote("sentiment", 2, "production", reason="the other team's")
    registry.promote("sentiment", 1, "reviews", reason="ours")
    return {"member": member}


def client_for(role: str) -> Client:
    if role == "anonymous":
        return APIClient()
    if role == "service":
        token, _ = service_token("billing")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client
    users = get_user_model().objects
    account = {
        "outsider": lambda: users.create(username="outsider"),
        "member": lambda: users.get(username="member"),
        "staff": lambda: users.create(username="ops", is_staff=True),
    }[role]()
    client = APIClient()
    client.force_login(account)
    return client


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_matrix_says(world: dict[str, Any], role: str) -> None:
    client = client_for(role)
    got = {url: client.get(url).status_code for url in MATRIX}
    assert got == {url: statuses[ROLES.index(role)] for url, statuses in MATRIX.items()}


def test_a_403_page_says_why_and_the_layout_hides_what_one_may_not_open(world: dict[str, Any]) -> None:
    member = client_for("member")
    refused = member.get("/crawls/").content.decode()
    assert "the crawl monitor is for staff accounts" in refused and 'class="error-page"' in refused
    assert 'href="/crawls/"' not in member.get("/models/").content.decode(), "no link to a page it may not open"
    assert 'href="/crawls/"' in client_for("staff").get("/models/").content.decode()
    outsider = client_for("outsider")
    refused = outsider.get("/models/sentiment/").content.decode()
    assert "for staff and the members of the projects it was trained on" in refused
    listed = outsider.get("/models/").content.decode()
    assert "No model trained on your projects' data yet." in listed and "sentiment" not in listed


def test_a_member_reads_only_the_versions_trained_on_its_projects_data(world: dict[str, Any]) -> None:
    member = client_for("member")
    detail = member.get("/api/models/sentiment/").json()
    assert [v["version"] for v in detail["versions"]] == [1]
    assert detail["aliases"] == {"reviews": 1}, "@production names version 2, which the member may not read"
    assert [(m["alias"], m["from"], m["to"]) for m in detail["moves"]] == [
        ("reviews", None, 1),
        ("production", None, 1),
    ]
    assert AliasMove.objects.count() == 3
    assert SECRET_DATASET not in str(detail) and "2" * 64 not in str(detail)
    page = member.get("/models/sentiment/").content.decode()
    assert SECRET_DATASET not in page and "2" * 12 not in page and "the other team" not in page
    listed = member.get("/models/").content.decode()
    assert "1" * 12 in listed and "2" * 12 not in listed, "the latest version the member may read"

    staff = client_for("staff").get("/api/models/sentiment/").json()
    assert [v["version"] for v in staff["versions"]] == [1, 2] and len(staff["moves"]) == 3


def test_a_service_lists_every_model_it_may_call_without_their_records(world: dict[str, Any]) -> None:
    listed = client_for("service").get("/api/models/").json()
    assert listed == [
        {"name": "sentiment", "task": "text_classification", "versions": [1, 2], "latest": 2,
         "aliases": {"production": 2, "reviews": 1}}
    ]  # fmt: skip
    refused = client_for("service").get("/api/models/sentiment/")
    assert "GET /api/models/ lists the models" in refused.json()["detail"]
