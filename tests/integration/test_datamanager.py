"""The data manager on the real database: every filter and sort, pages, one task's history, and who may see it."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.test.utils import CaptureQueriesContext

from annotation.datamanager import bulk
from annotation.datamanager.history import task_detail
from annotation.datamanager.services import TaskFilter, list_tasks
from annotation.services import AnnotationError, adjudicate, ask, import_records, send_back, skip, submit, undo
from datastore.models import Annotation, Project, Task, TaskLabel, label_key
from tests.annotation_helpers import client_for, make_project, user
from tests.helpers import claim_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def project() -> Project:
    """Seven tasks, one in each state: T1 sent back (was pos, pos), T2 done with a disagreement (pos, neg) and a
    question, T3 held by carol (alice skipped it), T4 skipped by alice, T5 adjudicated neg, T6 and T7 open."""
    project = make_project(n=7)
    alice, bob, carol, rita = user("alice"), user("bob"), user("carol"), user("rita")
    ids = list(project.tasks.order_by("id").values_list("pk", flat=True))

    def take(who: Any, expected: int) -> int:
        task_id = claim_task(project, who).task_id
        assert task_id == ids[expected - 1], (who, task_id, ids)
        return task_id

    submit(take(alice, 1), alice, "pos")
    submit(take(bob, 1), bob, "pos")
    submit(take(alice, 2), alice, "pos")
    submit(take(bob, 2), bob, "neg")
    take(carol, 3)
    skip(take(alice, 3), alice, "unclear")
    skip(take(alice, 4), alice, "sarcasm?")
    adjudicate(ids[4], rita, "neg")
    send_back(ids[0], rita, "both missed the irony")
    ask(project, alice, "is sarcasm negative?", ids[1])
    project.ids = ids  # type: ignore[attr-defined]  # the tests name tasks by position
    return project


def listed(project: Project, **params: str) -> list[int]:
    """Positions (1-based) of the tasks the filter lists, in the list's order."""
    page = list_tasks(project, TaskFilter.from_query(params), page_size=100)
    ids = project.ids  # type: ignore[attr-defined]
    return [ids.index(row["id"]) + 1 for row in page.rows]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("sent_back", [1]), ("done", [2]), ("held", [3]), ("skipped", [4]), ("adjudicated", [5]), ("open", [6, 7])],
)
def test_status_filter_and_derived_status(project: Project, status: str, expected: list[int]) -> None:
    assert listed(project, status=status) == expected
    rows = list_tasks(project, TaskFilter.from_query({"status": status})).rows
    assert {r["status"] for r in rows} == {status}


def test_label_annotator_disagreement_question_source_and_text_filters(project: Project) -> None:
    assert listed(project, label="neg") == [2, 5]  # bob's annotation; T5's final label
    assert listed(project, label="pos") == [2]  # T1's labels went into its relabel request
    assert listed(project, annotator="bob") == [2]
    assert listed(project, annotator="nobody") == []
    assert listed(project, disagreement="yes") == [2]
    assert listed(project, has_question="yes") == [2]
    assert listed(project, has_question="no") == [1, 3, 4, 5, 6, 7]
    assert listed(project, source="s") == [1, 2, 3, 4, 5, 6, 7]
    assert listed(project, source="elsewhere") == []
    three = project.ids.index(Task.objects.get(project=project, item__text="text 3").pk) + 1  # type: ignore[attr-defined]
    assert listed(project, q="TEXT 3") == [three]  # items are "text 0" .. "text 6"; case-insensitive
    assert listed(project, label="neg", disagreement="yes", has_question="yes") == [2]


