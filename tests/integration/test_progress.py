"""Progress on the real database: an annotator's done, today and left in a project, and the project list's
figures for every project in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation.services import ask, create_project, set_role
from datastore.models import Annotation, Item, Project
from tests.annotation_helpers import client_for, make_project, user
from tests.helpers import stored_items

pytestmark = pytest.mark.django_db


def take_and_answer(name: str, project: Project, value: str = "pos") -> int:
    client = client_for(name)
    task = client.post(f"/api/projects/{project.pk}/next/").json()["id"]
    assert client.post(f"/api/tasks/{task}/annotations/", {"value": value}, format="json").status_code == 201
    return task


def progress(name: str, project: Project) -> dict:
    res = client_for(name).get(f"/api/projects/{project.pk}/progress/")
    assert res.status_code == 200
    return res.json()


def test_an_annotators_progress_counts_done_today_and_what_they_can_still_be_handed() -> None:
    project = make_project(overlap=2, n=5)
    assert progress("alice", project) == {
        "done_by_me": 0,
        "done_today": 0,
        "left_for_me": 5,
        "project_total": 5,
        "project_done": 0,
    }
    first = take_and_answer("alice", project)
    take_and_answer("alice", project)
    Annotation.objects.filter(task_id=first, annotator=user("alice")).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    take_and_answer("bob", project)  # t1: done
    take_and_answer("carol", project)  # t2: done
    take_and_answer("bob", project), take_and_answer("carol", project)  # t3: done without alice
    assert progress("alice", project) == {
        "done_by_me": 2,
        "done_today": 1,
        "left_for_me": 2,
        "project_total": 5,
        "project_done": 3,
    }
    held = client_for("alice").post(f"/api/projects/{project.pk}/next/").json()["id"]
    assert progress("alice", project)["left_for_me"] == 2  # a task she holds is still hers to do
    client_for("alice").post(f"/api/tasks/{held}/skip/", {"reason": "unsure"}, format="json")
    assert progress("alice", project)["left_for_me"] == 1  # a skipped task never comes back to her
    assert progress("bob", project)["done_by_me"] == 2
    assert client_for("stranger").get(f"/api/projects/{project.pk}/progress/").status_code == 404


def home(client: Client) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        res = client.get("/")
    assert res.status_code == 200
    return res.content.decode(), len(queries.captured_queries)


@pytest.mark.parametrize("staff", [False, True])
def test_the_project_list_shows_each_projects_figures_in_the_same_queries_for_one_or_many(staff: bool) -> None:
    project = make_project(overlap=1, n=4)
    take_and_answer("alice", project)
    ask(project, user("alice"), "open one?")
    viewer = user("mona")
    viewer.is_staff = staff
    viewer.save()
    client = Client()
    client.force_login(viewer)
    html, one = home(client)
    assert f'data-testid="tasks-{project.pk}">4<' in html and f'data-testid="done-{project.pk}">1<' in html
    assert f'data-testid="percent-{project.pk}">25%<' in html
    assert "ago</time>" in html

    stored_items(12, "more text {i}")
    items = list(Item.objects.order_by("-id")[:12])
    for i in range(4):
        more = create_project(f"more-{i}", "text_classification", ["a", "b"], items[3 * i : 3 * i + 3], overlap=1)
        set_role(more, viewer, "manager")
        ask(more, viewer, "why?")
    html, five = home(client)
    assert five == one, f"{one} queries for one project, {five} for five"
    assert html.count('data-testid="project-') == 5
