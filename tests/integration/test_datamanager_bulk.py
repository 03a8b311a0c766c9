"""Bulk actions of the data manager on the real database: each one whole or not at all, through the API and the
page, and refused whole for tasks the user may not touch."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.test import Client

from annotation.services import create_project
from datastore.models import Annotation, Assignment, Item, Project, RelabelRequest, Task
from tests.annotation_helpers import client_for, user
from tests.helpers import stored_items
from tests.integration import test_datamanager as states

project = states.project  # the fixture of seven tasks, one in each state
listed = states.listed

pytestmark = pytest.mark.django_db


def state() -> tuple[Any, ...]:
    """Everything a bulk action could write."""
    return (
        list(Task.objects.order_by("id").values_list("id", "status", "final_value", "annotation_count")),
        Annotation.objects.count(),
        Assignment.objects.count(),
        RelabelRequest.objects.count(),
    )


def bulk(who: str, project: Project, **body: Any) -> Any:
    return client_for(who).post(f"/api/projects/{project.pk}/tasks/bulk/", body, format="json")


def other_project_task() -> int:
    """The task of another project (made on first use)."""
    if Project.objects.filter(name="other").exists():
        return Task.objects.get(project__name="other").pk
    stored_items(1, "elsewhere {i}")
    other = create_project("other", "text_classification", ["neg", "pos"], Item.objects.filter(text="elsewhere 0"))
    return other.tasks.get().pk


def test_send_back_a_selection_skips_and_counts_the_unlabelled(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    res = bulk("rita", project, action="send_back", ids=[ids[1], ids[4], ids[5]], reason="label drift")
    assert res.status_code == 200, res.content
    assert res.json() == {"action": "send_back", "selected": 3, "done": 2, "left": {"not labelled yet": 1}}
    assert listed(project, status="sent_back") == [1, 2, 5]
    request = RelabelRequest.objects.get(task_id=ids[1])
    assert request.reason == "label drift" and [a["value"] for a in request.previous["annotations"]] == ["pos", "neg"]


def test_send_back_everything_a_filter_matches(project: Project) -> None:
    res = bulk("mona", project, action="send_back", filter={"disagreement": "yes"}, reason="disagree")
    assert res.json()["done"] == 1 and listed(project, status="sent_back") == [1, 2]


@pytest.mark.parametrize(
    ("who", "body", "status", "reason"),
    [
        ("rita", {"action": "send_back", "reason": "x"}, 403, "not tasks of project"),  # ids get a foreign task
        ("rita", {"action": "adjudicate", "value": "neg"}, 403, "not tasks of project"),
        ("mona", {"action": "remove_unlabelled"}, 403, "not tasks of project"),
        ("rita", {"action": "remove_unlabelled"}, 403, "role manager"),  # reviewers may not remove
        ("alice", {"action": "send_back", "reason": "x"}, 403, "role manager or reviewer"),
        ("alice", {"action": "export", "format": "csv"}, 403, "role manager or reviewer"),
        ("stranger", {"action": "send_back", "reason": "x"}, 404, "no such project"),
        ("rita", {"action": "send_back", "reason": ""}, 400, "reason of 1 to 500"),
        ("rita", {"action": "adjudicate", "value": "maybe"}, 400, "not in the project's schema"),
        ("rita", {"action": "export", "format": "xml"}, 400, "unknown export format"),
        ("rita", {"action": "launch"}, 400, "not a valid choice"),
    ],
)
def test_refused_whole_with_nothing_written(
    project: Project, who: str, body: dict[str, Any], status: int, reason: str
) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    foreign = other_project_task()
    selection = [ids[1], ids[5], ids[6], foreign] if "not tasks" in reason else [ids[1], ids[5], ids[6]]
    before = state()
    res = bulk(who, project, ids=selection, **body)
    assert res.status_code == status, res.content
    assert reason in json.dumps(res.json()), res.json()
    if "not tasks" in reason:
        assert res.json()["errors"] == [foreign]
    assert state() == before


def test_a_filter_that_matches_nothing_writes_nothing(project: Project) -> None:
    before = state()
    res = bulk("mona", project, action="remove_unlabelled", filter={"q": "no such text"})
    assert res.status_code == 400 and "matches no task" in res.json()["detail"]
    res = bulk("mona", project, action="send_back", reason="x")  # neither ids nor a filter
    assert res.status_code == 400 and "either ids or a filter" in res.json()["detail"]
    assert state() == before


def test_adjudicate_a_filter_and_keep_existing_final_labels_unless_overridden(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    res = bulk("rita", project, action="adjudicate", ids=[ids[1], ids[4]], value="pos")
    assert res.json() == {"action": "adjudicate", "selected": 2, "done": 1, "left": {"already adjudicated": 1}}
    assert Task.objects.get(pk=ids[1]).final_value == "pos" and Task.objects.get(pk=ids[4]).final_value == "neg"
    res = bulk("rita", project, action="adjudicate", filter={"status": "adjudicated"}, value="neg", override=True)
    assert res.json()["done"] == 2
    assert set(Task.objects.filter(pk__in=[ids[1], ids[4]]).values_list("final_value", flat=True)) == {"neg"}
    assert Task.objects.get(pk=ids[1]).adjudicated_by == user("rita")


def test_remove_unlabelled_keeps_labelled_held_and_sent_back_tasks(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    res = bulk("mona", project, action="remove_unlabelled", ids=ids)
    assert res.status_code == 200, res.content
    assert res.json() == {
        "action": "remove_unlabelled",
        "selected": 7,
        "done": 3,  # T4 (only skipped), T6, T7
        "left": {"labelled": 2, "held by an annotator": 1, "sent back (history kept)": 1},
    }
    assert sorted(project.tasks.values_list("pk", flat=True)) == [ids[0], ids[1], ids[2], ids[4]]
    assert RelabelRequest.objects.filter(task_id=ids[0]).exists()


def test_export_a_selection_in_each_format(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    res = bulk("rita", project, action="export", ids=[ids[1], ids[4]], format="csv")
    assert res.status_code == 200 and res["Content-Disposition"].endswith('-selection.csv"')
    rows = list(csv.DictReader(io.StringIO(res.content.decode())))
    assert [int(r["id"]) for r in rows] == [ids[1], ids[4]]
    assert rows[0]["annotations"] == "2" and rows[1]["label"] == "neg"  # T2's two annotations; T5's final label
    res = bulk("rita", project, action="export", filter={"disagreement": "yes"}, format="labelstudio")
    (task,) = json.loads(res.content)
    assert task["id"] == ids[1] and {a["completed_by"] for a in task["annotations"]} == {"alice", "bob"}
    res = bulk("mona", project, action="export", filter={"status": "open"}, format="doccano")
    assert [json.loads(line)["id"] for line in res.content.decode().splitlines()] == [ids[5], ids[6]]
    res = bulk("mona", project, action="export", ids=[ids[1]], format="conll")  # a span format, refused here
    assert res.status_code == 400 and "span projects" in res.json()["detail"]


def page_client(name: str) -> Client:
    client = Client()
    client.force_login(user(name))
    return client


def test_the_page_lists_filters_and_runs_bulk_actions(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    url = f"/data/{project.pk}/"
    page = page_client("rita").get(url, {"disagreement": "yes"})
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-task="{ids[1]}"' in html and f'data-task="{ids[5]}"' not in html
    assert "remove unlabelled" not in html  # a reviewer is not offered what they may not do
    assert page_client("alice").get(url).status_code == 403
    assert page_client("stranger").get(url).status_code == 404
    assert page_client("rita").get(url, {"status": "finished"}).status_code == 400

    posted = page_client("rita").post(
        f"/data/{project.pk}/bulk/",
        {"action": "send_back", "ids": [str(ids[1])], "reason": "irony", "filter": "disagreement=yes"},
    )
    assert posted.status_code == 302 and posted["Location"] == f"/data/{project.pk}/?disagreement=yes"
    assert RelabelRequest.objects.filter(task_id=ids[1], reason="irony").exists()

    before = state()
    refused = page_client("rita").post(
        f"/data/{project.pk}/bulk/",
        {"action": "send_back", "ids": [str(ids[4]), str(other_project_task())], "reason": "x"},
    )
    assert refused.status_code == 403 and "nothing was done" in refused.content.decode()
    assert state()[1:] == before[1:]

    everything = page_client("mona").post(
        f"/data/{project.pk}/bulk/", {"action": "export", "scope": "filter", "filter": "status=open", "format": "csv"}
    )
    assert everything.status_code == 200 and everything.content.decode().count("\n") == 3  # header + T6, T7

    detail = page_client("mona").get(f"/data/{project.pk}/tasks/{ids[0]}/")
    assert detail.status_code == 200 and "both missed the irony" in detail.content.decode()
    assert page_client("mona").get(f"/data/{project.pk}/tasks/{other_project_task()}/").status_code == 404