def test_a_text_search_counts_up_to_a_cap(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from annotation.datamanager import services

    monkeypatch.setattr(services, "SEARCH_COUNT_CAP", 3)
    page = list_tasks(project, TaskFilter(q="text"), page_size=2)
    assert (page.count, page.count_is_exact, page.pages, len(page.rows)) == (3, False, 2, 2)
    page = list_tasks(project, TaskFilter(q="text 3"))
    assert (page.count, page.count_is_exact) == (1, True)
    assert list_tasks(project, TaskFilter()).count == 7  # no search: always exact


@pytest.mark.parametrize("items_estimate", [None, 0, 10**9], ids=["other-db", "item-first", "task-first"])
@pytest.mark.parametrize("few", [1000, 1], ids=["by-item-ids", "by-join"])
def test_a_text_search_finds_the_same_tasks_by_either_plan(
    project: Project, monkeypatch: pytest.MonkeyPatch, items_estimate: int | None, few: int
) -> None:
    """Whichever table the search reads first, it lists this project's matching tasks passing the other filters,
    never an item outside the project whose text matches too."""
    from annotation.datamanager import services
    from tests.helpers import stored_items

    stored_items(3, "elsewhere text {i}")  # stored items with no task in this project: not listed
    monkeypatch.setattr(services, "estimated_rows", lambda model: items_estimate)
    monkeypatch.setattr(services, "FEW_MATCHES", few)
    everyone = list_tasks(project, TaskFilter(q="text"), page_size=100)
    assert (everyone.count, everyone.count_is_exact) == (7, True)
    assert [r["id"] for r in everyone.rows] == project.ids  # type: ignore[attr-defined]
    assert listed(project, q="text", status="open") == [6, 7]
    assert listed(project, q="text", order="-id", disagreement="yes") == [2]
    assert listed(project, q="no such words") == []


def test_bad_filters_are_refused_with_the_reason(project: Project) -> None:
    for params, reason in [
        ({"status": "finished"}, "unknown status"),
        ({"label": "maybe"}, "not in the project's schema"),
        ({"order": "random"}, "unknown order"),
        ({"disagreement": "perhaps"}, "yes or no"),
    ]:
        with pytest.raises(AnnotationError, match=reason):
            list_tasks(project, TaskFilter.from_query(params))


def test_sorting(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    assert listed(project, order="-id") == [7, 6, 5, 4, 3, 2, 1]
    assert listed(project, order="-created")[0] == 7
    assert listed(project, order="-annotations")[:1] == [2]  # the only task with annotations now
    Task.objects.filter(pk=ids[5]).update(prediction="pos", uncertainty=0.1)
    Task.objects.filter(pk=ids[6]).update(prediction="neg", uncertainty=0.4)
    assert listed(project, order="confidence")[:2] == [7, 6]  # least confident first
    assert listed(project, order="-confidence")[:3] == [6, 7, 1]  # most confident first, no suggestion last
    assert listed(project, order="-uncertainty")[:2] == [7, 6]
    row = next(r for r in list_tasks(project, TaskFilter()).rows if r["id"] == ids[5])
    assert row["prediction"] == "pos" and row["confidence"] == 0.9
    assert listed(project, order="agreement")[:1] == [2]  # 0.5; tasks with no annotation last


def test_pagination(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    page = list_tasks(project, TaskFilter(), page=2, page_size=3)
    assert (page.count, page.pages, page.page) == (7, 3, 2)
    assert [r["id"] for r in page.rows] == ids[3:6]
    assert [r["id"] for r in list_tasks(project, TaskFilter(), page=99, page_size=3).rows] == ids[6:]  # the last
    for bad in ("0", "501", "many"):
        with pytest.raises(AnnotationError, match="page_size"):
            list_tasks(project, TaskFilter(), page_size=bad)


def test_rows_name_their_item_annotations_agreement_and_question(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    row = next(r for r in list_tasks(project, TaskFilter()).rows if r["id"] == ids[1])
    assert row["status"] == "done" and row["has_question"] is True
    assert [(a["annotator"], a["value"]) for a in row["annotations"]] == [("alice", "pos"), ("bob", "neg")]
    assert row["agreement"] == 0.5 and row["annotators"] == ["alice", "bob"]
    item, stored = row["item"], Task.objects.get(pk=ids[1]).item
    assert item["excerpt"] == stored.text and item["url"] == stored.canonical_url and item["source"] == "s"
    assert len(item["content_hash"]) == 64 and item["file_name"] == "" and item["image"] is None


def test_the_list_costs_the_same_queries_whatever_the_page(
    project: Project, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(5):  # count, page ids, rows with items, annotations, the source look-up
        list_tasks(project, TaskFilter(source="s"), page_size=100)


def test_detail_has_the_whole_history(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    sent = task_detail(ids[0], user("rita"))
    assert sent["status"] == "sent_back" and sent["annotations"] == []
    (request,) = sent["relabel_requests"]
    assert request["by"] == "rita" and request["reason"] == "both missed the irony"
    assert [a["value"] for a in request["previous"]["annotations"]] == ["pos", "pos"]
    events = [(e["event"], e["who"], e["what"]) for e in sent["history"]]
    assert events[-1] == ("sent back", "rita", "both missed the irony")
    assert ("annotated (before it was sent back)", "alice", "pos") in events
    assert ("annotated (before it was sent back)", "bob", "pos") in events

    done = task_detail(ids[1], user("mona"))
    assert [(a["annotator"], a["value"]) for a in done["annotations"]] == [("alice", "pos"), ("bob", "neg")]
    assert done["questions"][0]["text"] == "is sarcasm negative?" and done["questions"][0]["by"] == "alice"
    assert {"annotated", "asked", "assigned (submitted)"} <= {e["event"] for e in done["history"]}

    held = task_detail(ids[2], user("mona"))
    assert held["status"] == "held"
    assert {(a["annotator"], a["status"], a["skip_reason"]) for a in held["assignments"]} == {
        ("carol", "held", ""),
        ("alice", "skipped", "unclear"),
    }
    judged = task_detail(ids[4], user("mona"))
    assert judged["adjudication"]["value"] == "neg" and judged["adjudication"]["by"] == "rita"
    assert judged["status"] == "adjudicated"


def test_agreement_column_follows_submit_undo_and_send_back(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    assert Task.objects.get(pk=ids[1]).agreement == 0.5
    undo(project, user("bob"))  # bob's neg on T2 is taken back: the one left agrees with itself
    assert Task.objects.get(pk=ids[1]).agreement == 1.0
    assert listed(project, disagreement="yes") == []
    submit(ids[1], user("bob"), "neg")
    assert Task.objects.get(pk=ids[1]).agreement == 0.5
    send_back(ids[1], user("rita"), "recheck")
    assert Task.objects.get(pk=ids[1]).agreement is None


def by_json(project: Project, label: str) -> set[int]:
    """The tasks carrying ``label`` read from the JSON itself (final value or any annotation): the oracle."""
    wanted: Any = {"label": label} if project.task_type == Project.TaskType.SPANS else label
    annotated = Exists(Annotation.objects.filter(task=OuterRef("pk"), value__contains=wanted))
    carrying = Task.objects.filter(project=project).filter(Q(final_value__contains=wanted) | Q(annotated))
    return set(carrying.values_list("pk", flat=True))


def assert_labels_in_step(project: Project) -> None:
    """Each label's filter and its TaskLabel rows name exactly the tasks whose JSON carries it."""
    for label in project.labels:
        truth = by_json(project, label)
        for order in ("id", "-id", "-annotations"):  # a join on the label rows in id order, else a semi-join
            page = list_tasks(project, TaskFilter(label=label, order=order), page_size=500)
            assert {row["id"] for row in page.rows} == truth and page.count == len(truth), (label, order)
        rows = TaskLabel.objects.filter(project=project, key=label_key(label))
        assert set(rows.values_list("task_id", flat=True)) == truth, label
    assert not TaskLabel.objects.filter(project=project).exclude(key__in=[label_key(n) for n in project.labels])


def test_label_rows_follow_submit_undo_adjudicate_and_send_back(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    assert_labels_in_step(project)
    assert listed(project, label="neg") == [2, 5]
    undo(project, user("bob"))  # bob's neg on T2 is taken back
    assert listed(project, label="neg") == [5]
    assert_labels_in_step(project)
    submit(ids[1], user("bob"), "neg")
    assert listed(project, label="neg") == [2, 5]
    adjudicate(ids[4], user("rita"), "pos", override=True)  # T5 has no annotation: its neg goes with it
    assert listed(project, label="neg") == [2] and listed(project, label="pos") == [2, 5]
    assert_labels_in_step(project)
    adjudicate(ids[1], user("rita"), "pos")  # T2 keeps bob's neg: the filter looks at annotations too
    assert listed(project, label="neg") == [2]
    send_back(ids[1], user("rita"), "recheck")  # no annotation and no final label left
    assert listed(project, label="neg") == [] and listed(project, label="pos") == [5]
    assert not TaskLabel.objects.filter(task_id=ids[1]).exists()
    assert_labels_in_step(project)


def test_label_rows_follow_bulk_adjudication_and_bulk_send_back(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    done = bulk.run(project, user("rita"), "adjudicate", ids=[ids[5], ids[6]], params={"value": "neg"})
    assert done.done == 2 and listed(project, label="neg") == [2, 5, 6, 7]
    assert_labels_in_step(project)
    back = bulk.run(project, user("mona"), "send_back", flt=TaskFilter(label="neg"), params={"reason": "recheck"})
    assert back.done == 4 and listed(project, label="neg") == [] and listed(project, label="pos") == []
    assert_labels_in_step(project)


def test_gold_labels_of_an_import_are_found_by_the_label_filter() -> None:
    project = make_project(n=1)
    records = [{"text": "gold one", "value": "pos"}, {"text": "gold two", "value": "neg"}, {"text": "unlabelled"}]
    assert import_records(project, user("mona"), records) == 3
    gold = dict(Task.objects.filter(project=project).values_list("item__text", "pk"))
    assert [r["id"] for r in list_tasks(project, TaskFilter(label="pos")).rows] == [gold["gold one"]]
    assert [r["id"] for r in list_tasks(project, TaskFilter(label="neg")).rows] == [gold["gold two"]]
    assert_labels_in_step(project)


@pytest.mark.parametrize(
    ("task_type", "value", "carried"),
    [
        ("multi_label", ["neg", "pos"], {"neg", "pos"}),
        ("multi_label", [], set()),
        ("spans", [{"start": 0, "end": 4, "label": "pos"}], {"pos"}),
    ],
)
def test_label_rows_of_multi_label_and_span_annotations(task_type: str, value: Any, carried: set[str]) -> None:
    project = make_project(task_type, overlap=1, n=2, text="good text {i}")
    task_id = claim_task(project, user("alice")).task_id
    submit(task_id, user("alice"), value)
    assert set(TaskLabel.objects.filter(task_id=task_id).values_list("key", flat=True)) == {
        label_key(n) for n in carried
    }
    assert_labels_in_step(project)


def test_labels_differing_in_case_spaces_or_past_255_characters_are_told_apart() -> None:
    stem = "x" * 300
    labels = ("Pos", "pos", "pos ", stem + "-one", stem + "-two")  # equal to MariaDB's default collation, or long
    project = make_project("multi_label", labels=labels, overlap=1, n=2)
    first = claim_task(project, user("alice")).task_id
    submit(first, user("alice"), ["pos", stem + "-one"])
    for label in labels:
        expected = [first] if label in ("pos", stem + "-one") else []
        assert [r["id"] for r in list_tasks(project, TaskFilter(label=label)).rows] == expected, label
    assert_labels_in_step(project)


def test_the_label_filter_reads_label_rows_not_the_annotations_json(project: Project) -> None:
    with CaptureQueriesContext(connection) as queries:
        list_tasks(project, TaskFilter(label="neg"))
    listing = [q["sql"] for q in queries.captured_queries[:2]]  # the count and the page's ids
    assert all("tasklabel" in sql.lower() and "json_contains" not in sql.lower() for sql in listing), listing
    qn = connection.ops.quote_name
    assert f"ORDER BY {qn('datastore_tasklabel')}.{qn('task_id')} ASC" in listing[1]  # the index's order: no sort


def test_a_label_filter_pages_in_id_order_either_way(project: Project) -> None:
    assert listed(project, label="neg", order="-id") == [5, 2]
    first = list_tasks(project, TaskFilter(label="neg"), page=1, page_size=1)
    second = list_tasks(project, TaskFilter(label="neg"), page=2, page_size=1)
    assert (first.count, first.pages) == (2, 2)
    assert [first.rows[0]["id"], second.rows[0]["id"]] == [project.ids[1], project.ids[4]]  # type: ignore[attr-defined]


def test_migration_0012_fills_label_rows_for_existing_tasks(project: Project) -> None:
    fill = import_module("datastore.migrations.0012_task_labels").fill_task_labels
    kept = set(TaskLabel.objects.values_list("task_id", "project_id", "key"))
    assert kept  # the fixture's writers made rows
    TaskLabel.objects.all().delete()
    fill(django_apps, None)
    assert set(TaskLabel.objects.values_list("task_id", "project_id", "key")) == kept
    assert_labels_in_step(project)


def test_api_list_and_detail_for_managers_and_reviewers_only(project: Project) -> None:
    ids = project.ids  # type: ignore[attr-defined]
    url = f"/api/projects/{project.pk}/tasks/"
    res = client_for("rita").get(url, {"disagreement": "yes", "page_size": "10"})
    assert res.status_code == 200, res.content
    body = res.json()
    assert body["count"] == 1 and body["pages"] == 1 and body["filter"] == {"disagreement": "yes"}
    (row,) = body["rows"]
    assert row["id"] == ids[1] and row["item"]["content_hash"] and row["item"]["title"] == ""
    assert client_for("mona").get(url, {"status": "held"}).json()["rows"][0]["id"] == ids[2]
    assert client_for("alice").get(url).status_code == 403  # an annotator of the project
    assert client_for("alice").get(f"/api/tasks/{ids[1]}/").status_code == 403
    assert client_for("stranger").get(url).status_code == 404
    assert client_for("stranger").get(f"/api/tasks/{ids[1]}/").status_code == 404
    bad = client_for("mona").get(url, {"status": "finished"})
    assert bad.status_code == 400 and "unknown status" in bad.json()["detail"]
    detail = client_for("mona").get(f"/api/tasks/{ids[0]}/").json()
    assert detail["relabel_requests"][0]["reason"] == "both missed the irony"


def test_filters_are_in_the_openapi_schema(project: Project) -> None:
    schema = client_for("mona").get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/projects/{project_id}/tasks/" in text and "has_question" in text and "disagreement" in text
