"""A project's own label keys (model, service, settings form, API) and undo giving back the earlier answer; the
grid's batch of tasks; items named for people, never by an import's pseudo-address."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from annotation.payloads import item_payload
from annotation.services import AnnotationError, update_settings
from annotation.validation import InvalidLabel, clean_hotkeys
from datastore.models import Assignment, Item, Project
from datastore.services.items import import_texts
from tests.annotation_helpers import client_for, make_project, user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("hotkeys", "needle"),
    [
        ({"ghost": "g1"}, "no such label"),
        ({"cat": "cc"}, "is not one key"),
        ({"cat": " "}, "is not one key"),
        ({"cat": "U"}, "the page's key to undo"),
        ({"cat": "+"}, "the page's key to zoom in"),
        ({"cat": "x", "dog": "X"}, "both have the key 'x'"),
        (["cat"], "hotkeys map label names to keys"),
    ],
)
def test_bad_hotkeys_are_refused_with_the_reason(hotkeys: Any, needle: str) -> None:
    with pytest.raises(InvalidLabel, match=needle):
        clean_hotkeys(["cat", "dog"], hotkeys)


def test_hotkeys_are_kept_in_label_order_with_letters_in_lower_case() -> None:
    assert clean_hotkeys(["cat", "dog"], {"dog": "D", "cat": "1"}) == {"cat": "1", "dog": "d"}
    assert clean_hotkeys(["cat"], None) == {} == clean_hotkeys(["cat"], "")


def test_the_api_gives_the_projects_keys_and_the_service_checks_them() -> None:
    project = make_project(labels=("neg", "pos"))
    assert client_for("alice").get(f"/api/projects/{project.pk}/").json()["hotkeys"] == {}
    update_settings(project, user("mona"), hotkeys={"pos": "P"})
    assert client_for("alice").get(f"/api/projects/{project.pk}/").json()["hotkeys"] == {"pos": "p"}
    with pytest.raises(AnnotationError, match="the page's key to skip"):
        update_settings(project, user("mona"), hotkeys={"pos": "s"})
    # Renaming a label (nothing is labelled yet) takes its key with it.
    update_settings(project, user("mona"), labels=["neg", "positive"])
    assert Project.objects.get(pk=project.pk).hotkeys == {}


def test_the_settings_form_takes_one_label_and_key_per_line_and_says_what_is_wrong() -> None:
    project = make_project(labels=("neg", "pos"))
    manager = Client()
    manager.force_login(user("mona"))
    form = {
        "name": project.name,
        "labels": "neg\npos",
        "overlap": 2,
        "lock_seconds": 600,
        "queue_order": "sequential",
        "guidelines": "",
    }
    refused = manager.post(f"/manage/{project.pk}/", {**form, "hotkeys": "neg = n\npos = p"})
    assert refused.status_code == 400 and "key to next task; choose another" in refused.content.decode()
    assert manager.post(f"/manage/{project.pk}/", {**form, "hotkeys": "neg = x\npos = p"}).status_code == 302
    assert Project.objects.get(pk=project.pk).hotkeys == {"neg": "x", "pos": "p"}
    clash = manager.post(f"/manage/{project.pk}/", {**form, "hotkeys": "neg = x\npos = X"}).content.decode()
    assert "one key per label" in clash
    bad_line = manager.post(f"/manage/{project.pk}/", {**form, "hotkeys": "neg x"}).content.decode()
    assert "write “label = key”" in bad_line
    shown = manager.get(f"/manage/{project.pk}/").content.decode()
    assert "neg = x\npos = p" in shown  # the saved keys, one per line, as typed


@pytest.mark.parametrize(
    ("task_type", "labels", "value"),
    [
        ("text_classification", ("neg", "pos"), "pos"),
        ("multi_label", ("a", "b", "c"), ["a", "c"]),
        ("spans", ("PER", "LOC"), [{"start": 0, "end": 4, "label": "PER"}]),
    ],
)
def test_undo_gives_back_the_earlier_answer(task_type: str, labels: tuple[str, ...], value: Any) -> None:
    project = make_project(task_type, labels, overlap=1, n=2)
    alice = client_for("alice")
    task = alice.post(f"/api/projects/{project.pk}/next/").json()
    assert alice.post(f"/api/tasks/{task['id']}/annotations/", {"value": value}, format="json").status_code == 201
    undone = alice.post(f"/api/projects/{project.pk}/undo/").json()
    assert undone["task"]["id"] == task["id"]
    assert undone["value"] == value  # what the page shows selected, to be changed or sent again


def test_the_grid_holds_a_page_of_tasks_and_gives_the_held_ones_first() -> None:
    project = make_project(overlap=1, n=5)
    alice = client_for("alice")
    first = alice.post(f"/api/projects/{project.pk}/next/").json()
    page = alice.post(f"/api/projects/{project.pk}/next/?count=3").json()["tasks"]
    assert [t["id"] for t in page][0] == first["id"] and len({t["id"] for t in page}) == 3
    assert Assignment.objects.filter(annotator=user("alice"), status="active").count() == 3
    # Bob gets none of alice's three.
    bobs = client_for("bob").post(f"/api/projects/{project.pk}/next/?count=10").json()["tasks"]
    assert len(bobs) == 2 and not {t["id"] for t in bobs} & {t["id"] for t in page}
    assert client_for("carol").post(f"/api/projects/{project.pk}/next/?count=10").json() == {"tasks": []}
    for bad in ("0", "101", "x"):
        res = alice.post(f"/api/projects/{project.pk}/next/?count={bad}")
        assert res.status_code == 400 and "count is a whole number" in res.json()["detail"]


def test_a_task_handed_to_the_same_user_while_the_grid_fills_its_page_is_on_the_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one-at-a-time view fetches its next task as the annotator opens the grid: both requests run at once.
    The task the first one takes is the annotator's, and the grid's page must show it, not hide it for the
    length of the hold."""
    from annotation.services import queue

    project = make_project(overlap=1, n=3)
    alice = client_for("alice")
    real_take_one = queue._take_one
    calls: list[Assignment | None] = []

    def take_one_after_another_request(project: Project, user: Any) -> Assignment | None:
        if not calls:  # the other request of alice's commits its hold just before the grid takes its first
            calls.append(queue.next_task(project, user))
        return real_take_one(project, user)

    monkeypatch.setattr(queue, "_take_one", take_one_after_another_request)
    page = alice.post(f"/api/projects/{project.pk}/next/?count=24").json()["tasks"]
    assert calls[0] is not None and calls[0].task_id in {t["id"] for t in page}
    assert len(page) == 3 == Assignment.objects.filter(annotator=user("alice"), status="active").count()


def test_items_are_named_by_title_web_address_or_file_name_never_an_import_address() -> None:
    project = make_project(n=1)
    crawled = Item.objects.get(tasks__project=project)
    payload = item_payload(crawled)
    assert payload["name"] == payload["link"] == crawled.canonical_url  # no title: the page it came from
    imported = import_texts("upload", ["a text from a file"])[0]
    payload = item_payload(imported)
    assert imported.canonical_url.startswith("import://")
    assert payload["link"] is None and payload["name"] == f"Item {imported.pk}"
    imported.title = "Ticket 12"
    assert item_payload(imported)["name"] == "Ticket 12"
