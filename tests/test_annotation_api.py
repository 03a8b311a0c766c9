"""The annotation REST API on the real database: assignment, validation, double submits, auth."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.services import create_project
from datastore.models import Annotation, Item, Task
from tests.helpers import stored_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    stored_items(5, "text {i}")
    users = get_user_model()
    alice, bob = users.objects.create(username="alice"), users.objects.create(username="bob")
    return create_project(
        "p", "text_classification", ["neg", "pos"], Item.objects.all(), overlap=2, members=[alice, bob]
    )


def client_for(username: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username=username))
    return client


def test_two_annotators_get_different_tasks_and_overlap_is_respected(project) -> None:
    alice, bob = client_for("alice"), client_for("bob")
    a = alice.post(f"/api/projects/{project.pk}/next/").json()
    b = bob.post(f"/api/projects/{project.pk}/next/").json()
    assert a["id"] != b["id"]
    assert alice.post(f"/api/projects/{project.pk}/next/").json()["id"] == a["id"]  # held task comes back
    assert alice.post(f"/api/tasks/{a['id']}/annotations/", {"value": "pos"}, format="json").status_code == 201
    assert Task.objects.get(pk=a["id"]).status == Task.Status.OPEN  # overlap 2: one more annotator
    # alice never sees her task again; bob eventually gets it and finishes it
    seen = set()
    while (res := alice.post(f"/api/projects/{project.pk}/next/")).status_code == 200:
        task_id = res.json()["id"]
        assert task_id not in seen and task_id != a["id"]
        seen.add(task_id)
        alice.post(f"/api/tasks/{task_id}/annotations/", {"value": "neg"}, format="json")
    assert len(seen) == 3 and b["id"] not in seen  # bob holds his task until he submits or the lock expires


def test_label_outside_schema_is_refused_and_nothing_written(project) -> None:
    alice = client_for("alice")
    task = alice.post(f"/api/projects/{project.pk}/next/").json()
    res = alice.post(f"/api/tasks/{task['id']}/annotations/", {"value": "maybe"}, format="json")
    assert res.status_code == 400
    assert "not in the project's schema" in res.json()["detail"]
    assert Annotation.objects.count() == 0


def test_double_submit_is_refused(project) -> None:
    alice = client_for("alice")
    task = alice.post(f"/api/projects/{project.pk}/next/").json()
    assert alice.post(f"/api/tasks/{task['id']}/annotations/", {"value": "neg"}, format="json").status_code == 201
    again = alice.post(f"/api/tasks/{task['id']}/annotations/", {"value": "pos"}, format="json")
    assert again.status_code == 409
    assert Annotation.objects.filter(task_id=task["id"]).count() == 1


def test_endpoints_deny_anonymous_and_non_members(project) -> None:
    assert APIClient().post(f"/api/projects/{project.pk}/next/").status_code in (401, 403)
    get_user_model().objects.create(username="mallory")
    assert client_for("mallory").post(f"/api/projects/{project.pk}/next/").status_code == 404
